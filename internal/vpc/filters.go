package vpc

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// Describe filters: Filter.N.Name with Filter.N.Value.M. A resource matches
// when every filter matches; a filter matches when any of the resource's
// values for its name matches any of the filter's values. Values may use
// EC2's wildcards: * for any run of characters, ? for one, \ to escape.

type filter struct {
	name   string
	values []string
}

// fieldsFunc returns a resource's values for a filter name, and whether the
// name is one the resource type knows. It must answer for a zero resource
// too (names are checked before any resource is looked at).
type fieldsFunc[T any] func(r *T, name string) (values []string, known bool)

// parseFilters reads the request's filters and checks that fields knows
// their names.
func parseFilters[T any](p url.Values, fields fieldsFunc[T]) ([]filter, error) {
	entries, err := protocol.QueryStructs(p, "Filter")
	if err != nil {
		return nil, err
	}
	out := make([]filter, 0, len(entries))
	var zero T
	for _, e := range entries {
		name := e.Get("Name")
		if name == "" {
			return nil, errMissing("Filter.Name")
		}
		values, err := protocol.QueryList(e, "Value")
		if err != nil {
			return nil, err
		}
		if _, known := fields(&zero, name); !known {
			return nil, errInvalidFilter(name)
		}
		if len(values) == 0 {
			return nil, errInvalidValue("The filter '%s' must have at least one value", name)
		}
		out = append(out, filter{name: name, values: values})
	}
	return out, nil
}

// filterItems keeps the items that match every filter.
func filterItems[T any](items []T, fs []filter, fields fieldsFunc[T]) []T {
	if len(fs) == 0 {
		return items
	}
	out := items[:0:0]
	for i := range items {
		if matchAll(&items[i], fs, fields) {
			out = append(out, items[i])
		}
	}
	return out
}

func matchAll[T any](item *T, fs []filter, fields fieldsFunc[T]) bool {
	for _, f := range fs {
		have, _ := fields(item, f.name)
		if !matchAny(have, f.values) {
			return false
		}
	}
	return true
}

func matchAny(have, patterns []string) bool {
	for _, pat := range patterns {
		for _, h := range have {
			if globMatch(pat, h) {
				return true
			}
		}
	}
	return false
}

// tagFilter answers the tag filters every taggable resource has:
// tag:<key> (the values of that key), tag-key and tag-value.
func tagFilter(tags []tag, name string) ([]string, bool) {
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		var out []string
		for _, t := range tags {
			if t.Key == key {
				out = append(out, t.Value)
			}
		}
		return out, true
	}
	switch name {
	case "tag-key":
		out := make([]string, len(tags))
		for i, t := range tags {
			out[i] = t.Key
		}
		return out, true
	case "tag-value":
		out := make([]string, len(tags))
		for i, t := range tags {
			out[i] = t.Value
		}
		return out, true
	}
	return nil, false
}

func one(s string) []string { return []string{s} }

func boolVal(b bool) []string { return []string{strconv.FormatBool(b)} }

func intVal(n int) []string { return []string{strconv.Itoa(n)} }

// globMatch reports whether s matches the EC2 filter pattern pat: '*'
// matches any run of characters (also none), '?' exactly one, and '\'
// makes the next character literal. It runs in O(len(pat)·len(s)).
func globMatch(pat, s string) bool {
	type token struct {
		kind byte // 'l' literal, '*', '?'
		r    rune
	}
	var toks []token
	escaped := false
	for _, r := range pat {
		switch {
		case escaped:
			toks = append(toks, token{'l', r})
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*':
			if len(toks) == 0 || toks[len(toks)-1].kind != '*' {
				toks = append(toks, token{'*', 0})
			}
		case r == '?':
			toks = append(toks, token{'?', 0})
		default:
			toks = append(toks, token{'l', r})
		}
	}
	if escaped {
		toks = append(toks, token{'l', '\\'})
	}
	str := []rune(s)
	// Greedy match with backtracking to the last star: linear in practice,
	// O(n·m) at worst.
	ti, si := 0, 0
	star, starSi := -1, 0
	for si < len(str) {
		switch {
		case ti < len(toks) && (toks[ti].kind == '?' || (toks[ti].kind == 'l' && toks[ti].r == str[si])):
			ti++
			si++
		case ti < len(toks) && toks[ti].kind == '*':
			star, starSi = ti, si
			ti++
		case star >= 0:
			starSi++
			si = starSi
			ti = star + 1
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].kind == '*' {
		ti++
	}
	return ti == len(toks)
}
