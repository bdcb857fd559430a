package ecs_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agentapi"
)

// A host's long polls after the first ask for deltas: the control plane
// sends only the specs that changed, the client rebuilds the whole list,
// and a stopped task leaves it. The lists equal what a fresh full poll of
// the same node returns.
func TestAgentPollDeltas(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	// Count the specs on the wire through a proxy in front of the server.
	target, _ := url.Parse(e.url)
	var deltas atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Query().Get("delta") == "1" {
			deltas.Add(1)
		}
		return nil
	}
	counting := httptest.NewServer(proxy)
	t.Cleanup(counting.Close)
	agent := &agentapi.Client{BaseURL: counting.URL, Token: "agent-token"}
	full := &agentapi.Client{BaseURL: e.url, Token: "agent-token"}

	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "delta")
	ids := func(r agentapi.TasksResponse) []string {
		var out []string
		for _, s := range r.Tasks {
			out = append(out, s.TaskID+"/"+s.DesiredStatus)
		}
		sort.Strings(out)
		return out
	}
	var since int64
	poll := func(step string, want int) agentapi.TasksResponse {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := agent.Tasks(ctx, "n1", since, time.Second)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			since = r.Revision
			if len(r.Tasks) == want || time.Now().After(deadline) {
				f, err := full.Tasks(context.Background(), "n1", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got, wantIDs := strings.Join(ids(r), ","), strings.Join(ids(f), ","); got != wantIDs || len(r.Tasks) != want {
					t.Fatalf("%s: the delta-built list is %q, a full poll %q (want %d tasks)", step, got, wantIDs, want)
				}
				return r
			}
		}
	}
	poll("first poll", 0)
	first := e.run(t, "default", td, 2)
	poll("two placed", 2)
	e.run(t, "default", td, 3)
	poll("five placed", 5)
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: first[0].TaskArn}); err != nil {
		t.Fatal(err)
	}
	r := poll("one stopping", 5)
	stopping := 0
	for _, s := range r.Tasks {
		if s.DesiredStatus == "STOPPED" {
			stopping++
		}
	}
	if stopping != 1 {
		t.Fatalf("%d tasks desired STOPPED in the rebuilt list, want 1", stopping)
	}
	// The host reports it stopped: its assign key goes, and so does the
	// task from the list.
	if err := agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: aws.ToString(first[0].TaskArn), Status: "STOPPED", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	poll("one stopped", 4)
	if deltas.Load() == 0 {
		t.Fatal("no poll asked for a delta")
	}
}

// A report from a host the task is not placed on is refused with 409 (the
// agent stops reporting it); a task that does not exist is 404.
func TestReportFromAnotherNode(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	task := e.run(t, "default", e.register(t, "other-node"), 1)[0]
	e.poll(t, "n1", 1)
	for _, tc := range []struct {
		node, arn string
		code      int
	}{
		{"n2", aws.ToString(task.TaskArn), http.StatusConflict},
		{"n1", "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef", http.StatusNotFound},
	} {
		err := e.agent.Report(ctx, agentapi.StateReport{NodeID: tc.node, TaskArn: tc.arn, Status: "PENDING", Seq: 1})
		var se *agentapi.StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("report of %s from %s: %v, want HTTP %d", tc.arn, tc.node, err, tc.code)
		}
	}
}
