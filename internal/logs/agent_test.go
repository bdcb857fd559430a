package logs

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// The agent endpoint through the agents' own client: token, the stream
// check before a container starts, batches, retries stored once.
func TestAgentEndpoint(t *testing.T) {
	e := newAPIEnv(t)
	srv := httptest.NewServer(e.s.AgentHandler(func(_ context.Context, tok string) bool { return tok == "join" }))
	t.Cleanup(srv.Close)
	client := &agentapi.Client{BaseURL: srv.URL, Token: "join"}
	ctx := context.Background()
	req := agentapi.LogsRequest{NodeID: "n", TaskArn: "arn:t", Account: "111111111111", Region: "us-east-1", Group: "/ecs/app", Stream: "p/web/t1"}

	if _, err := (&agentapi.Client{BaseURL: srv.URL, Token: "wrong"}).PutLogs(ctx, req); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
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
