package network

import (
	"strings"
	"testing"
	"time"
)

func msec(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// synthetic is a run's measurements with known figures: A 10–19 ms, B 3 ms
// (A − B 7–16 ms, p50 11 ms), launches of 300 ms with a 15 ms sandbox step
// and a 40 ms hand-off, loopback at 16 Gbit/s, the bridges at 8 and 12.
func synthetic() measurements {
	m := measurements{streams: map[string][]streamSample{}, mtu: map[string]int{"eth0": 1500, "lo": 65536}, members: 4, hostUnits: 2048, batch: 7}
	for i := range 10 {
		m.with = append(m.with, sandboxSample{total: msec(float64(10 + i)), sandbox: msec(2), eni: msec(float64(5 + i)), firewall: msec(1), cgroup: msec(2)})
		m.without = append(m.without, sandboxSample{total: msec(3), sandbox: msec(1.5), cgroup: msec(1.5)})
		m.launches = append(m.launches, launchSample{total: msec(300), api: msec(4), handoff: msec(40), sandbox: msec(15), agent: msec(250)})
	}
	gib := int64(1) << 30
	for _, g := range []float64{16, 15, 17} {
		m.streams[pathLoopback] = append(m.streams[pathLoopback], streamSample{bytes: gib, dur: time.Duration(float64(gib*8) / (g * 1e9) * 1e9)})
	}
	m.streams[pathRouted] = []streamSample{{bytes: gib, dur: time.Duration(float64(gib*8) / 8e9 * 1e9)}}
	m.streams[pathBridged] = []streamSample{{bytes: gib, dur: time.Duration(float64(gib*8) / 12e9 * 1e9)}}
	return m
}

func TestResult(t *testing.T) {
	res := New().result(synthetic())
	if len(res.Figures) != 7 {
		t.Fatalf("%d figures, want 7", len(res.Figures))
	}
	added := res.Figures[0]
	if added.Value.Num != msec(11).Seconds() { // nearest rank of 7…16 ms: the 5th, 11 ms
		t.Errorf("A − B p50 = %v, want 11 ms", added.Value)
	}
	if added.Met == nil || !*added.Met || added.Anchor == nil || added.Anchor.Measured {
		t.Errorf("A − B figure: met %v, anchor %+v; want met against a quoted anchor", added.Met, added.Anchor)
	}
	if q := res.Figures[1].Ratio(); q < 4.6 || q > 4.8 { // 14 ms / 3 ms
		t.Errorf("A/B ratio = %v, want 14/3", q)
	}
	routed, bridged := res.Figures[5], res.Figures[6]
	if routed.Value.Unit != "Gbit/s" || routed.Value.Num != 8 || routed.Anchor.Value.Num != 16 || routed.Ratio() != 0.5 {
		t.Errorf("routed figure = %v against %v", routed.Value, routed.Anchor.Value)
	}
	if bridged.Value.Num != 12 || bridged.Ratio() != 0.75 {
		t.Errorf("bridged figure = %v, ratio %v", bridged.Value, bridged.Ratio())
	}
	for _, want := range []string{"| **A − B: added by the ENI and security groups** | 11.0 ms |", "| two subnets | 8.00 |", "0.50 ×",
		"placement + hand-off", "Every iteration", "eth0's MTU is 1500"} {
		if !strings.Contains(res.Details, want) {
			t.Errorf("details lack %q", want)
		}
	}
	if len(res.Reproduce) == 0 || !strings.Contains(res.Reproduce[1], "-run '^network$'") {
		t.Errorf("reproduce = %q", res.Reproduce)
	}
}

func TestResultWithoutLaunches(t *testing.T) {
	m := synthetic()
	m.launches = nil
	res := New().result(m)
	if len(res.Figures) != 5 {
		t.Fatalf("%d figures, want 5", len(res.Figures))
	}
	if !strings.Contains(res.Details, "No real launches") {
		t.Error("details do not say there were no launches")
	}
}

func TestAddedIsPaired(t *testing.T) {
	m := measurements{
		with:    []sandboxSample{{total: msec(10)}, {total: msec(30)}},
		without: []sandboxSample{{total: msec(8)}, {total: msec(1)}},
	}
	got := added(m)
	if len(got) != 2 || got[0] != msec(2) || got[1] != msec(29) {
		t.Fatalf("added = %v, want [2ms 29ms]", got)
	}
}

func TestValidate(t *testing.T) {
	if err := New().validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, mod := range []func(*Benchmark){
		func(b *Benchmark) { b.iterations = 0 },
		func(b *Benchmark) { b.tasks = -1 },
		func(b *Benchmark) { b.streams = 0 },
		func(b *Benchmark) { b.streamMiB = 0 },
		func(b *Benchmark) { b.streamMax = time.Millisecond },
		func(b *Benchmark) { b.pause = 2 * time.Second },
	} {
		b := New()
		mod(b)
		if err := b.validate(); err == nil {
			t.Errorf("validate accepted %+v", b)
		}
	}
}
