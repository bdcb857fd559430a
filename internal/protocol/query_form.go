package protocol

// Reading a query request's form. The query protocol flattens structure
// into names: EC2 writes a list as Name.1, Name.2 (SubnetId.1=subnet-1) and a
// list of structures as Name.N.Member (Filter.1.Name=vpc-id,
// Filter.1.Value.1=vpc-1); ELBv2 and IAM put "member" before the index
// (Subnets.member.1=subnet-1, Tags.member.1.Key=k) and send an empty list as
// the bare name (Subnets=). These helpers undo that; the parameter names
// and values are the client's, so every malformed index is an *Error, never
// a panic or an outsized allocation.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxQueryListIndex is the largest list index (the N of Name.N or
// Name.member.N) the helpers accept, and so the most entries a list has.
const MaxQueryListIndex = 1000

// QueryList returns the EC2-style list prefix: the values of prefix.1,
// prefix.2, … ordered by index (gaps are skipped; the first value counts if
// an index is repeated). It is nil when the request has no such list and
// empty when it sends only the bare prefix. Keys with more after the index
// (prefix.1.Name) belong to QueryStructs and are ignored here. An index
// that is not an integer from 1 to MaxQueryListIndex (prefix.0, prefix.x,
// prefix.01) is an InvalidParameterValue *Error.
func QueryList(params url.Values, prefix string) ([]string, error) {
	entries, present, err := scanList(params, prefix)
	if err != nil {
		return nil, err
	}
	return listValues(entries, present), nil
}

// QueryMemberList returns the ELBv2/IAM-style list name: the values of
// name.member.1, name.member.2, … as QueryList orders them. It is nil when
// the request has no such list and empty when it sends the bare name (the
// query protocol's empty list, "Subnets=").
func QueryMemberList(params url.Values, name string) ([]string, error) {
	entries, present, err := scanList(params, name+".member")
	if err != nil {
		return nil, err
	}
	return listValues(entries, present || params.Has(name)), nil
}

// QueryStructs returns the list of structures prefix, EC2 style: one
// url.Values per index, ordered by index, holding the keys after
// "prefix.N." (IpPermissions.1.IpProtocol → "IpProtocol",
// IpPermissions.1.Groups.1.GroupId → "Groups.1.GroupId"), so an element's
// own lists and structures are read with these same helpers. Bare prefix.N
// keys are ignored; nil and empty are as for QueryList. For Tag.N.Key/Value
// or Filter.N.Name/Value.M, read each element's "Key" with Get or its
// values with QueryList(element, "Value").
func QueryStructs(params url.Values, prefix string) ([]url.Values, error) {
	entries, present, err := scanList(params, prefix)
	if err != nil {
		return nil, err
	}
	return listStructs(entries, present), nil
}

// QueryMemberStructs is QueryStructs for ELBv2/IAM-style lists of structures:
// name.member.N.Key (Tags.member.1.Key → element 1's "Key").
func QueryMemberStructs(params url.Values, name string) ([]url.Values, error) {
	entries, present, err := scanList(params, name+".member")
	if err != nil {
		return nil, err
	}
	return listStructs(entries, present || params.Has(name)), nil
}

// QueryInt parses the integer parameter name. ok is false when it is absent
// (or empty); a value that is not a base-10 integer from min to max is an
// InvalidParameterValue *Error.
func QueryInt(params url.Values, name string, min, max int64) (n int64, ok bool, err error) {
	s := params.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || n < min || n > max {
		return 0, false, NewError(CodeInvalidParameterValue, http.StatusBadRequest,
			"Invalid value '%s' for %s: it must be an integer from %d to %d.", truncate(s, 64), truncate(name, 128), min, max)
	}
	return n, true, nil
}

// QueryBool parses the boolean parameter name: "true" or "false" (as the
// SDKs send them; "True", "TRUE" and the like also pass). ok is false when it
// is absent (or empty); anything else is an InvalidParameterValue *Error.
func QueryBool(params url.Values, name string) (b bool, ok bool, err error) {
	switch s := params.Get(name); s {
	case "":
		return false, false, nil
	case "true", "True", "TRUE":
		return true, true, nil
	case "false", "False", "FALSE":
		return false, true, nil
	default:
		return false, false, NewError(CodeInvalidParameterValue, http.StatusBadRequest,
			"Invalid value '%s' for %s: it must be true or false.", truncate(s, 64), truncate(name, 128))
	}
}

// listKey is one parameter of a list: prefix.<index>[.<rest>].
type listKey struct {
	index  int
	sub    bool   // prefix.<index>.<rest>, a member of a structure
	rest   string // the member's name
	values []string
}

// scanList finds the parameters of the list prefix. present reports the
// bare prefix. Entries come back sorted by index, then rest.
func scanList(params url.Values, prefix string) (entries []listKey, present bool, err error) {
	dotted := prefix + "."
	var bad string // the least malformed key, so the error is deterministic
	for key, values := range params {
		if key == prefix {
			present = true
			continue
		}
		after, ok := strings.CutPrefix(key, dotted)
		if !ok {
			continue
		}
		num, rest, sub := strings.Cut(after, ".")
		index, ok := parseListIndex(num)
		if !ok {
			if bad == "" || key < bad {
				bad = key
			}
			continue
		}
		if bad == "" {
			entries = append(entries, listKey{index: index, sub: sub, rest: rest, values: values})
		}
	}
	if bad != "" {
		return nil, false, NewError(CodeInvalidParameterValue, http.StatusBadRequest,
			"Invalid parameter name '%s': a list index must be an integer from 1 to %d.", truncate(bad, 128), MaxQueryListIndex)
	}
	slices.SortFunc(entries, func(a, b listKey) int {
		switch {
		case a.index != b.index:
			return a.index - b.index
		case a.sub != b.sub:
			if a.sub {
				return 1
			}
			return -1
		}
		return strings.Compare(a.rest, b.rest)
	})
	return entries, present, nil
}

// parseListIndex parses a list index: a decimal integer from 1 to
// MaxQueryListIndex, without sign or leading zeros (so that prefix.1 and
// prefix.01 cannot both name the first entry).
func parseListIndex(s string) (int, bool) {
	if s == "" || len(s) > len(strconv.Itoa(MaxQueryListIndex)) || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= MaxQueryListIndex
}

func listValues(entries []listKey, present bool) []string {
	var out []string
	if present {
		out = []string{}
	}
	for _, e := range entries {
		if !e.sub && len(e.values) > 0 {
			out = append(out, e.values[0])
		}
	}
	return out
}

func listStructs(entries []listKey, present bool) []url.Values {
	var out []url.Values
	if present {
		out = []url.Values{}
	}
	last := 0
	for _, e := range entries {
		if !e.sub {
			continue
		}
		if e.index != last {
			out = append(out, url.Values{})
			last = e.index
		}
		el := out[len(out)-1]
		el[e.rest] = append(el[e.rest], e.values...)
	}
	return out
}
