package awstags

import (
	"strings"
	"testing"
)

type tag struct{ K, V string }

func kv(t tag) (string, string) { return t.K, t.V }
func key(t tag) string          { return t.K }

func TestProblem(t *testing.T) {
	tests := []struct {
		name string
		tags []tag
		want string // fragment; "" means valid
	}{
		{"valid", []tag{{"a", "1"}, {"b", ""}}, ""},
		{"empty key", []tag{{"", "1"}}, "between 1 and 128"},
		{"long key", []tag{{strings.Repeat("k", 129), ""}}, "between 1 and 128"},
		{"long value", []tag{{"k", strings.Repeat("v", 257)}}, "up to 256"},
		{"reserved prefix", []tag{{"AWS:x", ""}}, "reserved"},
		{"duplicate", []tag{{"a", "1"}, {"a", "2"}}, "Duplicate tag key: a."},
	}
	for _, tc := range tests {
		got := Problem(tc.tags, kv)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: Problem = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMergeAndRemove(t *testing.T) {
	have := []tag{{"a", "1"}, {"b", "2"}}
	got := Merge(have, []tag{{"b", "3"}, {"c", "4"}}, key)
	if want := []tag{{"a", "1"}, {"b", "3"}, {"c", "4"}}; !equal(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
	if have[1].V != "2" {
		t.Fatal("Merge changed its input")
	}
	if got := Remove(got, []string{"a", "c", "z"}, key); !equal(got, []tag{{"b", "3"}}) {
		t.Fatalf("Remove = %v", got)
	}
}

func equal(a, b []tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
