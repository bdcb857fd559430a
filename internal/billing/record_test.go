package billing

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRecordExactlyOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stop := time.Now().Add(-time.Hour).Truncate(time.Second)
	task := e.task("t1", "prod", "service:api", stop.Add(-10*time.Second), stop)

	// Concurrent writers: two "replicas" and repeated reports.
	other := New(Config{Store: testStore})
	var wg sync.WaitGroup
	created := make(chan bool, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := e.s
			if i%2 == 1 {
				s = other
			}
			ok, err := s.Record(ctx, task)
			if err != nil {
				t.Error(err)
			}
			created <- ok
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for ok := range created {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d writers created the usage record, want 1", n)
	}
	// A restart: a new service over the same store meters again, later,
	// with a later clock: nothing changes.
	restarted := New(Config{Store: testStore, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if ok, err := restarted.Record(ctx, task); err != nil || ok {
		t.Fatalf("second pass created a record (%v, %v)", ok, err)
	}
	usage, err := e.s.list(ctx, e.acct)
	if err != nil || len(usage) != 1 {
		t.Fatalf("usage %v (%v), want one record", usage, err)
	}
	if usage[0].BilledSeconds != 60 {
		t.Errorf("billed %d s, want 60", usage[0].BilledSeconds)
	}
}

func TestRecordMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stop := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, id := range []string{"a", "b", "a"} {
		if _, err := e.s.Record(ctx, e.task(id, "prod", "family:web", stop.Add(-2*time.Minute), stop)); err != nil {
			t.Fatal(err)
		}
	}
	// Two tasks of 120 s at 0.25 vCPU and 0.5 GB.
	if got := testutil.ToFloat64(e.s.metrics.vcpu.WithLabelValues(e.acct, "prod")); !near(got, 60) {
		t.Errorf("vCPU-seconds %v, want 60", got)
	}
	if got := testutil.ToFloat64(e.s.metrics.gb.WithLabelValues(e.acct, "prod")); !near(got, 120) {
		t.Errorf("GB-seconds %v, want 120", got)
	}
	want := 2 * (0.25*120/3600*0.04048 + 0.5*120/3600*0.004445)
	if got := testutil.ToFloat64(e.s.metrics.cost.WithLabelValues(e.acct, "prod")); !near(got, want) {
		t.Errorf("cost %v, want %v", got, want)
	}
	if n, err := testutil.GatherAndCount(e.reg, "berth_billing_cost_usd_total", "berth_billing_tasks_total"); err != nil || n != 2 {
		t.Errorf("%d series (%v), want 2", n, err)
	}
}
