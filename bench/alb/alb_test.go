package alb

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:18080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   631.20us  200.00us   9.10ms   90.00%
    Req/Sec    20.00k     1.00k   22.00k    70.00%
  Latency Distribution
     50%  500.00us
     75%  700.00us
     90%  900.00us
     99%    2.10ms
  398765 requests in 10.00s, 50.00MB read
  Non-2xx or 3xx responses: 5
  Socket errors: connect 1, read 2, write 0, timeout 3
Requests/sec:  39876.50
Transfer/sec:      5.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 398765, ReqPerSec: 39876.5, P50: 500 * time.Microsecond, P99: 2100 * time.Microsecond, Non2xx: 5, SockErrs: 6}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk accepted output without figures")
	}
	for s, d := range map[string]time.Duration{"1.50s": 1500 * time.Millisecond, "2.00m": 2 * time.Minute, "12.00us": 12 * time.Microsecond} {
		if got, err := parseWrkDuration(s); err != nil || got != d {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", s, got, err, d)
		}
	}
}

func TestNginxConfig(t *testing.T) {
	conf, err := nginxConfig("/tmp/x", 2, nginxAddr, netip.MustParseAddrPort("172.31.0.4:8080"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker_processes 2;", "daemon off;", "access_log off;", "server 172.31.0.4:8080;", "keepalive 64;",
		"listen 127.0.0.1:18080;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`, "pid /tmp/x/nginx.pid;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
}

func TestAnalyzeRollout(t *testing.T) {
	var ps []poll
	add := func(n, status int, body string) {
		for range n {
			ps = append(ps, poll{at: time.Duration(len(ps)) * time.Second, status: status, body: body})
		}
	}
	add(10, 200, oldBody)
	add(3, 200, newBody)
	add(1, 200, oldBody)
	add(1, 0, "")
	add(1, 502, "bad gateway")
	add(window+5, 200, newBody)
	r := analyzeRollout(ps)
	if r.firstNew != 10*time.Second || r.allNew != 16*time.Second || r.errs != 1 || r.non200 != 1 || r.old != 0 || r.polls != len(ps) {
		t.Errorf("analyzeRollout = %+v", r)
	}
	if r := analyzeRollout(ps[:20]); r.allNew >= 0 {
		t.Errorf("no full window, but allNew %s", r.allNew)
	}
}

func TestReadResponse(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n" +
		"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 3\r\n\r\nno\n"
	br := bufio.NewReader(strings.NewReader(in))
	if st, keep, err := readResponse(br); st != 200 || !keep || err != nil {
		t.Errorf("first = %d %v %v", st, keep, err)
	}
	if st, keep, err := readResponse(br); st != 503 || keep || err != nil {
		t.Errorf("second = %d %v %v", st, keep, err)
	}
	if _, _, err := readResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))); err == nil {
		t.Error("chunked answer accepted")
	}
}

func TestRunLoad(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello\n")) }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	res, err := runLoad(context.Background(), loadSpec{rate: 500, conns: 4, dur: 300 * time.Millisecond, warmup: 100 * time.Millisecond,
		dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.sent < 140 || res.sent > 160 || len(res.lat) != int(res.sent) || res.errs != 0 || res.non200 != 0 {
		t.Errorf("runLoad: sent %d, answered %d, errors %d, non-200 %d; want 150 answered", res.sent, len(res.lat), res.errs, res.non200)
	}
}

func TestOrderAndMedian(t *testing.T) {
	if got := order([]string{"a", "b", "c"}, 1); strings.Join(got, "") != "bca" {
		t.Errorf("order = %v", got)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestResult(t *testing.T) {
	b := New()
	b.rounds = 1
	ls := func(p99 time.Duration) []loadSample {
		return []loadSample{{rate: 100, p50: p99 / 2, p99: p99, p999: p99, max: p99, sent: 1000}}
	}
	m := &measurements{date: time.Unix(0, 0), workers: 2,
		wrk: map[string][]wrkResult{"direct": {{ReqPerSec: 30000}}, "nginx": {{ReqPerSec: 20000}}, "ALB": {{ReqPerSec: 8000}}},
		latency: []latencySet{
			{what: "half nginx's", rate: 10000, runs: map[string][]loadSample{"direct": ls(time.Millisecond), "nginx": ls(1500 * time.Microsecond), "ALB": ls(time.Second)}},
			{what: "half the ALB's", rate: 4000, runs: map[string][]loadSample{"direct": ls(time.Millisecond), "nginx": ls(1200 * time.Microsecond), "ALB": ls(1800 * time.Microsecond)}},
		},
		rollout: &rolloutResult{firstNew: 5 * time.Second, allNew: 6 * time.Second, steady: 7 * time.Second, polls: 400},
		profile: &profile{reqPerSec: 8000, kernel: 50, top: []string{" 48.00%   0.40%  net/http.(*conn).serve"}},
	}
	res := b.result(m)
	if len(res.Figures) != 6 {
		t.Fatalf("%d figures, want 6: %+v", len(res.Figures), res.Figures)
	}
	if f := res.Figures[0]; *f.Met || f.Ratio() != 0.4 {
		t.Errorf("throughput figure %+v: want ratio 0.4, not met", f)
	}
	if f := res.Figures[1]; *f.Met || f.Value.Num != 0.999 {
		t.Errorf("added p99 figure %+v: want 999 ms, not met", f)
	}
	for _, want := range []string{"ALB / nginx = 0.40", "adds 800 µs", "net/http.(*conn).serve", "| new revision serves 100 % | 6000.0 ms |"} {
		if !strings.Contains(res.Details, want) {
			t.Errorf("details lack %q:\n%s", want, res.Details)
		}
	}
}
