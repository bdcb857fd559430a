package scale

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// spin does rounds of busy work, or as many as it can in d (d > 0), and
// returns how many it did.
func spin(rounds int, d time.Duration) int {
	var x uint64
	end := time.Now().Add(d)
	n := 0
	for ; d > 0 && time.Now().Before(end) || d <= 0 && n < rounds; n++ {
		for i := 0; i < 1000; i++ {
			x += uint64(i) * (x | 1)
		}
	}
	sink = x
	return n
}

var sink uint64

// A profile of labelled and unlabelled work splits into their parts, and a
// goroutine the labelled one starts counts to its part. Both do the same
// work (about 300 ms of CPU when the machine is idle), so each has about
// half of the profile however loaded the machine is.
func TestCPUSplit(t *testing.T) {
	rounds := 3 * spin(0, 100*time.Millisecond)
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Skipf("cannot profile here: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go asPart(context.Background(), partHosts, func(context.Context) {
		defer wg.Done()
		done := make(chan struct{})
		go func() { spin(rounds, 0); close(done) }() // inherits the label
		<-done
	})
	go func() { defer wg.Done(); spin(rounds, 0) }()
	wg.Wait()
	pprof.StopCPUProfile()
	f.Close()
	split, err := cpuSplit(path)
	if err != nil {
		t.Fatal(err)
	}
	hosts, rest := split[partHosts], split[partControlPlane]
	if total := hosts + rest; total < 100*time.Millisecond || hosts < total/4 || rest < total/4 {
		t.Errorf("split %v: want about half each for %s and %s", split, partHosts, partControlPlane)
	}
}

// The collector's background workers are a part of their own, whatever
// label a sample carries otherwise.
func TestSamplePart(t *testing.T) {
	fn := func(name string) *profile.Location {
		return &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: name}}}}
	}
	for _, tc := range []struct {
		s    *profile.Sample
		want string
	}{
		{&profile.Sample{Location: []*profile.Location{fn("main.work")}}, partControlPlane},
		{&profile.Sample{Location: []*profile.Location{fn("runtime.gcDrain"), fn("runtime.gcBgMarkWorker")}}, partCollector},
		{&profile.Sample{Location: []*profile.Location{fn("sim.poll")}, Label: map[string][]string{partLabel: {partHosts}}}, partHosts},
	} {
		if got := samplePart(tc.s); got != tc.want {
			t.Errorf("samplePart(%v) = %q, want %q", tc.s.Location[0].Line[0].Function.Name, got, tc.want)
		}
	}
}
