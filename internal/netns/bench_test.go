package netns

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// typicalFirewall is a task's policy with a few groups: a web port from
// a 20-member source group, https from anywhere, icmp from the VPC, all
// egress.
func typicalFirewall(v testVPC) Firewall {
	var members []netip.Prefix
	for i := range 20 {
		members = append(members, netip.PrefixFrom(v.subnet(1).host(byte(100+i)), 32))
	}
	return Firewall{
		Ingress: []Rule{
			{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: members},
			{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: anywhere},
			{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDRs: []netip.Prefix{v.cidr()}},
		},
		Egress: []Rule{{Protocol: "-1", CIDRs: anywhere}},
	}
}

func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ds[len(ds)/2]), name+"-p50-ms")
	b.ReportMetric(ms(ds[len(ds)*9/10]), name+"-p90-ms")
}

// BenchmarkAttachENI times what awsvpc adds to a task's launch
// (AttachENI + ApplyFirewall) and stop (DetachENI) in a VPC that already
// has a namespace on the host. Sandbox creation and deletion, which every
// task has anyway, are outside the timings.
func BenchmarkAttachENI(b *testing.B) {
	requireRoot(b)
	v := newTestVPC(b)
	newTask(b, v, v.subnet(1), 5, false) // keeps the VPC namespace
	fw := typicalFirewall(v)
	var attach, detach []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		sb, err := CreateSandbox("berth-bench-" + randHex(b, 8))
		if err != nil {
			b.Fatal(err)
		}
		cfg := eniConfig(b, v, v.subnet(2), byte(10+i%200), i%2 == 0)
		b.StartTimer()
		t0 := time.Now()
		if err := AttachENI(sb, cfg); err != nil {
			b.Fatal(err)
		}
		if err := ApplyFirewall(sb, fw); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := DetachENI(v.id, cfg.ID); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		b.StopTimer()
		attach = append(attach, t1.Sub(t0))
		detach = append(detach, t2.Sub(t1))
		if err := DeleteSandbox(sb.Name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, "attach+fw", attach)
	reportPercentiles(b, "detach", detach)
}

// BenchmarkAttachENIFirstInVPC times the first ENI of a VPC on the host:
// the attach creates the VPC namespace, its uplink and tables; the detach
// deletes them.
func BenchmarkAttachENIFirstInVPC(b *testing.B) {
	requireRoot(b)
	var attach, detach []time.Duration
	for b.Loop() {
		b.StopTimer()
		v := newTestVPC(b)
		sb, err := CreateSandbox("berth-bench-" + randHex(b, 8))
		if err != nil {
			b.Fatal(err)
		}
		cfg := eniConfig(b, v, v.subnet(1), 10, true)
		fw := typicalFirewall(v)
		b.StartTimer()
		t0 := time.Now()
		if err := AttachENI(sb, cfg); err != nil {
			b.Fatal(err)
		}
		if err := ApplyFirewall(sb, fw); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := DetachENI(v.id, cfg.ID); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		b.StopTimer()
		attach = append(attach, t1.Sub(t0))
		detach = append(detach, t2.Sub(t1))
		if err := DeleteSandbox(sb.Name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, "attach+fw", attach)
	reportPercentiles(b, "detach", detach)
}

// BenchmarkApplyFirewall times replacing a running task's policy: the
// typical one, and a large one (10 rules, 5 of them with 200-member
// groups).
func BenchmarkApplyFirewall(b *testing.B) {
	requireRoot(b)
	v := newTestVPC(b)
	k := newTask(b, v, v.subnet(1), 10, false)
	large := typicalFirewall(v)
	for r := range 5 {
		var members []netip.Prefix
		for i := range 200 {
			members = append(members, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, v.octet, byte(10 + r), byte(i)}), 32))
		}
		large.Ingress = append(large.Ingress, Rule{Protocol: "tcp", FromPort: 9000 + r, ToPort: 9000 + r, CIDRs: members})
	}
	large.Egress = append(large.Egress, Rule{Protocol: "udp", FromPort: 53, ToPort: 53, CIDRs: anywhere})
	for _, c := range []struct {
		name string
		fw   Firewall
	}{{"typical", typicalFirewall(v)}, {"large", large}} {
		// Back to back, each apply waits for the previous one's kernel
		// cleanup (see closeNFT); spaced 30 ms apart, as policy updates
		// and a launch's first apply are, it does not.
		b.Run(c.name+"/back-to-back", func(b *testing.B) {
			for b.Loop() {
				if err := ApplyFirewall(k.sb, c.fw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/spaced", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				time.Sleep(30 * time.Millisecond)
				b.StartTimer()
				if err := ApplyFirewall(k.sb, c.fw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
