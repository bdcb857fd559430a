package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// The host index shows what etcd holds under nodes/ as soon as a reader
// asks: hosts registered before it started and after, a record rewritten,
// a host deregistered, and a host whose lease expired; lease() names each
// host's lease. Stopped, it sends readers to etcd.
func TestNodeIndexMatchesStore(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	x := newNodeIndex(st, logger)
	register := func(id string, cpu int, ttl int64) int64 {
		t.Helper()
		lease, err := st.C.Grant(ctx, ttl)
		if err != nil {
			t.Fatal(err)
		}
		rec := nodeRecord{Node: agentapi.Node{RegisterRequest: agentapi.RegisterRequest{NodeID: id, CPU: cpu}}, LeaseID: int64(lease.ID)}
		b, _ := json.Marshal(rec)
		if _, err := st.C.Put(ctx, store.Key("nodes", id), string(b), clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
		return int64(lease.ID)
	}
	check := func(want map[string]int) {
		t.Helper()
		recs, err := x.records(ctx, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.NodeID] = r.CPU
		}
		if !maps.Equal(got, want) {
			t.Fatalf("index has %v, want %v", got, want)
		}
		ids, err := x.ids(ctx, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(ids)), slices.Sorted(maps.Keys(want))) {
			t.Fatalf("ids %v, want those of %v", ids, want)
		}
		// The fallback reads the same.
		fromEtcd, err := (&Service{st: st}).listHosts(ctx)
		if err != nil || len(fromEtcd) != len(want) {
			t.Fatalf("etcd has %d hosts (%v), want %d", len(fromEtcd), err, len(want))
		}
	}
	waitRunning := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !x.running.Load() || !x.progress.built(); {
			if time.Now().After(deadline) {
				t.Fatal("the index never started")
			}
			time.Sleep(time.Millisecond)
		}
	}

	if _, err := x.records(ctx, time.Second); !errors.Is(err, errIndexBehind) {
		t.Fatalf("an index not running must send readers to etcd, got %v", err)
	}
	l1 := register("h1", 1024, 60)
	// Not a host's record: left out.
	if _, err := st.C.Put(ctx, store.Key("nodes", "bad"), "{not json"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); x.run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	waitRunning()
	if recs, err := x.records(ctx, 2*time.Second); err != nil || len(recs) != 1 || recs[0].NodeID != "h1" {
		t.Fatalf("records %v %v, want h1's alone", recs, err)
	}
	if _, err := st.C.Delete(ctx, store.Key("nodes", "bad")); err != nil {
		t.Fatal(err)
	}
	check(map[string]int{"h1": 1024})
	l2 := register("h2", 2048, 60)
	register("h3", 512, 1)
	check(map[string]int{"h1": 1024, "h2": 2048, "h3": 512})
	if got, ok := x.lease("h2"); !ok || got != l2 {
		t.Fatalf("lease of h2 = %d %v, want %d", got, ok, l2)
	}
	// Re-registered under a new lease, with a new size.
	l1b := register("h1", 4096, 60)
	check(map[string]int{"h1": 4096, "h2": 2048, "h3": 512})
	if got, _ := x.lease("h1"); got != l1b || got == l1 {
		t.Fatalf("lease of h1 = %d, want the new %d", got, l1b)
	}
	// Deregistered (its key deleted), and one whose lease expired.
	if _, err := st.C.Delete(ctx, store.Key("nodes", "h2")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := x.records(ctx, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h3's lease never expired out of the index: %d records", len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	check(map[string]int{"h1": 4096})
	if _, ok := x.lease("h2"); ok {
		t.Fatal("a deregistered host still has a lease in the index")
	}

	stop()
	<-done
	if _, err := x.ids(context.Background(), time.Second); !errors.Is(err, errIndexBehind) {
		t.Fatalf("a stopped index must send readers to etcd, got %v", err)
	}
	if _, ok := x.lease("h1"); ok {
		t.Fatal("a stopped index must not answer leases")
	}
}
