package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 50; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 25 * time.Millisecond}, {99, 50 * time.Millisecond}, {1, time.Millisecond}, {100, 50 * time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	s := Summarize(ds)
	if s.N != 50 || s.Min != time.Millisecond || s.Max != 50*time.Millisecond || s.Mean != 25500*time.Microsecond {
		t.Errorf("summary %+v", s)
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty sample")
	}
}
