package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// gateServer takes a report only when the test lets it: each Report call
// blocks until release, which answers it with the given error.
type gateServer struct {
	mu      sync.Mutex
	sent    []agentapi.StateReport // every report as it was sent
	arrived chan struct{}
	release chan error
}

func newGateServer() *gateServer {
	return &gateServer{arrived: make(chan struct{}, 16), release: make(chan error)}
}

func (g *gateServer) Report(ctx context.Context, r agentapi.StateReport) error {
	g.mu.Lock()
	g.sent = append(g.sent, r)
	g.mu.Unlock()
	g.arrived <- struct{}{}
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateServer) statuses() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, r := range g.sent {
		out = append(out, r.Status)
	}
	return out
}

func (g *gateServer) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(5 * time.Second):
		t.Fatalf("no report arrived; sent %v", g.statuses())
	}
}

func TestReportSenderSendsTheLatest(t *testing.T) {
	g := newGateServer()
	r := newReportSender(g.Report, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	rep := func(status string, seq int64) agentapi.StateReport {
		return agentapi.StateReport{TaskArn: "arn:t", Status: status, Seq: seq}
	}
	r.put(rep(agentapi.StatusPending, 1))
	g.waitArrived(t) // PENDING is in flight
	// Two more while it is: only the newer goes next.
	r.put(rep(agentapi.StatusActivating, 2))
	r.put(rep(agentapi.StatusRunning, 3))
	flushed := make(chan bool, 1)
	go func() { flushed <- r.flush(ctx) }()
	g.release <- nil // PENDING taken
	g.waitArrived(t)
	select {
	case <-flushed:
		t.Fatal("flush returned before RUNNING was taken")
	case <-time.After(20 * time.Millisecond):
	}
	// RUNNING refused: sent again, and a newer report during the retry
	// replaces it.
	g.release <- errors.New("busy")
	g.waitArrived(t)
	r.put(rep(agentapi.StatusDeactivating, 4))
	g.release <- errors.New("busy again")
	g.waitArrived(t)
	g.release <- nil
	if !<-flushed {
		t.Fatal("flush failed")
	}
	want := []string{agentapi.StatusPending, agentapi.StatusRunning, agentapi.StatusRunning, agentapi.StatusDeactivating}
	if !equal(g.statuses(), want) {
		t.Fatalf("sent %v, want %v", g.statuses(), want)
	}
	if !r.flush(ctx) {
		t.Fatal("flush with nothing queued must return at once")
	}

	// Shutting down: a report still unanswered leaves flush false.
	r.put(rep(agentapi.StatusStopping, 5))
	g.waitArrived(t)
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer scancel()
	if r.flush(sctx) {
		t.Fatal("flush returned true with a report unanswered")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return when its context ended")
	}
}
