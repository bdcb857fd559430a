package scale

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// The parts of the benchmark's process a CPU profile tells apart. The
// simulated hosts and the clients run under a pprof label of their part
// (goroutines they start, their HTTP transports' included, inherit it); the
// collector's background marking runs on goroutines of its own; what is
// left is the control plane: the API, placement, the agent protocol's
// server, etcd, and the runtime's work for them (the collector's assists
// count to the goroutine that allocated).
const (
	partLabel        = "part"
	partHosts        = "simulated hosts"
	partClients      = "clients"
	partCollector    = "collector (background marking)"
	partControlPlane = "control plane and etcd"
)

// parts lists the parts in the order they are reported.
var parts = []string{partControlPlane, partCollector, partHosts, partClients}

// asPart runs f with ctx labelled as part, for the CPU profile.
func asPart(ctx context.Context, part string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(partLabel, part), f)
}

// cpuSplit reads a CPU profile and sums its CPU time by part.
func cpuSplit(path string) (map[string]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	cpu := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" && t.Unit == "nanoseconds" })
	if cpu < 0 {
		return nil, fmt.Errorf("%s holds no CPU samples", path)
	}
	out := map[string]time.Duration{}
	for _, s := range p.Sample {
		out[samplePart(s)] += time.Duration(s.Value[cpu])
	}
	return out, nil
}

// samplePart names the part a sample's CPU time belongs to.
func samplePart(s *profile.Sample) string {
	if l := s.Label[partLabel]; len(l) > 0 {
		return l[0]
	}
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && line.Function.Name == "runtime.gcBgMarkWorker" {
				return partCollector
			}
		}
	}
	return partControlPlane
}
