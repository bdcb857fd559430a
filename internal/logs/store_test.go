package logs

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "logs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var scA = Scope{Account: "111111111111", Region: "us-east-1"}

func mustAppend(t *testing.T, st *Store, sc Scope, group, stream string, now time.Time, ts ...int64) {
	t.Helper()
	var evs []Event
	for _, x := range ts {
		evs = append(evs, Event{Timestamp: x, Message: fmt.Sprintf("m%d", x)})
	}
	if _, err := st.Append(sc, group, stream, evs, now, PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func messages(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

func TestStoreOrderAndRanges(t *testing.T) {
	st := newTestStore(t)
	now := time.UnixMilli(1_000_000)
	if err := st.CreateGroup(scA, "g", now); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateStream(scA, "g", "s", now); err != nil {
		t.Fatal(err)
	}
	// Out of order across batches, and equal timestamps: by timestamp, then
	// by ingestion order.
	mustAppend(t, st, scA, "g", "s", now, 30, 10)
	if _, err := st.Append(scA, "g", "s", []Event{{Timestamp: 10, Message: "m10b"}, {Timestamp: 20, Message: "m20"}}, now, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	all := pos{ts: ^uint64(0), seq: ^uint64(0)}
	tests := []struct {
		name     string
		from, to pos
		forward  bool
		limit    int
		want     string
	}{
		{"all forward", pos{}, all, true, 100, "[m10 m10b m20 m30]"},
		{"all backward", pos{}, all, false, 100, "[m10 m10b m20 m30]"},
		{"head 2", pos{}, all, true, 2, "[m10 m10b]"},
		{"tail 2", pos{}, all, false, 2, "[m20 m30]"},
		{"from 20", pos{ts: 20}, all, true, 100, "[m20 m30]"},
		{"before 30", pos{}, pos{ts: 30}, true, 100, "[m10 m10b m20]"},
		{"window backward", pos{ts: 11}, pos{ts: 31}, false, 100, "[m20 m30]"},
		{"empty", pos{ts: 31}, all, true, 100, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := st.readStream(scA, "g", "s", tt.from, tt.to, tt.forward, tt.limit, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(messages(evs)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := st.readStream(scA, "g", "nope", pos{}, all, true, 1, 1); err != ErrStreamNotFound {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := st.readStream(scA, "nope", "s", pos{}, all, true, 1, 1); err != ErrGroupNotFound {
		t.Errorf("missing group: %v", err)
	}
}

func TestStoreGroupScanInterleaves(t *testing.T) {
	st := newTestStore(t)
	now := time.UnixMilli(1_000_000)
	_ = st.CreateGroup(scA, "g", now)
	for _, s := range []string{"a", "b"} {
		_ = st.CreateStream(scA, "g", s, now)
	}
	mustAppend(t, st, scA, "g", "a", now, 1, 3, 5)
	mustAppend(t, st, scA, "g", "b", now, 2, 3, 6)
	var got []string
	all := pos{ts: ^uint64(0)}
	_, more, err := st.scanGroup(scA, "g", func(string) bool { return true }, pos{}, all, 100, func(e Event) bool {
		got = append(got, e.Stream+e.Message)
		return true
	})
	if err != nil || more {
		t.Fatal(err, more)
	}
	if fmt.Sprint(got) != "[am1 bm2 am3 bm3 am5 bm6]" {
		t.Fatalf("interleaved: %v", got)
	}
	// Resume from a position: nothing seen twice, nothing skipped.
	got = nil
	next, more, _ := st.scanGroup(scA, "g", func(string) bool { return true }, pos{}, all, 3, func(e Event) bool {
		got = append(got, e.Message)
		return true
	})
	if !more {
		t.Fatal("scan limit: want more")
	}
	_, _, _ = st.scanGroup(scA, "g", func(string) bool { return true }, next, all, 100, func(e Event) bool {
		got = append(got, e.Message)
		return true
	})
	if fmt.Sprint(got) != "[m1 m2 m3 m3 m5 m6]" {
		t.Fatalf("resumed: %v", got)
	}
}

func TestStoreRetention(t *testing.T) {
	st := newTestStore(t)
	day := 24 * time.Hour
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	_ = st.CreateGroup(scA, "keep", now)
	_ = st.CreateGroup(scA, "short", now)
	for _, g := range []string{"keep", "short"} {
		_ = st.CreateStream(scA, g, "s", now)
		mustAppend(t, st, scA, g, "s", now, now.Add(-10*day).UnixMilli(), now.Add(-2*day).UnixMilli(), now.UnixMilli())
	}
	if err := st.SetRetention(scA, "short", 3); err != nil {
		t.Fatal(err)
	}
	n, err := st.Expire(now, 1) // one event per transaction
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	for g, want := range map[string]int{"keep": 3, "short": 2} {
		evs, _ := st.readStream(scA, g, "s", pos{}, pos{ts: ^uint64(0)}, true, 100, 1<<20)
		if len(evs) != want {
			t.Errorf("%s: %d events, want %d", g, len(evs), want)
		}
	}
	streams, _ := st.Streams(scA, "short", "")
	if len(streams) != 1 || streams[0].Events != 2 || streams[0].FirstEventTimestamp != now.Add(-2*day).UnixMilli() {
		t.Errorf("stream after expiry: %+v", streams)
	}
	if n, _ := st.Expire(now.Add(2*day), 1000); n != 1 {
		t.Errorf("second expiry deleted %d, want 1", n)
	}
}

func TestStoreAgentRetryStoredOnce(t *testing.T) {
	st := newTestStore(t)
	now := time.UnixMilli(5000)
	if off, err := st.EnsureStream(scA, "g", "s", true, now); err != nil || off != 0 {
		t.Fatal(off, err)
	}
	batch := []Event{{Timestamp: 1, Message: "a"}, {Timestamp: 2, Message: "b"}}
	for range 2 {
		if _, err := st.Append(scA, "g", "s", batch, now, PutOptions{AgentOffset: 4}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := st.readStream(scA, "g", "s", pos{}, pos{ts: ^uint64(0)}, true, 100, 1<<20)
	if len(evs) != 2 {
		t.Fatalf("retried batch stored %d events, want 2", len(evs))
	}
	if off, _ := st.EnsureStream(scA, "g", "s", false, now); off != 4 {
		t.Fatalf("offset %d, want 4", off)
	}
	if _, err := st.EnsureStream(scA, "other", "s", false, now); err != ErrGroupNotFound {
		t.Fatalf("missing group without create: %v", err)
	}
}

func TestStoreDeleteAndScopes(t *testing.T) {
	st := newTestStore(t)
	now := time.UnixMilli(5000)
	scB := Scope{Account: "222222222222", Region: "us-east-1"}
	scW := Scope{Account: scA.Account, Region: "eu-west-1"}
	for _, sc := range []Scope{scA, scB, scW} {
		_ = st.CreateGroup(sc, "g", now)
		_ = st.CreateStream(sc, "g", "s", now)
		mustAppend(t, st, sc, "g", "s", now, 1)
	}
	if err := st.CreateGroup(scA, "g", now); err != ErrGroupExists {
		t.Fatalf("duplicate group: %v", err)
	}
	if err := st.DeleteGroup(scA, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Group(scA, "g"); err != ErrGroupNotFound {
		t.Fatalf("deleted group: %v", err)
	}
	for _, sc := range []Scope{scB, scW} {
		if evs, err := st.readStream(sc, "g", "s", pos{}, pos{ts: ^uint64(0)}, true, 10, 1<<20); err != nil || len(evs) != 1 {
			t.Fatalf("%v: %v %v", sc, evs, err)
		}
	}
	// A group made again starts empty.
	_ = st.CreateGroup(scA, "g", now)
	_ = st.CreateStream(scA, "g", "s", now)
	if evs, _ := st.readStream(scA, "g", "s", pos{}, pos{ts: ^uint64(0)}, true, 10, 1<<20); len(evs) != 0 {
		t.Fatalf("recreated group has %d events", len(evs))
	}
}
