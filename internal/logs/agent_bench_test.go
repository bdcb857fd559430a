package logs

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// BenchmarkAgentIngest is the server's cost of a full batch from an agent
// (9,000 events of 99 bytes: the shipper's batches of the log benchmark's
// flood): decode and store, without the network.
func BenchmarkAgentIngest(b *testing.B) {
	st, err := OpenStore(b.TempDir() + "/logs.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s := New(Config{Store: st, Placement: placement})
	h := s.AgentHandler(func(context.Context, string) (string, bool) { return "", true })
	req := agentapi.LogsRequest{NodeID: "n", TaskArn: "arn:t", Account: "111111111111", Region: "us-east-1", Group: "/ecs/app",
		Stream: "p/web/t1", CreateGroup: true}
	msg := strings.Repeat("x", 99)
	ts := time.Now().UnixMilli()
	for range 9000 {
		req.Events = append(req.Events, agentapi.LogEvent{Timestamp: ts, Message: msg})
	}
	b.SetBytes(int64(len(req.Events) * (len(msg) + 1)))
	// CPU time, not wall time, is what ingest takes from the other tasks
	// (and it is steadier on a shared machine).
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op") }()
	for i := 0; b.Loop(); i++ {
		req.End = int64(i+1) * 1000
		body, err := agentapi.EncodeLogsRequest(req)
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, agentapi.PathLogs, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer x")
		r.Header.Set("Content-Type", agentapi.LogsContentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
