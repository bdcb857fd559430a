package store

import (
	"strings"
	"testing"
)

// Key and Prefix build what Root, the parts joined by "/" and the tail
// spell, whatever the parts.
func TestKeys(t *testing.T) {
	for _, parts := range [][]string{
		nil,
		{""},
		{"nodes"},
		{"assign", "sim-00001", "0123456789abcdef"},
		{"acct", "000000000000", "us-east-1", "tasks", "default", ""},
		{"", "", ""},
	} {
		want := Root + strings.Join(parts, "/")
		if got := Key(parts...); got != want {
			t.Errorf("Key(%q) = %q, want %q", parts, got, want)
		}
		if got := Prefix(parts...); got != want+"/" {
			t.Errorf("Prefix(%q) = %q, want %q", parts, got, want+"/")
		}
	}
}
