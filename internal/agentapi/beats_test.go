package agentapi

import (
	"testing"
	"time"
)

func TestBeats(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var off Beats
	off.renewed("n", t0)
	if off.due("n", at(10_000)) || off.fresh("n", at(1)) {
		t.Error("without an interval, polls carry no heartbeat and heartbeats are never left out")
	}
	b := &Beats{}
	b.SetInterval(4 * time.Second)
	if !b.due("n", t0) || b.fresh("n", t0) {
		t.Error("a node never renewed: its poll must carry a heartbeat and its heartbeat must go")
	}
	b.renewed("n", t0)
	for _, tc := range []struct {
		ms          int
		due, fresh  bool
		description string
	}{
		{1000, false, true, "just renewed"},
		{2999, false, true, "under three quarters of an interval"},
		{3000, true, true, "three quarters: a poll renews it, a heartbeat is still left out"},
		{3999, true, true, "just under an interval"},
		{4000, true, false, "an interval: the heartbeat goes"},
	} {
		if got := b.due("n", at(tc.ms)); got != tc.due {
			t.Errorf("%s (%d ms): due = %v, want %v", tc.description, tc.ms, got, tc.due)
		}
		if got := b.fresh("n", at(tc.ms)); got != tc.fresh {
			t.Errorf("%s (%d ms): fresh = %v, want %v", tc.description, tc.ms, got, tc.fresh)
		}
	}
	b.renewed("n", at(-5000)) // an older renewal never moves it back
	if b.due("n", at(1000)) {
		t.Error("an older renewal moved the last one back")
	}
	if b.fresh("other", at(1)) {
		t.Error("another node's heartbeat was left out")
	}
}
