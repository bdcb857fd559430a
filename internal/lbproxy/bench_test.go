package lbproxy

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxy compares requests straight to a target with requests
// through the ALB (keep-alive on both legs), in parallel. cpu-ns/op is the
// process's CPU time (user and system) per request: client, backend and,
// for alb, the proxy; alb's less direct's is the proxy's own, which a
// loaded machine skews much less than ns/op.
//
//	go test -run XXX -bench Proxy ./internal/lbproxy/
func BenchmarkProxy(b *testing.B) {
	e := newTestEngine(b, Options{})
	be := newBackend(b, "backend", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello, world\n"))
	})
	tg := httpTG("tg", be.target())
	tg.HealthCheck.Enabled = false
	mustApply(b, e, alb(Listener{DefaultActions: forward("tg")}, tg))

	for _, tc := range []struct{ name, url string }{
		{"direct", be.srv.URL + "/"},
		{"alb", listenerURL(b, e, "listener/app/lb/1") + "/"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			b.ReportAllocs()
			cpu0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(tc.url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
