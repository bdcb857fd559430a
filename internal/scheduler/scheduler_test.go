package scheduler

import (
	"reflect"
	"testing"
)

func TestPlace(t *testing.T) {
	abc := []string{"r-a", "r-b", "r-c"}
	tests := []struct {
		name  string
		nodes []Node
		reqs  []Request
		want  Plan
	}{
		{
			name:  "spread across zones of one host",
			nodes: []Node{{ID: "n1", AZs: abc, CPU: 4096, MemoryMiB: 8192}},
			reqs:  []Request{{ID: "t1", CPU: 256, MemoryMiB: 512}, {ID: "t2", CPU: 256, MemoryMiB: 512}, {ID: "t3", CPU: 256, MemoryMiB: 512}, {ID: "t4", CPU: 256, MemoryMiB: 512}},
			want: Plan{Placements: []Placement{
				{TaskID: "t1", NodeID: "n1", AZ: "r-a"}, {TaskID: "t2", NodeID: "n1", AZ: "r-b"},
				{TaskID: "t3", NodeID: "n1", AZ: "r-c"}, {TaskID: "t4", NodeID: "n1", AZ: "r-a"},
			}},
		},
		{
			name:  "zone restriction",
			nodes: []Node{{ID: "n1", AZs: []string{"r-a"}, CPU: 4096, MemoryMiB: 8192}, {ID: "n2", AZs: []string{"r-b"}, CPU: 4096, MemoryMiB: 8192}},
			reqs:  []Request{{ID: "t1", CPU: 256, MemoryMiB: 512, AZs: []string{"r-b"}}},
			want:  Plan{Placements: []Placement{{TaskID: "t1", NodeID: "n2", AZ: "r-b"}}},
		},
		{
			name:  "no host in zone",
			nodes: []Node{{ID: "n1", AZs: []string{"r-a"}, CPU: 4096, MemoryMiB: 8192}},
			reqs:  []Request{{ID: "t1", CPU: 256, MemoryMiB: 512, AZs: []string{"r-c"}}},
			want:  Plan{Unplaced: []Unplaced{{TaskID: "t1", Reason: "AGENT"}}},
		},
		{
			name:  "memory runs out",
			nodes: []Node{{ID: "n1", AZs: abc, CPU: 4096, MemoryMiB: 1024, UsedMemoryMiB: 512}},
			reqs:  []Request{{ID: "t1", CPU: 256, MemoryMiB: 512}, {ID: "t2", CPU: 256, MemoryMiB: 512}},
			want:  Plan{Placements: []Placement{{TaskID: "t1", NodeID: "n1", AZ: "r-a"}}, Unplaced: []Unplaced{{TaskID: "t2", Reason: "RESOURCE:MEMORY"}}},
		},
		{
			name:  "cpu runs out",
			nodes: []Node{{ID: "n1", AZs: abc, CPU: 256, MemoryMiB: 8192}},
			reqs:  []Request{{ID: "t1", CPU: 512, MemoryMiB: 512}},
			want:  Plan{Unplaced: []Unplaced{{TaskID: "t1", Reason: "RESOURCE:CPU"}}},
		},
		{
			name:  "tasks placed before count toward the spread",
			nodes: []Node{{ID: "n1", AZs: abc, CPU: 4096, MemoryMiB: 8192, Placed: map[string]int{"r-a": 2, "r-b": 1}}},
			reqs:  []Request{{ID: "t1", CPU: 256, MemoryMiB: 512}, {ID: "t2", CPU: 256, MemoryMiB: 512}},
			want: Plan{Placements: []Placement{
				{TaskID: "t1", NodeID: "n1", AZ: "r-c"}, {TaskID: "t2", NodeID: "n1", AZ: "r-b"},
			}},
		},
		{
			name: "most free memory wins",
			nodes: []Node{
				{ID: "n1", AZs: []string{"r-a"}, CPU: 4096, MemoryMiB: 8192, UsedMemoryMiB: 4096},
				{ID: "n2", AZs: []string{"r-a"}, CPU: 4096, MemoryMiB: 8192},
			},
			reqs: []Request{{ID: "t1", CPU: 256, MemoryMiB: 512}},
			want: Plan{Placements: []Placement{{TaskID: "t1", NodeID: "n2", AZ: "r-a"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Place(tc.nodes, tc.reqs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Place() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlaceDoesNotMutateInput(t *testing.T) {
	nodes := []Node{{ID: "n1", AZs: []string{"a"}, CPU: 1024, MemoryMiB: 2048}}
	Place(nodes, []Request{{ID: "t", CPU: 512, MemoryMiB: 1024}})
	if nodes[0].UsedCPU != 0 || nodes[0].UsedMemoryMiB != 0 {
		t.Fatalf("input changed: %+v", nodes[0])
	}
}
