package logs

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
		err     error
	}{
		{pattern: "", match: []string{"", "anything"}},
		{pattern: `""`, match: []string{"x"}},
		{pattern: "ERROR", match: []string{"[ERROR] x", "xERRORx"}, miss: []string{"error", "ERR"}},
		{pattern: "ERROR Exception", match: []string{"ERROR: Exception"}, miss: []string{"ERROR only", "Exception only"}},
		{pattern: `"disk full"`, match: []string{"the disk full now"}, miss: []string{"disk is full"}},
		{pattern: `"say \"hi\""`, match: []string{`I say "hi"`}, miss: []string{"I say hi"}},
		{pattern: "?ERROR ?WARN", match: []string{"ERROR", "a WARN"}, miss: []string{"INFO"}},
		{pattern: "ERROR -retry", match: []string{"ERROR fatal"}, miss: []string{"ERROR, will retry"}},
		{pattern: "a ?b ?c -d", match: []string{"a c"}, miss: []string{"a", "a b d"}},
		{pattern: `-"x y"`, match: []string{"x  y"}, miss: []string{"a x y"}},
		{pattern: "  spaced\tterms  ", match: []string{"terms spaced"}},
		{pattern: `"open`, err: ErrBadPattern},
		{pattern: `a"b`, err: ErrBadPattern},
		{pattern: `?`, err: ErrBadPattern},
		{pattern: `x -`, err: ErrBadPattern},
		{pattern: `{ $.level = "error" }`, err: ErrUnsupportedPattern},
		{pattern: `[ip, user]`, err: ErrUnsupportedPattern},
		{pattern: `%ERR[A-Z]+%`, err: ErrUnsupportedPattern},
		{pattern: strings.Repeat("a", 1025), err: ErrBadPattern},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			for _, s := range tt.match {
				if !p.Match(s) {
					t.Errorf("%q does not match %q", tt.pattern, s)
				}
			}
			for _, s := range tt.miss {
				if p.Match(s) {
					t.Errorf("%q matches %q", tt.pattern, s)
				}
			}
		})
	}
}

// FuzzParsePattern: the parser never panics, errors are its own, and a
// parsed pattern's terms are all found in a message made of them.
func FuzzParsePattern(f *testing.F) {
	f.Add("ERROR Exception", "ERROR Exception")
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			if !errors.Is(err, ErrBadPattern) && !errors.Is(err, ErrUnsupportedPattern) {
				t.Fatalf("ParsePattern(%q): %v", pattern, err)
			}
			return
		}
		_ = p.Match(msg)
		for _, term := range append(append([]string{}, p.all...), p.any...) {
			if term == "" {
				t.Fatalf("ParsePattern(%q): empty term", pattern)
			}
		}
		all := Pattern{all: p.all, any: p.any}
		if !all.Match(strings.Join(append(append([]string{}, p.all...), p.any...), " ")) {
			t.Fatalf("ParsePattern(%q): its own terms do not match", pattern)
		}
		if p.IsEmpty() && !p.Match(msg) {
			t.Fatalf("empty pattern %q does not match %q", pattern, msg)
		}
	})
}
