package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
)

// The hub's whole copy of a set stays current through more changes than
// its log keeps: a set read whole once is never read again while the
// hub's watch runs, and what the copy gives equals the set's members.
func TestHubSetCopyOutlivesItsLog(t *testing.T) {
	h := newNodeHub(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.start = 1
	const name = "123456789012/us-east-1/sg-web"
	members := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	change := func(rev int64) {
		var c agentapi.AddressSetChange
		switch a := fmt.Sprintf("10.0.%d.%d", rng.IntN(8), rng.IntN(256)); {
		case members[a]:
			c.Remove = a
			delete(members, a)
		case rng.IntN(4) == 0: // several join in one write
			c.Added = []string{a}
			members[a] = true
			if b := fmt.Sprintf("10.1.%d.%d", rng.IntN(8), rng.IntN(256)); !members[b] {
				c.Added = append(c.Added, b)
				members[b] = true
			}
		default:
			c.Add = a
			members[a] = true
		}
		v, _ := json.Marshal(c)
		h.mu.Lock()
		h.setSeen[name] = rev
		h.logSet(name, rev, v)
		h.mu.Unlock()
	}
	rev := int64(10)
	for ; rev < 100; rev++ {
		change(rev)
	}
	h.keepCopy(agentapi.AddressSet{Name: name, Revision: rev - 1, Addresses: slices.Sorted(maps.Keys(members))}, rev-1)
	for ; rev < 100+3*maxSetLog; rev++ {
		change(rev)
		if (rev-100)%(maxSetLog+maxSetLog/2) != 0 { // more apart than the log keeps
			continue
		}
		got, ok := h.wholeSet(context.Background(), name, rev)
		if !ok || got.Revision != rev || !slices.Equal(got.Addresses, slices.Sorted(maps.Keys(members))) {
			t.Fatalf("at %d: whole set ok %v, revision %d, %d addresses; want %d", rev, ok, got.Revision, len(got.Addresses), len(members))
		}
	}
	h.mu.Lock()
	floor, cp := h.setFloor[name], h.copies[name]
	h.mu.Unlock()
	if floor <= 100 || cp.asOf < floor {
		t.Fatalf("the log's floor is %d and the copy is as of %d: the copy fell behind the log", floor, cp.asOf)
	}
	// A set deleted: no copy across it.
	h.mu.Lock()
	h.setSeen[name] = rev
	h.logSet(name, rev, nil)
	h.mu.Unlock()
	if _, ok := h.wholeSet(context.Background(), name, rev); ok {
		t.Fatal("a whole set across the set's deletion")
	}
}

// A set that last changed before the hub started, read after it, is kept:
// the hub can tell every change after the read.
func TestHubSetCopyOfAnOlderSet(t *testing.T) {
	h := newNodeHub(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.start = 50
	const name = "123456789012/us-east-1/sg-db"
	old := agentapi.AddressSet{Name: name, Revision: 10, Addresses: []string{"10.0.0.4"}}
	h.keepCopy(old, 40) // read before the hub started: cannot be followed
	if _, ok := h.wholeSet(context.Background(), name, 10); ok {
		t.Fatal("a copy read before the hub started was kept")
	}
	h.keepCopy(old, 60)
	if got, ok := h.wholeSet(context.Background(), name, 10); !ok || !slices.Equal(got.Addresses, old.Addresses) {
		t.Fatalf("the copy read after the hub started: %+v, %v", got, ok)
	}
	v, _ := json.Marshal(agentapi.AddressSetChange{Add: "10.0.0.9"})
	h.mu.Lock()
	h.setSeen[name] = 70
	h.logSet(name, 70, v)
	h.mu.Unlock()
	got, ok := h.wholeSet(context.Background(), name, 70)
	if !ok || got.Revision != 70 || !slices.Equal(got.Addresses, []string{"10.0.0.4", "10.0.0.9"}) {
		t.Fatalf("after a join at 70: %+v, %v", got, ok)
	}
}
