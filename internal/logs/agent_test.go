package logs

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// fakePlacement places tasks on nodes: by node, by task ARN.
type fakePlacement map[string]map[string]PlacedTask

func (f fakePlacement) TaskOnNode(_ context.Context, node, task string) (PlacedTask, bool, error) {
	t, ok := f[node][task]
	return t, ok, nil
}

// placement has task arn:t of account 111111111111 on node n, logging to
// /ecs/app p/web/t1 in us-east-1 (and allowed to create the group), and
// task arn:u of account 222222222222 on node m, logging to /ecs/app
// p/web/u1.
var placement = fakePlacement{
	"n": {"arn:t": {Account: "111111111111", Streams: []TaskStream{{Region: "us-east-1", Group: "/ecs/app", Stream: "p/web/t1", CreateGroup: true}}}},
	"m": {"arn:u": {Account: "222222222222", Streams: []TaskStream{{Region: "us-east-1", Group: "/ecs/app", Stream: "p/web/u1"}}}},
}

func newAgentServer(t *testing.T, e *apiEnv) *httptest.Server {
	e.s.cfg.Placement = placement
	srv := httptest.NewServer(e.s.AgentHandler(func(_ context.Context, tok string) (string, bool) {
		switch tok {
		case "join":
			return "", true
		case "node-n9":
			return "n9", true // a user's host: it may act only as n9
		}
		return "", false
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The agent endpoint through the agents' own client: token, the stream
// check before a container starts, batches, retries stored once.
func TestAgentEndpoint(t *testing.T) {
	e := newAPIEnv(t)
	srv := newAgentServer(t, e)
	client := &agentapi.Client{BaseURL: srv.URL, Token: "join"}
	ctx := context.Background()
	req := agentapi.LogsRequest{NodeID: "n", TaskArn: "arn:t", Account: "111111111111", Region: "us-east-1", Group: "/ecs/app", Stream: "p/web/t1"}

	if _, err := (&agentapi.Client{BaseURL: srv.URL, Token: "wrong"}).PutLogs(ctx, req); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	// A user's host's token acts for its own node only.
	if _, err := (&agentapi.Client{BaseURL: srv.URL, Token: "node-n9"}).PutLogs(ctx, req); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a node token for n9 shipping as n: %v", err)
	}
	if _, err := client.PutLogs(ctx, req); err == nil || !strings.Contains(err.Error(), agentapi.LogsErrorGroupNotFound) {
		t.Fatalf("missing group: %v", err)
	}
	req.CreateGroup = true
	if out, err := client.PutLogs(ctx, req); err != nil || out.Offset != 0 {
		t.Fatalf("ensure: %+v %v", out, err)
	}
	ts := e.now.UnixMilli()
	req.Events = []agentapi.LogEvent{{Timestamp: ts, Message: "one"}, {Timestamp: ts, Message: "two \"quoted\"\n\x00 ünïcode"}}
	req.End = 30
	for range 2 { // a retry of the same batch
		if _, err := client.PutLogs(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	req.Events, req.End = nil, 0
	if out, err := client.PutLogs(ctx, req); err != nil || out.Offset != 30 {
		t.Fatalf("resume offset: %+v %v", out, err)
	}
	var got GetLogEventsOutput
	e.ok("GetLogEvents", m{"logGroupName": "/ecs/app", "logStreamName": "p/web/t1", "startFromHead": true}, &got)
	if len(got.Events) != 2 || got.Events[1].Message != "two \"quoted\"\n\x00 ünïcode" {
		t.Fatalf("stored: %+v", got.Events)
	}
}

// A host may write only into the streams of the tasks placed on it, in
// their accounts: any other batch is refused with 403 and stores (or
// creates) nothing.
func TestAgentEndpointRefusesOthersStreams(t *testing.T) {
	e := newAPIEnv(t)
	srv := newAgentServer(t, e)
	client := &agentapi.Client{BaseURL: srv.URL, Token: "join"}
	ctx := context.Background()
	ts := e.now.UnixMilli()
	good := agentapi.LogsRequest{NodeID: "n", TaskArn: "arn:t", Account: "111111111111", Region: "us-east-1", Group: "/ecs/app",
		Stream: "p/web/t1", CreateGroup: true, End: 4, Events: []agentapi.LogEvent{{Timestamp: ts, Message: "ok"}}}
	tests := []struct {
		name string
		edit func(r *agentapi.LogsRequest)
	}{
		{"another account", func(r *agentapi.LogsRequest) { r.Account = "222222222222" }},
		{"a task on another node", func(r *agentapi.LogsRequest) { r.TaskArn, r.Stream = "arn:u", "p/web/u1" }},
		{"another task's account through it", func(r *agentapi.LogsRequest) { r.TaskArn, r.Account, r.Stream = "arn:u", "222222222222", "p/web/u1" }},
		{"a task placed nowhere", func(r *agentapi.LogsRequest) { r.TaskArn = "arn:gone" }},
		{"a node that has no tasks", func(r *agentapi.LogsRequest) { r.NodeID = "x" }},
		{"another stream of its group", func(r *agentapi.LogsRequest) { r.Stream = "p/web/other" }},
		{"another group", func(r *agentapi.LogsRequest) { r.Group = "/ecs/other" }},
		{"another region", func(r *agentapi.LogsRequest) { r.Region = "eu-west-1" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, withEvents := range []bool{false, true} { // the stream check before a start, and a batch
				req := good
				tc.edit(&req)
				if !withEvents {
					req.Events, req.End = nil, 0
				}
				_, err := client.PutLogs(ctx, req)
				if !errors.Is(err, agentapi.ErrLogsRefused) || !strings.Contains(err.Error(), "403") {
					t.Fatalf("events %v: got %v, want 403", withEvents, err)
				}
			}
		})
	}
	// Nothing was created or stored, in either account.
	for _, acct := range []string{"111111111111", "222222222222"} {
		var groups struct {
			LogGroups []LogGroup `json:"logGroups"`
		}
		if code, msg := e.callAs(acct, "DescribeLogGroups", m{}, &groups); code != "" || len(groups.LogGroups) != 0 {
			t.Fatalf("account %s has groups %+v (%s %s)", acct, groups.LogGroups, code, msg)
		}
	}
	// Without the flag the task's own stream may not create the group
	// either, but it is no refusal: the group is missing.
	noCreate := good
	noCreate.CreateGroup = false
	if _, err := client.PutLogs(ctx, noCreate); err == nil || !strings.Contains(err.Error(), agentapi.LogsErrorGroupNotFound) {
		t.Fatalf("own stream without create-group: %v", err)
	}
	// The task's own stream is taken.
	if _, err := client.PutLogs(ctx, good); err != nil {
		t.Fatalf("own stream: %v", err)
	}
	// A server that does not know where tasks run takes nothing.
	e.s.cfg.Placement = nil
	if _, err := client.PutLogs(ctx, good); !errors.Is(err, agentapi.ErrLogsRefused) {
		t.Fatalf("no placement: %v", err)
	}
}

// Creating the group needs the task's awslogs-create-group.
func TestAgentEndpointCreateGroupNeedsTheOption(t *testing.T) {
	e := newAPIEnv(t)
	srv := newAgentServer(t, e)
	client := &agentapi.Client{BaseURL: srv.URL, Token: "join"}
	req := agentapi.LogsRequest{NodeID: "m", TaskArn: "arn:u", Account: "222222222222", Region: "us-east-1", Group: "/ecs/app",
		Stream: "p/web/u1", CreateGroup: true}
	if _, err := client.PutLogs(context.Background(), req); !errors.Is(err, agentapi.ErrLogsRefused) {
		t.Fatalf("create-group not in the task's options: %v", err)
	}
}

func TestLogsBatchRoundTrip(t *testing.T) {
	in := agentapi.LogsRequest{Account: "a", Group: "g", Stream: "s", End: 99, Events: []agentapi.LogEvent{
		{Timestamp: time.Now().UnixMilli(), Message: strings.Repeat("x", 300)}, {Timestamp: 0, Message: "\n"}}}
	b, err := agentapi.EncodeLogsRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := agentapi.DecodeLogsRequest(b)
	if err != nil || out.End != 99 || len(out.Events) != 2 || out.Events[0] != in.Events[0] || out.Events[1] != in.Events[1] {
		t.Fatalf("%+v %v", out, err)
	}
	for _, bad := range [][]byte{nil, []byte("{}"), []byte("{}\n\x05\x10ab"), []byte("{}\n\xff")} {
		if _, err := agentapi.DecodeLogsRequest(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzDecodeLogsRequest: the batch decoder never panics, and what it
// accepts encodes back to the same events.
func FuzzDecodeLogsRequest(f *testing.F) {
	good, _ := agentapi.EncodeLogsRequest(agentapi.LogsRequest{Account: "a", Group: "g", Stream: "s", End: 9,
		Events: []agentapi.LogEvent{{Timestamp: 1, Message: "one"}, {Timestamp: 1 << 40, Message: "two\n"}}})
	for _, seed := range [][]byte{good, []byte("{}\n"), []byte("{}\n\x01\x00"), []byte("{}\n\x05\x10ab"), []byte("{}\n\xff"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := agentapi.DecodeLogsRequest(b)
		if err != nil {
			return
		}
		again, err := agentapi.EncodeLogsRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := agentapi.DecodeLogsRequest(again)
		if err != nil || len(r2.Events) != len(r.Events) {
			t.Fatalf("re-decode: %d events, %v; want %d", len(r2.Events), err, len(r.Events))
		}
		for i := range r.Events {
			if r.Events[i] != r2.Events[i] {
				t.Fatalf("event %d: %+v then %+v", i, r.Events[i], r2.Events[i])
			}
		}
	})
}
