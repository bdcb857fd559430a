package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/lbproxy"
)

func TestApplySetDelta(t *testing.T) {
	for _, tc := range []struct {
		name                string
		old, added, removed []string
		want                []string
	}{
		{"empty", nil, nil, nil, []string{}},
		{"add to empty", nil, []string{"10.0.0.9", "10.0.0.1"}, nil, []string{"10.0.0.1", "10.0.0.9"}},
		{"add between", []string{"10.0.0.1", "10.0.0.3"}, []string{"10.0.0.2"}, nil, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{"add after", []string{"10.0.0.1"}, []string{"10.0.0.4"}, nil, []string{"10.0.0.1", "10.0.0.4"}},
		{"add one held", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.2", "10.0.0.2"}, nil, []string{"10.0.0.1", "10.0.0.2"}},
		{"remove", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, nil, []string{"10.0.0.2"}, []string{"10.0.0.1", "10.0.0.3"}},
		{"remove absent", []string{"10.0.0.1"}, nil, []string{"10.0.0.7"}, []string{"10.0.0.1"}},
		{"removed and added back", []string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.2"}, []string{"10.0.0.2"}, []string{"10.0.0.1", "10.0.0.2"}},
		{"remove all, add new", []string{"10.0.0.5"}, []string{"10.0.0.6"}, []string{"10.0.0.5"}, []string{"10.0.0.6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ApplySetDelta(AddressSet{Name: "s", Revision: 1, Addresses: tc.old},
				AddressSet{Name: "s", Revision: 2, Delta: true, Addresses: tc.added, Removed: tc.removed})
			if !slices.Equal(got.Addresses, tc.want) || got.Revision != 2 || got.Name != "s" || got.Delta {
				t.Errorf("got %+v, want addresses %v at revision 2", got, tc.want)
			}
		})
	}
}

// The merge agrees with the plain way (a map of members) on random sets.
func TestApplySetDeltaRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func() string { return fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(40)) }
	for i := range 500 {
		members := map[string]bool{}
		for range r.IntN(60) {
			members[addr()] = true
		}
		old := slices.Sorted(maps.Keys(members))
		var added, removed []string
		for range r.IntN(8) {
			added = append(added, addr())
		}
		for range r.IntN(8) {
			removed = append(removed, addr())
		}
		for _, a := range removed {
			delete(members, a)
		}
		for _, a := range added {
			members[a] = true
		}
		want := slices.Sorted(maps.Keys(members))
		got := ApplySetDelta(AddressSet{Addresses: old}, AddressSet{Revision: 1, Addresses: added, Removed: removed})
		if !slices.Equal(got.Addresses, want) && (len(want) != 0 || len(got.Addresses) != 0) {
			t.Fatalf("case %d: old %v + %v - %v = %v, want %v", i, old, added, removed, got.Addresses, want)
		}
	}
}

// A client rebuilds a node's whole list from what it held and a delta:
// with the ids of all (present), or with word that none left (same).
func TestHeldMerge(t *testing.T) {
	id := func(s string) string { return s[:1] }
	for _, tc := range []struct {
		name     string
		held     []string
		changed  []string
		present  []string
		same     bool
		want     []string
		wantHeld []string
		lacking  int
	}{
		{name: "one changed, one left", held: []string{"a1", "b1", "c1"}, changed: []string{"b2"}, present: []string{"a", "b"},
			want: []string{"a1", "b2"}, wantHeld: []string{"a1", "b2"}},
		{name: "one joined, none left", held: []string{"c1", "a1"}, changed: []string{"b1"}, same: true,
			want: []string{"a1", "b1", "c1"}, wantHeld: []string{"a1", "b1", "c1"}},
		{name: "nothing changed, none left", held: []string{"b1", "a1"}, same: true,
			want: []string{"a1", "b1"}, wantHeld: []string{"a1", "b1"}},
		{name: "all left", held: []string{"a1"}, present: []string{},
			want: []string{}, wantHeld: []string{}},
		{name: "a present id never seen", held: []string{"a1"}, present: []string{"a", "z"},
			want: []string{"a1"}, wantHeld: []string{"a1"}, lacking: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := held[string]{id: id}
			h.reset(tc.held)
			whole, lacking := h.merge(tc.changed, tc.present, tc.same)
			if !slices.Equal(whole, tc.want) || lacking != tc.lacking {
				t.Errorf("whole %v lacking %d, want %v lacking %d", whole, lacking, tc.want, tc.lacking)
			}
			if got := slices.Sorted(maps.Values(h.byID)); !slices.Equal(got, tc.wantHeld) {
				t.Errorf("held %v after, want %v", got, tc.wantHeld)
			}
			// Nothing changes and none leave: the same list again.
			if again, _ := h.merge(nil, nil, true); !slices.Equal(again, whole) {
				t.Errorf("the next empty delta gives %v, want %v", again, whole)
			}
		})
	}
}

// A poll's reply, as the control plane encodes it, comes back from the
// client as it was: load balancers' durations included (a decoder that
// cannot read them, as JSON v2's default cannot, fails every poll of a
// host with a load balancer).
func TestTasksReplyRoundTrip(t *testing.T) {
	want := TasksResponse{Revision: 7, Tasks: []TaskSpec{{TaskID: "t1", TaskArn: "arn:aws:ecs:us-east-1:123456789012:task/default/t1"}},
		Known: []KnownState{}, LoadBalancers: []LoadBalancerSpec{{ARN: "arn:lb", Revision: 3,
			Proxy: lbproxy.LoadBalancer{IdleTimeout: 60 * time.Second}}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(want)
	}))
	t.Cleanup(srv.Close)
	got, err := (&Client{BaseURL: srv.URL, Token: "t"}).Tasks(context.Background(), "n1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the client decoded %+v, the server sent %+v", got, want)
	}
}
