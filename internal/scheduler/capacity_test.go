package scheduler

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitByProviders(t *testing.T) {
	A, B, C := "A", "B", "C"
	tests := []struct {
		name    string
		items   []ProviderShare
		n       int
		running map[string]int
		want    []string
	}{
		{"single provider takes all, weight 0 too", []ProviderShare{{Provider: A}}, 3, nil, []string{A, A, A}},
		{"1:1 alternates", []ProviderShare{{Provider: A, Weight: 1}, {Provider: B, Weight: 1}}, 4, nil, []string{A, B, A, B}},
		{"1:4", []ProviderShare{{Provider: A, Weight: 1}, {Provider: B, Weight: 4}}, 5, nil, []string{B, B, B, A, B}},
		{"base first, then 1:3 beyond it",
			[]ProviderShare{{Provider: A, Base: 2, Weight: 1}, {Provider: B, Weight: 3}}, 10, nil,
			[]string{A, A, B, B, A, B, B, B, A, B}},
		{"base on a later provider is satisfied first",
			[]ProviderShare{{Provider: A, Weight: 1}, {Provider: B, Base: 1, Weight: 1}}, 3, nil,
			[]string{B, A, B}},
		{"weight 0 provider gets only its base",
			[]ProviderShare{{Provider: A, Base: 2}, {Provider: B, Weight: 1}}, 4, nil, []string{A, A, B, B}},
		{"running tasks count toward the base",
			[]ProviderShare{{Provider: A, Base: 2, Weight: 1}, {Provider: B, Weight: 1}}, 2, map[string]int{A: 2}, []string{A, B}},
		{"running tasks keep the service's ratio",
			[]ProviderShare{{Provider: A, Base: 1, Weight: 1}, {Provider: B, Weight: 3}}, 4, map[string]int{A: 1, B: 3},
			[]string{A, B, B, A}},
		{"running tasks beyond the ratio are made up for",
			[]ProviderShare{{Provider: A, Weight: 1}, {Provider: B, Weight: 1}}, 3, map[string]int{B: 5, C: 9},
			[]string{A, A, A}},
		{"zero tasks", []ProviderShare{{Provider: A, Weight: 1}}, 0, nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitByProviders(tc.items, tc.n, tc.running)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SplitByProviders() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSplitByProvidersLargeRatio(t *testing.T) {
	items := []ProviderShare{{Provider: "od", Base: 10, Weight: 1}, {Provider: "spot", Weight: 4}}
	got, err := SplitByProviders(items, 1010, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, p := range got {
		n[p]++
	}
	if n["od"] != 10+200 || n["spot"] != 800 {
		t.Fatalf("split %v, want od 210, spot 800", n)
	}
}

func TestValidateProviderStrategy(t *testing.T) {
	tests := []struct {
		items []ProviderShare
		err   string // substring; empty means valid
	}{
		{[]ProviderShare{{Provider: "A"}}, ""},
		{[]ProviderShare{{Provider: "A", Base: 1, Weight: 1}, {Provider: "B", Weight: 2}}, ""},
		{nil, "empty"},
		{[]ProviderShare{{Provider: ""}}, "name is empty"},
		{[]ProviderShare{{Provider: "A", Weight: 1}, {Provider: "A", Weight: 1}}, "more than once"},
		{[]ProviderShare{{Provider: "A", Base: 1, Weight: 1}, {Provider: "B", Base: 1, Weight: 1}}, "only one"},
		{[]ProviderShare{{Provider: "A"}, {Provider: "B"}}, "weight greater than zero"},
		{[]ProviderShare{{Provider: "A", Base: -1}}, "base"},
		{[]ProviderShare{{Provider: "A", Base: MaxBase + 1}}, "base"},
		{[]ProviderShare{{Provider: "A", Weight: MaxWeight + 1}}, "weight"},
		{make([]ProviderShare, MaxProviders+1), "at most"},
	}
	for _, tc := range tests {
		err := ValidateProviderStrategy(tc.items)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ValidateProviderStrategy(%v) = %v, want %q", tc.items, err, tc.err)
		}
		if tc.err != "" {
			if _, err := SplitByProviders(tc.items, 1, nil); err == nil {
				t.Errorf("SplitByProviders(%v) accepted an invalid strategy", tc.items)
			}
		}
	}
}
