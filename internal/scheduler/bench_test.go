package scheduler

import (
	"fmt"
	"testing"
)

// benchCluster is nodes hosts over three zones, each with room for many
// small tasks, and reqs 0.25 vCPU / 512 MiB tasks.
func benchCluster(nodes, reqs int, ec2 func(*Request)) ([]Node, []Request) {
	zones := []string{"r-a", "r-b", "r-c"}
	ns := make([]Node, nodes)
	for i := range ns {
		z := zones[i%len(zones)]
		ns[i] = Node{
			ID: fmt.Sprintf("n%05d", i), AZs: []string{z}, CPU: 16384, MemoryMiB: 65536,
			InstanceID: fmt.Sprintf("i-%05d", i),
			Attributes: map[string]string{attrAZ: z, "ecs.instance-type": "m5.4xlarge"},
		}
	}
	rs := make([]Request, reqs)
	for i := range rs {
		rs[i] = Request{ID: fmt.Sprintf("t%06d", i), CPU: 256, MemoryMiB: 512}
		if ec2 != nil {
			rs[i].LaunchType, rs[i].Group = LaunchTypeEC2, "service:web"
			ec2(&rs[i])
		}
	}
	return ns, rs
}

// BenchmarkPlace places 10,000 tasks on 10,000 hosts per op; placement/op-ns
// is the cost of one task, ns/node-check the cost per host it looks at.
func BenchmarkPlace(b *testing.B) {
	const nodes, reqs = 10000, 10000
	cases := []struct {
		name string
		ec2  func(*Request)
	}{
		{"fargate", nil},
		{"ec2-binpack-memory", func(r *Request) { r.Strategy = []Strategy{{Type: StrategyBinpack, Field: "memory"}} }},
		{"ec2-spread-az-instance", func(r *Request) {
			r.Strategy = []Strategy{{Type: StrategySpread, Field: "attribute:ecs.availability-zone"}, {Type: StrategySpread, Field: "instanceId"}}
		}},
		{"ec2-memberOf-distinct", func(r *Request) {
			r.Constraints = []Constraint{{Type: ConstraintMemberOf, Expression: "attribute:ecs.instance-type =~ m5.*"}, {Type: ConstraintDistinctInstance}}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ns, rs := benchCluster(nodes, reqs, c.ec2)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				plan := Place(ns, rs)
				if len(plan.Placements) != reqs {
					b.Fatalf("placed %d of %d: %+v", len(plan.Placements), reqs, plan.Unplaced[:1])
				}
			}
			perPlacement := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / reqs
			b.ReportMetric(perPlacement, "ns/placement")
			b.ReportMetric(perPlacement/nodes, "ns/node-check")
		})
	}
}
