package logs

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Runs (several events under one key) read exactly as one key per event
// would: every range, forward and backward, from every position, inside a
// run or not, in a stream and over a group; retention deletes whole keys.
// The model is the events sorted by (timestamp, seq).
func TestRunsReadAsEvents(t *testing.T) {
	st := newTestStore(t)
	now := time.UnixMilli(5_000_000)
	if err := st.CreateGroup(scA, "g", now); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var model []Event
	seq := uint64(0)
	for _, stream := range []string{"a", "b"} {
		if err := st.CreateStream(scA, "g", stream, now); err != nil {
			t.Fatal(err)
		}
	}
	// Batches with runs of equal timestamps (some longer than
	// maxRunEvents), single events, and timestamps out of order.
	for batch := range 12 {
		stream := []string{"a", "b"}[batch%2]
		var evs []Event
		for len(evs) < 1500 {
			ts := int64(1000 + rng.IntN(20))
			n := 1 + rng.IntN(4)
			if rng.IntN(6) == 0 {
				n = maxRunEvents + rng.IntN(300)
			}
			for range n {
				evs = append(evs, Event{Timestamp: ts, Message: fmt.Sprintf("%s-%d-%d%s", stream, batch, len(evs), strings.Repeat("x", rng.IntN(3)))})
			}
		}
		if _, err := st.Append(scA, "g", stream, evs, now, PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seq++
			e.Seq, e.IngestionTime, e.Stream = seq, now.UnixMilli(), stream
			model = append(model, e)
		}
	}
	slices.SortStableFunc(model, func(a, b Event) int {
		if a.Timestamp != b.Timestamp {
			return int(a.Timestamp - b.Timestamp)
		}
		return int(a.Seq) - int(b.Seq)
	})
	of := func(stream string) []Event {
		var out []Event
		for _, e := range model {
			if e.Stream == stream {
				e.Stream = ""
				out = append(out, e)
			}
		}
		return out
	}
	posAt := func(e Event) pos { return pos{ts: uint64(e.Timestamp), seq: e.Seq} }
	end := pos{ts: ^uint64(0), seq: ^uint64(0)}

	for _, stream := range []string{"a", "b"} {
		want := of(stream)
		got, err := st.readStream(scA, "g", stream, pos{}, end, true, 1<<30, 1<<30)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("stream %s: %d events, want %d (%v)", stream, len(got), len(want), err)
		}
		// From positions inside runs and between them, both ways, with
		// small limits.
		for range 200 {
			i, j := rng.IntN(len(want)), rng.IntN(len(want))
			if i > j {
				i, j = j, i
			}
			from, to := posAt(want[i]), posAt(want[j])
			limit := 1 + rng.IntN(50)
			fw, _ := st.readStream(scA, "g", stream, from, to, true, limit, 1<<30)
			if w := want[i:min(j, i+limit)]; !slices.Equal(fw, w) {
				t.Fatalf("stream %s forward [%d, %d) limit %d: %d events, want %d", stream, i, j, limit, len(fw), len(w))
			}
			bw, _ := st.readStream(scA, "g", stream, from, to, false, limit, 1<<30)
			if w := want[max(i, j-limit):j]; !slices.Equal(bw, w) {
				t.Fatalf("stream %s backward [%d, %d) limit %d: %d events, want %d", stream, i, j, limit, len(bw), len(w))
			}
		}
	}
	// The group, merged, in pages from positions inside runs.
	var got []Event
	for next, more := (pos{}), true; more; {
		var err error
		next, more, err = st.scanGroup(scA, "g", func(string) bool { return true }, next, end, 1+rng.IntN(700), func(e Event) bool {
			got = append(got, e)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, model) {
		t.Fatalf("group: %d events, want %d", len(got), len(model))
	}
	info, err := st.Streams(scA, "g", "")
	if err != nil || len(info) != 2 || info[0].StoredBytes+info[1].StoredBytes != storedBytes(model) {
		t.Fatalf("streams: %+v %v, want %d bytes in all", info, err, storedBytes(model))
	}

	// Retention: everything before 1010 goes, whole keys at a time.
	if err := st.SetRetention(scA, "g", 1); err != nil {
		t.Fatal(err)
	}
	var kept []Event
	for _, e := range model {
		if e.Timestamp >= 1010 {
			kept = append(kept, e)
		}
	}
	cutoffNow := time.UnixMilli(1010).Add(24 * time.Hour)
	if _, err := st.Expire(cutoffNow, 100); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	_, _, _ = st.scanGroup(scA, "g", func(string) bool { return true }, pos{}, end, 1<<30, func(e Event) bool {
		got = append(got, e)
		return true
	})
	if !slices.Equal(got, kept) {
		t.Fatalf("after expiry: %d events, want %d", len(got), len(kept))
	}
	info, _ = st.Streams(scA, "g", "")
	if info[0].StoredBytes+info[1].StoredBytes != storedBytes(kept) {
		t.Fatalf("after expiry: %+v, want %d bytes in all", info, storedBytes(kept))
	}
}

func storedBytes(evs []Event) int64 {
	var n int64
	for _, e := range evs {
		n += int64(len(e.Message))
	}
	return n
}
