package ecs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/store"
)

// TestAgentLoadBalancers: the tasks long poll hands a node the load
// balancers placed on it, and wakes when they change; only that node may
// report their targets' health.
func TestAgentLoadBalancers(t *testing.T) {
	var mu sync.Mutex
	var got []agentapi.TargetHealthReport
	e := newEnvWith(t, becs.Config{TargetHealth: func(_ context.Context, r agentapi.TargetHealthReport) error {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		return nil
	}})
	ctx := ctxT(t)
	const arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
	spec := agentapi.LoadBalancerSpec{ARN: arn, Account: "000000000000", Region: "us-east-1", PublicAddress: "127.101.0.2",
		Proxy: lbproxy.LoadBalancer{ARN: arn, Type: lbproxy.TypeApplication}, Revision: 1}
	if err := e.st.Put(ctx, store.Key("lbs", "node-1", "0123456789abcdef"), spec); err != nil {
		t.Fatal(err)
	}
	resp, err := e.agent.Tasks(ctx, "node-1", 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.LoadBalancers) != 1 || resp.LoadBalancers[0].ARN != arn || resp.LoadBalancers[0].PublicAddress != "127.101.0.2" {
		t.Fatalf("load balancers %+v", resp.LoadBalancers)
	}
	if other, err := e.agent.Tasks(ctx, "node-2", 0, time.Second); err != nil || len(other.LoadBalancers) != 0 {
		t.Fatalf("node-2 sees %+v, %v", other.LoadBalancers, err)
	}
	// A change of the spec ends a long poll.
	done := make(chan agentapi.TasksResponse, 1)
	go func() {
		r, err := e.agent.Tasks(ctx, "node-1", resp.Revision, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond)
	spec.Revision, spec.PublicAddress = 2, "127.101.0.9"
	start := time.Now()
	if err := e.st.Put(ctx, store.Key("lbs", "node-1", "0123456789abcdef"), spec); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if len(r.LoadBalancers) != 1 || r.LoadBalancers[0].Revision != 2 || r.Revision <= resp.Revision {
			t.Errorf("after change %+v", r)
		}
		t.Logf("long poll woke after %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not wake on a load balancer change")
	}

	rep := agentapi.TargetHealthReport{NodeID: "node-2", LoadBalancerARN: arn,
		TargetGroups: map[string][]lbproxy.TargetStatus{"tg": {{ID: "10.0.0.5", Port: 80, State: "healthy"}}}}
	if err := e.agent.TargetHealth(ctx, rep); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("report from the wrong node: %v", err)
	}
	rep.NodeID = "node-1"
	rep.LoadBalancerARN = strings.Replace(arn, "0123456789abcdef", "fedcba9876543210", 1)
	if err := e.agent.TargetHealth(ctx, rep); err == nil {
		t.Error("report of an unknown load balancer accepted")
	}
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("refused reports reached elb: %+v", got)
	}
	rep.LoadBalancerARN = arn
	if err := e.agent.TargetHealth(ctx, rep); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].TargetGroups["tg"][0].State != "healthy" {
		t.Errorf("reports %+v", got)
	}
}
