package logs

import (
	"errors"
	"strings"
)

// Pattern is a parsed filter pattern of the unstructured kind: terms
// separated by spaces, each matched as a case-sensitive substring of the
// message.
//
//	ERROR               events containing ERROR
//	ERROR Exception     containing both
//	"disk full"         containing the phrase (quotes keep spaces; \" and \\ escape)
//	?ERROR ?WARN        containing at least one of the ?-terms
//	ERROR -Retrying     containing ERROR and not Retrying
//
// An event matches when it holds every plain term, none of the - terms and,
// if there are ?-terms, at least one of them. The empty pattern matches
// everything. JSON ({ $.x = … }), space-delimited ([a, b]) and regular
// expression (%…%) patterns are refused with ErrUnsupportedPattern.
type Pattern struct {
	all, any, none []string
}

// ErrUnsupportedPattern is returned by ParsePattern for valid CloudWatch
// syntax berth does not evaluate.
var ErrUnsupportedPattern = errors.New("unsupported filter pattern")

// ErrBadPattern is returned by ParsePattern for an invalid pattern.
var ErrBadPattern = errors.New("invalid filter pattern")

// maxPatternLen is CloudWatch Logs' limit on filterPattern.
const maxPatternLen = 1024

// ParsePattern parses a filter pattern.
func ParsePattern(s string) (Pattern, error) {
	var p Pattern
	if len(s) > maxPatternLen {
		return p, ErrBadPattern
	}
	t := strings.TrimSpace(s)
	if t != "" && strings.ContainsRune("{[%", rune(t[0])) {
		return p, ErrUnsupportedPattern
	}
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		kind := byte(0)
		if s[i] == '?' || s[i] == '-' {
			kind = s[i]
			i++
		}
		var term string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return Pattern{}, ErrBadPattern
			}
			term = b.String()
		} else {
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				if s[j] == '"' {
					return Pattern{}, ErrBadPattern
				}
				j++
			}
			term = s[i:j]
			i = j
		}
		if term == "" {
			if kind != 0 {
				return Pattern{}, ErrBadPattern // a lone ? or -
			}
			continue // ""
		}
		switch kind {
		case '?':
			p.any = append(p.any, term)
		case '-':
			p.none = append(p.none, term)
		default:
			p.all = append(p.all, term)
		}
	}
	return p, nil
}

// Match reports whether msg matches the pattern.
func (p Pattern) Match(msg string) bool {
	for _, t := range p.all {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range p.none {
		if strings.Contains(msg, t) {
			return false
		}
	}
	if len(p.any) == 0 {
		return true
	}
	for _, t := range p.any {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// IsEmpty reports whether the pattern matches every event.
func (p Pattern) IsEmpty() bool { return len(p.all)+len(p.any)+len(p.none) == 0 }
