package elb

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// Request parameters shared by several actions: ARNs, names, tags and paging.

// Limits of the API (AWS's default quotas).
const (
	maxTags         = 50
	maxTargets      = 1000
	maxNameLen      = 32
	maxPageSize     = 400
	maxPriority     = 50000
	maxRuleValues   = 5
	maxWeightedTGs  = 5
	maxARNsPerCall  = 20
	hostedZoneALB   = "Z35SXDOTRQ7X7K"
	hostedZoneNLB   = "Z26RNL4JYFTOTI"
	timeLayout      = "2006-01-02T15:04:05.000Z"
	typeApplication = "application"
	typeNetwork     = "network"
)

func (sc scope) arnPrefix() string {
	return "arn:aws:elasticloadbalancing:" + sc.region + ":" + sc.account + ":"
}

func typeSegment(lbType string) string {
	if lbType == typeNetwork {
		return "net"
	}
	return "app"
}

func (sc scope) lbARN(lb *lbRecord) string {
	return sc.arnPrefix() + "loadbalancer/" + typeSegment(lb.Type) + "/" + lb.Name + "/" + lb.ID
}

func (sc scope) tgARN(tg *tgRecord) string {
	return sc.arnPrefix() + "targetgroup/" + tg.Name + "/" + tg.ID
}

func (sc scope) listenerARN(lb *lbRecord, l *listenerRecord) string {
	return sc.arnPrefix() + "listener/" + typeSegment(lb.Type) + "/" + lb.Name + "/" + lb.ID + "/" + l.ID
}

func (sc scope) ruleARN(lb *lbRecord, l *listenerRecord, ruleID string) string {
	return sc.arnPrefix() + "listener-rule/" + typeSegment(lb.Type) + "/" + lb.Name + "/" + lb.ID + "/" + l.ID + "/" + ruleID
}

// ARN resource kinds: the resource prefix and how many "/" segments follow.
type arnKind struct {
	resource string
	segments int
	noun     string
}

var (
	arnLB       = arnKind{"loadbalancer", 3, "load balancer"}
	arnTG       = arnKind{"targetgroup", 2, "target group"}
	arnListener = arnKind{"listener", 4, "listener"}
	arnRule     = arnKind{"listener-rule", 5, "listener rule"}
)

// arnID returns the id (the last segment) of an ARN of kind k. A malformed
// ARN is a ValidationError; one of another account or region yields "", so
// that the lookup fails with the kind's NotFound, as in AWS.
func (sc scope) arnID(arn string, k arnKind) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "elasticloadbalancing" {
		return "", errInvalidARN(arn, k.noun)
	}
	rest, ok := strings.CutPrefix(parts[5], k.resource+"/")
	if !ok {
		return "", errInvalidARN(arn, k.noun)
	}
	segs := strings.Split(rest, "/")
	if len(segs) != k.segments || !isHexID(segs[len(segs)-1]) {
		return "", errInvalidARN(arn, k.noun)
	}
	if parts[3] != sc.region || parts[4] != sc.account {
		return "", nil
	}
	return segs[len(segs)-1], nil
}

func isHexID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validName checks a load balancer or target group name: 1–32 letters,
// digits and hyphens, not starting or ending with a hyphen.
func validName(name, noun string) error {
	switch {
	case name == "":
		return errMissing("Name")
	case len(name) > maxNameLen:
		return errValidation("%s name '%s' cannot be longer than '%d' characters", noun, name, maxNameLen)
	case name[0] == '-' || name[len(name)-1] == '-':
		return errValidation("%s name '%s' cannot begin or end with '-'", noun, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return errValidation("%s name '%s' can only contain characters that are alphanumeric characters or hyphens(-)", noun, name)
		}
	}
	return nil
}

// parseTags reads Tags.member.N.Key/Value.
func parseTags(p url.Values, name string) ([]tag, error) {
	els, err := protocol.QueryMemberStructs(p, name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []tag
	for _, el := range els {
		k, v := el.Get("Key"), el.Get("Value")
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(k, "aws:") {
			return nil, errValidation("Tag key '%s' or its value is not valid", k)
		}
		if seen[k] {
			return nil, errDuplicateTagKeys(k)
		}
		seen[k] = true
		out = append(out, tag{Key: k, Value: v})
	}
	if len(out) > maxTags {
		return nil, errTooManyTags()
	}
	return out, nil
}

// mergeTags adds or replaces add in tags.
func mergeTags(tags, add []tag) ([]tag, error) {
	out := append([]tag(nil), tags...)
	for _, a := range add {
		found := false
		for i := range out {
			if out[i].Key == a.Key {
				out[i].Value, found = a.Value, true
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	if len(out) > maxTags {
		return nil, errTooManyTags()
	}
	return out, nil
}

// paging reads Marker and PageSize: the marker is the opaque offset of the
// next page.
func paging(p url.Values) (offset, size int, err error) {
	n, ok, err := protocol.QueryInt(p, "PageSize", 1, maxPageSize)
	if err != nil {
		return 0, 0, errValidation("Page size must be between 1 and %d", maxPageSize)
	}
	if ok {
		size = int(n)
	}
	if m := p.Get("Marker"); m != "" {
		b, derr := base64.RawURLEncoding.DecodeString(m)
		o, cerr := strconv.Atoi(string(b))
		if derr != nil || cerr != nil || o < 0 {
			return 0, 0, errValidation("Invalid marker '%s'", m)
		}
		offset = o
	}
	return offset, size, nil
}

// page cuts one page of items and returns the next marker (nil on the last).
func page[T any](items []T, offset, size int) ([]T, *string) {
	if offset > len(items) {
		offset = len(items)
	}
	rest := items[offset:]
	if size == 0 || len(rest) <= size {
		return rest, nil
	}
	m := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + size)))
	return rest[:size], &m
}

// intParam reads an optional integer parameter within [min, max]; out of
// range is a ValidationError worded by msg.
func intParam(p url.Values, name string, min, max int, msg string) (int, bool, error) {
	s := p.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		if msg == "" {
			msg = name + " must be between " + strconv.Itoa(min) + " and " + strconv.Itoa(max)
		}
		return 0, false, errValidation("%s", msg)
	}
	return n, true, nil
}

func boolParam(p url.Values, name string) (bool, bool, error) {
	b, ok, err := protocol.QueryBool(p, name)
	if err != nil {
		return false, false, errValidation("%s must be true or false", name)
	}
	return b, ok, nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
