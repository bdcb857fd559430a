package scheduler

import (
	"fmt"
	"reflect"
	"testing"
)

// inst is a connected container instance in zone az with the given free
// capacity.
func inst(id, az string, cpu, mem int) Node {
	return Node{ID: id, InstanceID: "i-" + id, CPU: cpu, MemoryMiB: mem,
		Attributes: map[string]string{attrAZ: az}}
}

// ec2 makes n EC2 requests t1..tn in group g.
func ec2(n, cpu, mem int, g string, f func(*Request)) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{ID: fmt.Sprintf("t%d", i+1), CPU: cpu, MemoryMiB: mem, LaunchType: LaunchTypeEC2, Group: g}
		if f != nil {
			f(&reqs[i])
		}
	}
	return reqs
}

func with(mod func(*Node), n Node) Node { mod(&n); return n }

// placed lists task→node in order, for compact expectations.
func placed(pairs ...string) []Placement {
	var out []Placement
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Placement{TaskID: pairs[i], NodeID: pairs[i+1]})
	}
	return out
}

func TestPlaceEC2(t *testing.T) {
	binpackMem := []Strategy{{Type: StrategyBinpack, Field: "memory"}}
	spreadAZ := Strategy{Type: StrategySpread, Field: "attribute:ecs.availability-zone"}
	spreadHost := Strategy{Type: StrategySpread, Field: "instanceId"}
	tests := []struct {
		name  string
		nodes []Node
		reqs  []Request
		want  []Placement // AZ not compared
		fail  []Unplaced
	}{
		{
			name:  "binpack memory fills the fullest host first",
			nodes: []Node{inst("big", "a", 4096, 4096), inst("small", "a", 4096, 2048)},
			reqs:  ec2(6, 256, 512, "family:x", func(r *Request) { r.Strategy = binpackMem }),
			want:  placed("t1", "small", "t2", "small", "t3", "small", "t4", "small", "t5", "big", "t6", "big"),
		},
		{
			name:  "binpack cpu",
			nodes: []Node{inst("n1", "a", 1024, 8192), inst("n2", "a", 512, 8192)},
			reqs:  ec2(3, 256, 128, "family:x", func(r *Request) { r.Strategy = []Strategy{{Type: StrategyBinpack, Field: "cpu"}} }),
			want:  placed("t1", "n2", "t2", "n2", "t3", "n1"),
		},
		{
			name:  "spread over zones alternates, node id breaks ties",
			nodes: []Node{inst("a1", "a", 4096, 8192), inst("a2", "a", 4096, 8192), inst("b1", "b", 4096, 8192), inst("c1", "c", 4096, 8192)},
			reqs:  ec2(6, 256, 512, "service:web", func(r *Request) { r.Strategy = []Strategy{spreadAZ} }),
			want:  placed("t1", "a1", "t2", "b1", "t3", "c1", "t4", "a1", "t5", "b1", "t6", "c1"),
		},
		{
			name:  "spread over zones then instances",
			nodes: []Node{inst("a1", "a", 4096, 8192), inst("a2", "a", 4096, 8192), inst("b1", "b", 4096, 8192), inst("c1", "c", 4096, 8192)},
			reqs:  ec2(6, 256, 512, "service:web", func(r *Request) { r.Strategy = []Strategy{spreadAZ, spreadHost} }),
			want:  placed("t1", "a1", "t2", "b1", "t3", "c1", "t4", "a2", "t5", "b1", "t6", "c1"),
		},
		{
			name: "spread counts the group's tasks already running, not other groups'",
			nodes: []Node{
				with(func(n *Node) { n.Groups = map[string]int{"service:web": 2, "service:db": 0} }, inst("a1", "a", 4096, 8192)),
				with(func(n *Node) { n.Groups = map[string]int{"service:other": 5} }, inst("b1", "b", 4096, 8192)),
			},
			reqs: ec2(3, 256, 512, "service:web", func(r *Request) { r.Strategy = []Strategy{spreadAZ} }),
			want: placed("t1", "b1", "t2", "b1", "t3", "a1"),
		},
		{
			name:  "strategy order: spread zones, then binpack memory within a zone",
			nodes: []Node{inst("a1", "a", 4096, 1024), inst("a2", "a", 4096, 4096), inst("b1", "b", 4096, 4096)},
			reqs:  ec2(4, 256, 512, "service:web", func(r *Request) { r.Strategy = []Strategy{spreadAZ, binpackMem[0]} }),
			want:  placed("t1", "a1", "t2", "b1", "t3", "a1", "t4", "b1"),
		},
		{
			name:  "distinctInstance: three tasks, two hosts",
			nodes: []Node{inst("n1", "a", 4096, 8192), inst("n2", "a", 4096, 8192)},
			reqs:  ec2(3, 256, 512, "family:x", func(r *Request) { r.Constraints = []Constraint{{Type: ConstraintDistinctInstance}} }),
			want:  placed("t1", "n1", "t2", "n2"),
			fail:  []Unplaced{{TaskID: "t3", Reason: ReasonDistinctInstance, NodeID: "n1"}},
		},
		{
			name: "distinctInstance counts the group's running tasks",
			nodes: []Node{
				with(func(n *Node) { n.Groups = map[string]int{"service:web": 1} }, inst("n1", "a", 4096, 8192)),
				inst("n2", "a", 4096, 8192),
			},
			reqs: ec2(1, 256, 512, "service:web", func(r *Request) { r.Constraints = []Constraint{{Type: ConstraintDistinctInstance}} }),
			want: placed("t1", "n2"),
		},
		{
			name: "memberOf a custom attribute",
			nodes: []Node{
				with(func(n *Node) { n.Attributes["stack"] = "dev" }, inst("n1", "a", 4096, 8192)),
				with(func(n *Node) { n.Attributes["stack"] = "prod" }, inst("n2", "a", 4096, 8192)),
				inst("n3", "a", 4096, 8192),
			},
			reqs: ec2(2, 256, 512, "family:x", func(r *Request) {
				r.Constraints = []Constraint{{Type: ConstraintMemberOf, Expression: "attribute:stack == prod"}}
			}),
			want: placed("t1", "n2", "t2", "n2"),
		},
		{
			name:  "memberOf nothing matches",
			nodes: []Node{inst("n1", "a", 4096, 8192), inst("n2", "a", 4096, 8192)},
			reqs: ec2(1, 256, 512, "family:x", func(r *Request) {
				r.Constraints = []Constraint{{Type: ConstraintMemberOf, Expression: "attribute:ecs.instance-type =~ g2.*"}}
			}),
			fail: []Unplaced{{TaskID: "t1", Reason: ReasonMemberOf, NodeID: "n1"}},
		},
		{
			name:  "memberOf an unparsable expression fails closed",
			nodes: []Node{inst("n1", "a", 4096, 8192)},
			reqs: ec2(1, 256, 512, "family:x", func(r *Request) {
				r.Constraints = []Constraint{{Type: ConstraintMemberOf, Expression: "attribute:x =="}}
			}),
			fail: []Unplaced{{TaskID: "t1", Reason: ReasonMemberOf, NodeID: "n1"}},
		},
		{
			name:  "task:group affinity sees tasks placed earlier in the pass",
			nodes: []Node{inst("n1", "a", 4096, 8192), inst("n2", "b", 4096, 8192)},
			reqs: []Request{
				{ID: "db", CPU: 256, MemoryMiB: 512, LaunchType: LaunchTypeEC2, Group: "service:db",
					Constraints: []Constraint{{Type: ConstraintMemberOf, Expression: "attribute:ecs.availability-zone == b"}}},
				{ID: "app", CPU: 256, MemoryMiB: 512, LaunchType: LaunchTypeEC2, Group: "service:app",
					Constraints: []Constraint{{Type: ConstraintMemberOf, Expression: "task:group == service:db"}}},
				{ID: "anti", CPU: 256, MemoryMiB: 512, LaunchType: LaunchTypeEC2, Group: "service:x",
					Constraints: []Constraint{{Type: ConstraintMemberOf, Expression: "not(task:group == service:db)"}}},
			},
			want: placed("db", "n2", "app", "n2", "anti", "n1"),
		},
		{
			name:  "memberOf verdicts change as tasks land (runningTasksCount)",
			nodes: []Node{inst("n1", "a", 4096, 8192), inst("n2", "a", 4096, 8192), inst("n3", "a", 4096, 8192)},
			reqs: ec2(4, 256, 512, "family:x", func(r *Request) {
				r.Constraints = []Constraint{{Type: ConstraintMemberOf, Expression: "runningTasksCount < 1"}}
			}),
			want: placed("t1", "n1", "t2", "n2", "t3", "n3"),
			fail: []Unplaced{{TaskID: "t4", Reason: ReasonMemberOf, NodeID: "n1"}},
		},
		{
			name: "static port taken",
			nodes: []Node{
				with(func(n *Node) { n.UsedPorts = []HostPort{{Protocol: "tcp", Port: 80}} }, inst("n1", "a", 4096, 8192)),
			},
			reqs: ec2(1, 256, 512, "family:x", func(r *Request) { r.Ports = []HostPort{{Port: 80}} }),
			fail: []Unplaced{{TaskID: "t1", Reason: ReasonPorts, NodeID: "n1"}},
		},
		{
			name: "static port: udp does not clash with tcp; the same port twice does",
			nodes: []Node{
				with(func(n *Node) { n.UsedPorts = []HostPort{{Protocol: "tcp", Port: 53}} }, inst("n1", "a", 4096, 8192)),
			},
			reqs: ec2(2, 256, 512, "family:x", func(r *Request) { r.Ports = []HostPort{{Protocol: "udp", Port: 53}} }),
			want: placed("t1", "n1"),
			fail: []Unplaced{{TaskID: "t2", Reason: ReasonPorts, NodeID: "n1"}},
		},
		{
			name:  "dynamic host ports (0) never clash",
			nodes: []Node{inst("n1", "a", 4096, 8192)},
			reqs:  ec2(2, 256, 512, "family:x", func(r *Request) { r.Ports = []HostPort{{Port: 0}, {Protocol: "udp"}} }),
			want:  placed("t1", "n1", "t2", "n1"),
		},
		{
			name: "port conflict moves the task to the next host",
			nodes: []Node{
				with(func(n *Node) { n.UsedPorts = []HostPort{{Port: 8080}} }, inst("n1", "a", 4096, 8192)),
				inst("n2", "a", 4096, 8192),
			},
			reqs: ec2(1, 256, 512, "family:x", func(r *Request) { r.Ports = []HostPort{{Port: 8080}} }),
			want: placed("t1", "n2"),
		},
		{
			name:  "draining host unused",
			nodes: []Node{with(func(n *Node) { n.Draining = true }, inst("n1", "a", 8192, 16384)), inst("n2", "a", 1024, 1024)},
			reqs:  ec2(2, 256, 512, "family:x", func(r *Request) { r.Strategy = []Strategy{{Type: StrategySpread, Field: "host"}} }),
			want:  placed("t1", "n2", "t2", "n2"),
		},
		{
			name:  "only draining hosts",
			nodes: []Node{with(func(n *Node) { n.Draining = true }, inst("n1", "a", 8192, 16384))},
			reqs:  ec2(1, 256, 512, "family:x", nil),
			fail:  []Unplaced{{TaskID: "t1", Reason: ReasonNoInstances}},
		},
		{
			name:  "no instances",
			reqs:  ec2(1, 256, 512, "family:x", nil),
			fail:  []Unplaced{{TaskID: "t1", Reason: ReasonNoInstances}},
			nodes: nil,
		},
		{
			name:  "disconnected agent",
			nodes: []Node{with(func(n *Node) { n.Disconnected = true }, inst("n1", "a", 4096, 8192))},
			reqs:  ec2(1, 256, 512, "family:x", nil),
			fail:  []Unplaced{{TaskID: "t1", Reason: ReasonAgent, NodeID: "n1"}},
		},
		{
			name:  "the closest matching instance gives the reason",
			nodes: []Node{with(func(n *Node) { n.Disconnected = true }, inst("n1", "a", 4096, 8192)), inst("n2", "a", 4096, 256), inst("n3", "a", 128, 8192)},
			reqs:  ec2(1, 256, 512, "family:x", nil),
			fail:  []Unplaced{{TaskID: "t1", Reason: ReasonMemory, NodeID: "n2"}},
		},
		{
			name:  "cpu runs out",
			nodes: []Node{inst("n1", "a", 256, 8192)},
			reqs:  ec2(2, 256, 512, "family:x", nil),
			want:  placed("t1", "n1"),
			fail:  []Unplaced{{TaskID: "t2", Reason: ReasonCPU, NodeID: "n1"}},
		},
		{
			name:  "zones of the task's subnets",
			nodes: []Node{inst("n1", "a", 4096, 8192), inst("n2", "b", 4096, 8192)},
			reqs:  ec2(2, 256, 512, "family:x", func(r *Request) { r.AZs = []string{"b", "z"} }),
			want:  placed("t1", "n2", "t2", "n2"),
		},
		{
			name:  "no instance in the task's zones",
			nodes: []Node{inst("n1", "a", 4096, 8192)},
			reqs:  ec2(1, 256, 512, "family:x", func(r *Request) { r.AZs = []string{"z"} }),
			fail:  []Unplaced{{TaskID: "t1", Reason: ReasonAttribute, NodeID: "n1"}},
		},
		{
			name:  "no strategy: node id order",
			nodes: []Node{inst("n2", "a", 4096, 8192), inst("n1", "a", 1024, 1024)},
			reqs:  ec2(2, 256, 512, "family:x", nil),
			want:  placed("t1", "n1", "t2", "n1"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Place(tc.nodes, tc.reqs)
			for i := range got.Placements {
				got.Placements[i].AZ = ""
			}
			if !reflect.DeepEqual(got.Placements, tc.want) || !reflect.DeepEqual(got.Unplaced, tc.fail) {
				t.Fatalf("Place() =\n  %+v\n  %+v\nwant\n  %+v\n  %+v", got.Placements, got.Unplaced, tc.want, tc.fail)
			}
		})
	}
}

func TestPlaceEC2Zone(t *testing.T) {
	nodes := []Node{
		inst("n1", "us-east-1b", 4096, 8192),
		{ID: "n2", AZs: []string{"us-east-1c"}, CPU: 4096, MemoryMiB: 8192}, // no attribute: AZs[0]
	}
	got := Place(nodes, ec2(2, 256, 512, "g", func(r *Request) {
		r.Strategy = []Strategy{{Type: StrategySpread, Field: "attribute:ecs.availability-zone"}}
	}))
	want := []Placement{{TaskID: "t1", NodeID: "n1", AZ: "us-east-1b"}, {TaskID: "t2", NodeID: "n2", AZ: "us-east-1c"}}
	if !reflect.DeepEqual(got.Placements, want) {
		t.Fatalf("got %+v, want %+v", got.Placements, want)
	}
}

func TestPlaceEC2Random(t *testing.T) {
	var nodes []Node
	for i := range 8 {
		nodes = append(nodes, inst(fmt.Sprintf("n%d", i), "a", 4096, 8192))
	}
	reqs := ec2(8, 256, 512, "g", func(r *Request) { r.Strategy = []Strategy{{Type: StrategyRandom}} })
	plans := map[string]bool{}
	for seed := range int64(10) {
		a, b := PlaceWith(nodes, reqs, Options{Seed: seed}), PlaceWith(nodes, reqs, Options{Seed: seed})
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two plans differ:\n%+v\n%+v", seed, a, b)
		}
		if len(a.Placements) != len(reqs) {
			t.Fatalf("seed %d: %d placed, want %d", seed, len(a.Placements), len(reqs))
		}
		plans[fmt.Sprint(a.Placements)] = true
	}
	if len(plans) < 5 {
		t.Fatalf("10 seeds gave only %d distinct plans; random is not random", len(plans))
	}
	// Random then binpack: binpack never decides, since random keys differ.
	nodesSpread := map[string]bool{}
	for _, p := range PlaceWith(nodes, reqs, Options{Seed: 1}).Placements {
		nodesSpread[p.NodeID] = true
	}
	if len(nodesSpread) < 3 {
		t.Fatalf("random put 8 tasks on %d of 8 nodes", len(nodesSpread))
	}
}

func TestPlaceEC2DoesNotMutateInput(t *testing.T) {
	groups := map[string]int{"service:web": 1}
	ports := make([]HostPort, 1, 4) // spare capacity an append would write into
	ports[0] = HostPort{Port: 22}
	nodes := []Node{{ID: "n1", CPU: 4096, MemoryMiB: 8192, Groups: groups, UsedPorts: ports}}
	reqs := ec2(2, 256, 512, "service:web", func(r *Request) { r.Ports = []HostPort{{Port: 80 + int(r.ID[1]-'0')}} })
	plan := Place(nodes, reqs)
	if len(plan.Placements) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	if groups["service:web"] != 1 || len(groups) != 1 {
		t.Fatalf("groups changed: %v", groups)
	}
	if got := ports[:cap(ports)]; got[1] != (HostPort{}) || len(nodes[0].UsedPorts) != 1 {
		t.Fatalf("ports changed: %v", got)
	}
	if nodes[0].RunningTasks != 0 || nodes[0].UsedCPU != 0 {
		t.Fatalf("node changed: %+v", nodes[0])
	}
}

func TestPlaceMixedLaunchTypes(t *testing.T) {
	nodes := []Node{{ID: "n1", AZs: []string{"a"}, CPU: 1024, MemoryMiB: 2048}}
	reqs := []Request{
		{ID: "ec2", CPU: 512, MemoryMiB: 1024, LaunchType: LaunchTypeEC2, Group: "g"},
		{ID: "fargate", CPU: 512, MemoryMiB: 1024},
		{ID: "late", CPU: 512, MemoryMiB: 1024},
	}
	want := Plan{
		Placements: []Placement{{TaskID: "ec2", NodeID: "n1", AZ: "a"}, {TaskID: "fargate", NodeID: "n1", AZ: "a"}},
		Unplaced:   []Unplaced{{TaskID: "late", Reason: ReasonCPU}},
	}
	if got := Place(nodes, reqs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestValidatePlacement(t *testing.T) {
	tests := []struct {
		name string
		s    []Strategy
		c    []Constraint
		ok   bool
	}{
		{"empty", nil, nil, true},
		{"all kinds", []Strategy{{Type: "spread", Field: "attribute:ecs.availability-zone"}, {Type: "spread", Field: "host"}, {Type: "binpack", Field: "memory"}, {Type: "random"}},
			[]Constraint{{Type: "distinctInstance"}, {Type: "memberOf", Expression: "attribute:a exists"}}, true},
		{"binpack on disk", []Strategy{{Type: "binpack", Field: "disk"}}, nil, false},
		{"spread on nothing", []Strategy{{Type: "spread", Field: "attribute:"}}, nil, false},
		{"spread on a bare name", []Strategy{{Type: "spread", Field: "zone"}}, nil, false},
		{"unknown type", []Strategy{{Type: "pack"}}, nil, false},
		{"too many strategies", make([]Strategy, 6), nil, false},
		{"distinct with expression", nil, []Constraint{{Type: "distinctInstance", Expression: "x"}}, false},
		{"bad expression", nil, []Constraint{{Type: "memberOf", Expression: "attribute:a =="}}, false},
		{"unknown constraint", nil, []Constraint{{Type: "sameInstance"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePlacement(tc.s, tc.c)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidatePlacement() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
