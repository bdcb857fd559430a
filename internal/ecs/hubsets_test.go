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
	h.keepCopy(agentapi.AddressSet{Name: name, Revision: rev - 1, Addresses: slices.Sorted(maps.Keys(members))})
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
	if floor <= 100 || cp.Revision < floor {
		t.Fatalf("the log's floor is %d and the copy is at %d: the copy fell behind the log", floor, cp.Revision)
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
