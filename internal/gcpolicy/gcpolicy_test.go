package gcpolicy

import (
	"context"
	"os"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const gib = int64(1) << 30
	for _, tc := range []struct {
		name    string
		live    int64
		ceiling int64
		want    int
	}{
		{"nothing live yet", 0, 2 * gib, 300},
		{"small heap", 100 << 20, 2 * gib, 300},
		{"goal exactly at the ceiling", gib / 2, 2 * gib, 300},
		{"goal just over the ceiling", gib/2 + 1<<20, 2 * gib, 290},
		{"between", 800 << 20, 2 * gib, 150},
		{"at half the ceiling: the default", gib, 2 * gib, 100},
		{"past half the ceiling: never under the default", 3 * gib / 2, 2 * gib, 100},
		{"past the ceiling", 3 * gib, 2 * gib, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.ceiling, 300); got != tc.want {
				t.Errorf("Percent(%d, %d, 300) = %d, want %d", tc.live, tc.ceiling, got, tc.want)
			}
		})
	}
}

func gogc(t *testing.T) int64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime/metrics has no /gc/gogc:percent")
	}
	return int64(s[0].Value.Uint64())
}

// Run sets the high percent for this test's small heap, and puts back what
// it found when it stops; with GOGC in the environment it changes nothing.
func TestRun(t *testing.T) {
	t.Run("policy", func(t *testing.T) {
		unsetenv(t, "GOGC")
		unsetenv(t, "GOMEMLIMIT")
		before := gogc(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); Run(ctx, Config{Percent: 250, Interval: time.Millisecond}) }()
		deadline := time.Now().Add(5 * time.Second)
		for gogc(t) != 250 {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC is %d, want 250 under the policy", gogc(t))
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		if got := gogc(t); got != before {
			t.Errorf("GOGC is %d after the policy stopped, want %d back", got, before)
		}
	})
	t.Run("user's GOGC", func(t *testing.T) {
		t.Setenv("GOGC", "100")
		before := gogc(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		Run(ctx, Config{Percent: 250, Interval: time.Millisecond})
		if time.Since(start) > 500*time.Millisecond {
			t.Error("Run ran although GOGC is set")
		}
		if got := gogc(t); got != before {
			t.Errorf("GOGC is %d, want the user's %d left alone", got, before)
		}
	})
}

// unsetenv unsets k for the test; t.Setenv puts it back afterwards.
func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "")
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
