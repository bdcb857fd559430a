package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// The usage index and a read of every assign key agree on what each host
// uses, through placements, spec rewrites, removals and a compaction that
// takes the previous values of the index's pending events away.
func TestUsageIndexMatchesStore(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	s := New(Config{Store: st, Logger: logger})
	nodes := []string{"n1", "n2", "n3"}
	put := func(node, task string, cpu int, group, az string, port int) {
		t.Helper()
		u := assignedUsage{CPU: cpu, MemoryMiB: 2 * cpu, Group: group, AvailabilityZone: az}
		if port != 0 {
			u.PortMappings = []agentapi.PortMapping{{ContainerPort: 80, HostPort: port, Protocol: "tcp"}}
		}
		b, _ := json.Marshal(u)
		if _, err := st.C.KV.Put(ctx, store.Key("assign", node, task), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	del := func(node, task string) {
		t.Helper()
		if _, err := st.C.KV.Delete(ctx, store.Key("assign", node, task)); err != nil {
			t.Fatal(err)
		}
	}
	// Some keys exist before the index starts (its first read), the rest
	// arrive through its watch.
	put("n1", "a", 256, "family:web", "us-east-1a", 0)
	put("n1", "b", 512, "family:web", "us-east-1a", 8080)
	put("n2", "c", 1024, "service:api", "us-east-1b", 0)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.usage.run(runCtx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
			<-done
		}
	})

	check := func(step string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !s.usage.progress.built() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		got, want := make([]*scheduler.Node, len(nodes)), map[string]*scheduler.Node{}
		for i, id := range nodes {
			got[i], want[id] = &scheduler.Node{ID: id}, &scheduler.Node{ID: id}
		}
		if err := s.usage.fill(ctx, got, 5*time.Second); err != nil {
			t.Fatalf("%s: fill: %v", step, err)
		}
		if err := s.sumAssigned(ctx, func(id string) *scheduler.Node { return want[id] }); err != nil {
			t.Fatal(err)
		}
		for _, n := range got {
			sort.Slice(n.UsedPorts, func(i, j int) bool { return n.UsedPorts[i].Port < n.UsedPorts[j].Port })
			if !reflect.DeepEqual(n, want[n.ID]) {
				t.Fatalf("%s: node %s: index has %+v, the store %+v", step, n.ID, *n, *want[n.ID])
			}
			// A delta poll's view: the node's task ids, and those changed
			// after a revision, as etcd has them.
			resp, err := st.C.Get(ctx, store.Prefix("assign", n.ID), clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			var ids, changed []string
			mid := resp.Header.Revision - 3
			for _, kv := range resp.Kvs {
				_, id, _ := assignNodeTask(string(kv.Key))
				ids = append(ids, id)
				if kv.ModRevision > mid {
					changed = append(changed, id)
				}
			}
			d, ok := s.usage.nodeTasks(ctx, n.ID, mid, resp.Header.Revision, false, 5*time.Second)
			var gotChanged []string
			for _, k := range d.changed {
				gotChanged = append(gotChanged, k.id)
			}
			if !ok || d.rev < resp.Header.Revision || strings.Join(d.all, ",") != strings.Join(ids, ",") || strings.Join(gotChanged, ",") != strings.Join(changed, ",") {
				t.Fatalf("%s: node %s: nodeTasks = %v, changed %v at %d (ok %v); etcd has %v, changed %v at %d",
					step, n.ID, d.all, gotChanged, d.rev, ok, ids, changed, resp.Header.Revision)
			}
			// Keeping: the ids are left out only when the node's tasks
			// are those it had at mid and the changed ones.
			kept, ok := s.usage.nodeTasks(ctx, n.ID, mid, resp.Header.Revision, true, 5*time.Second)
			s.usage.mu.RLock()
			from := s.usage.tasks.from
			s.usage.mu.RUnlock()
			old, err := st.C.Get(ctx, store.Prefix("assign", n.ID), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(mid))
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue // what the node had at mid is gone
			}
			if err != nil {
				t.Fatal(err)
			}
			union := map[string]bool{}
			for _, kv := range old.Kvs {
				_, id, _ := assignNodeTask(string(kv.Key))
				union[id] = true
			}
			left := len(union) // of mid's tasks, those still there
			for _, id := range ids {
				if union[id] {
					left--
				}
			}
			for _, id := range changed {
				union[id] = true
			}
			sameSet := len(union) == len(ids) && left == 0
			switch {
			case !ok:
				t.Fatalf("%s: node %s: nodeTasks keeping: not ok", step, n.ID)
			case kept.same && (kept.all != nil || !sameSet):
				t.Fatalf("%s: node %s: nodeTasks keeping says no task left after %d (ids %v); etcd had %d then, has %v now", step, n.ID, mid, kept.all, len(old.Kvs), ids)
			case !kept.same && strings.Join(kept.all, ",") != strings.Join(ids, ","):
				t.Fatalf("%s: node %s: nodeTasks keeping, a task left: ids %v, etcd has %v", step, n.ID, kept.all, ids)
			case !kept.same && sameSet && mid >= from:
				t.Fatalf("%s: node %s: nodeTasks keeping says a task left after %d, none did", step, n.ID, mid)
			}
		}
	}
	check("first read")

	put("n2", "d", 256, "service:api", "us-east-1b", 9090)
	put("n3", "e", 4096, "family:batch", "us-east-1c", 0)
	check("placements")

	put("n1", "b", 512, "family:web", "us-east-1a", 8080) // a spec rewrite (desired STOPPED)
	del("n1", "a")
	del("n2", "c")
	check("rewrite and removals")

	for i := range 50 {
		put("n3", fmt.Sprintf("t%02d", i), 256, "family:batch", "us-east-1c", 0)
	}
	for i := range 50 {
		del("n3", fmt.Sprintf("t%02d", i))
	}
	check("churn")

	// Stop following, change keys, compact past the changes, follow again:
	// the index starts over from a fresh read, not from its old sums.
	stop()
	<-done
	stopped = true
	del("n2", "d")
	put("n1", "f", 1024, "family:web", "us-east-1a", 0)
	resp, err := st.C.KV.Get(ctx, store.Key("assign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.C.KV.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	runCtx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan struct{})
	go func() { defer close(done2); s.usage.run(runCtx2) }()
	t.Cleanup(func() { stop2(); <-done2 })
	check("after compaction")
	s.usage.mu.RLock()
	left := s.usage.nodes["n2"]
	s.usage.mu.RUnlock()
	if left != nil {
		t.Fatalf("n2 has nothing left but the index still counts %+v", *left)
	}
}

// An event that changes or removes a key without its previous value (etcd
// compacted it before the watch sent it) cannot be subtracted: the index
// gives up its sums so that its watch starts over from a fresh read.
func TestUsageIndexNeedsPreviousValues(t *testing.T) {
	x := newUsageIndex(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	key := []byte(store.Key("assign", "n1", "a"))
	x.progress.started(nil, 5)
	for _, ev := range []*clientv3.Event{
		{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: key, ModRevision: 9}},
		{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: key, Value: []byte(`{"cpu":256}`), CreateRevision: 3, ModRevision: 9}},
	} {
		if err := x.apply([]*clientv3.Event{ev}, 0); err != errPrevCompacted {
			t.Errorf("%v without its previous value: apply = %v, want errPrevCompacted", ev.Type, err)
		}
		// Its sums are no longer to be read: the index is not built.
		if x.progress.built() {
			t.Errorf("%v without its previous value: the index still counts as built", ev.Type)
		}
		x.progress.started(nil, 5)
	}
	// A new key needs none.
	created := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: key, Value: []byte(`{"cpu":256}`), CreateRevision: 9, ModRevision: 9}}
	if err := x.apply([]*clientv3.Event{created}, 0); err != nil {
		t.Fatalf("a created key: apply = %v", err)
	}
	if n := x.nodes["n1"]; n == nil || n.cpu != 256 || n.tasks != 1 {
		t.Fatalf("after a created key: %+v", n)
	}
}

// Without its watch running, the index does not make a pass wait: it says
// it is behind at once and placement reads etcd.
func TestUsageIndexNotRunning(t *testing.T) {
	x := newUsageIndex(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	if err := x.fill(context.Background(), nil, time.Minute); err != errIndexBehind {
		t.Fatalf("fill = %v, want errIndexBehind", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("fill waited %v", d)
	}
}
