package ecs

import (
	"context"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

func TestNodeHub(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	// Revisions before the hub starts: it cannot tell what changed then.
	for i := 0; i < 3; i++ {
		if err := st.Put(ctx, store.Key("assign", "n1", "t0"), map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	h := newNodeHub(st, logger, store.Prefix("assign"), store.Prefix("fw"))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Before the watch runs nothing is known: a poll returns at once.
	waited := func(node string, since int64, wait time.Duration) time.Duration {
		t0 := time.Now()
		h.wait(ctx, node, since, wait)
		return time.Since(t0)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h.mu.Lock()
		started := h.start != unknown
		h.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hub did not start")
		}
	}
	resp, err := st.C.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	now := resp.Header.Revision
	// A revision from before the hub started: etcd is asked (n1 was
	// written since revision 1; n2 never was).
	if d := waited("n1", 1, time.Minute); d > time.Second {
		t.Errorf("a change from before the hub started waited %s", d)
	}
	if d := waited("n2", 1, 100*time.Millisecond); d < 90*time.Millisecond {
		t.Errorf("no change of n2 since revision 1, but the poll returned after %s", d)
	}
	if d := waited("n1", now, 100*time.Millisecond); d < 90*time.Millisecond {
		t.Errorf("nothing changed, but the poll returned after %s", d)
	}

	// A change of n1 wakes n1's polls, not n2's.
	woke := make(chan time.Duration, 2)
	go func() { woke <- waited("n1", now, time.Minute) }()
	go func() { woke <- waited("n2", now, 300*time.Millisecond) }()
	time.Sleep(50 * time.Millisecond)
	if err := st.Put(ctx, store.Key("fw", "n1", "eni-1"), map[string]int{"revision": 1}); err != nil {
		t.Fatal(err)
	}
	first, second := <-woke, <-woke
	if first > 5*time.Second || second < 250*time.Millisecond {
		t.Errorf("n1 woke after %s, n2 after %s (want n1 at once, n2 at its timeout)", first, second)
	}
	// The change is remembered: a later poll from before it returns at once,
	// whatever key of the node changed (a delete too).
	if d := waited("n1", now, time.Minute); d > time.Second {
		t.Errorf("a poll from before a known change waited %s", d)
	}
	resp, _ = st.C.Get(ctx, "x")
	now = resp.Header.Revision
	go func() { woke <- waited("n1", now, time.Minute) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := st.C.Delete(ctx, store.Key("fw", "n1", "eni-1")); err != nil {
		t.Fatal(err)
	}
	if d := <-woke; d > 5*time.Second {
		t.Errorf("a delete woke the poll after %s", d)
	}
}
