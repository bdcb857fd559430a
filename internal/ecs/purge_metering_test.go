package ecs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// flakyMeter fails until ok is set, and counts its calls.
type flakyMeter struct {
	ok    bool
	calls int
}

func (m *flakyMeter) MeterTask(context.Context, StoppedTask) error {
	m.calls++
	if !m.ok {
		return errors.New("store unavailable")
	}
	return nil
}

// A stopped task is not purged before it is metered: the purge meters
// whatever a crash left unmetered, and deletes it only on a later pass.
func TestPurgeMetersBeforeDeleting(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	meter := &flakyMeter{}
	s := New(Config{Store: st, Logger: logger, Meter: meter, StoppedRetention: time.Minute})
	stopped := time.Now().Add(-2 * time.Hour)
	key := taskKey(scope{"000000000000", "us-east-1"}, "c", "t1")
	rec := taskRecord{Task: Task{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/c/t1", LastStatus: agentapi.StatusStopped,
		StoppedAt: NewTime(stopped), PullStartedAt: NewTime(stopped.Add(-time.Minute))},
		Spec: agentapi.TaskSpec{TaskID: "t1", Account: "000000000000", Region: "us-east-1"}}
	if err := st.Put(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	var got taskRecord
	for pass, want := range []struct {
		ok              bool
		exists, metered bool
	}{
		{ok: false, exists: true, metered: false}, // metering fails: kept
		{ok: true, exists: true, metered: true},   // metered now, deleted next time
		{ok: true, exists: false},                 // purged
	} {
		meter.ok = want.ok
		if err := s.purgeStopped(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := st.Get(ctx, key, &got)
		if exists := err == nil; exists != want.exists || (exists && got.Metered != want.metered) {
			t.Fatalf("pass %d: exists %v (%v) metered %v, want %+v", pass, exists, err, got.Metered, want)
		}
	}
	if meter.calls != 2 {
		t.Errorf("meter called %d times, want 2", meter.calls)
	}
}

// A timestamp survives any number of store round trips.
func TestTimeRoundTripKeepsMilliseconds(t *testing.T) {
	want := time.Date(2026, 11, 26, 2, 3, 0, 113e6, time.UTC)
	tm := NewTime(want)
	for range 5 {
		b, err := tm.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		tm = &Time{}
		if err := tm.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
	}
	if !tm.Equal(want) {
		t.Fatalf("after round trips %s, want %s", tm.Time, want)
	}
}
