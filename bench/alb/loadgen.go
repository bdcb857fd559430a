package alb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Open-loop load at a fixed rate. wrk is closed-loop: a slow answer delays
// the requests behind it, which then are not sent, let alone timed
// (coordinated omission). Here request i is due at start + i/rate whatever
// happened before; a fixed set of keep-alive connections takes the due
// requests in order, and a request taken after its due time is timed from
// that due time, so that time spent queued behind slow answers counts.
//
// A request taken before its due time waits for it and is timed from when
// it is actually written: Go's timers wake up to about a millisecond late
// on an idle process, and that lateness is the generator's, not the
// server's (late counts the requests taken after their due time, a sign
// that the connections, or the generator, could not keep up).

// loadSpec is one open-loop run.
type loadSpec struct {
	rate   float64       // requests per second
	conns  int           // keep-alive connections
	dur    time.Duration // timed part
	warmup time.Duration // untimed part before it, at the same rate
	dial   func(ctx context.Context) (net.Conn, error)
}

// loadResult is what a run measured in its timed part.
type loadResult struct {
	lat    []time.Duration // one per answered request
	errs   int64           // transport errors (the connection is redialled)
	non200 int64
	late   int64 // requests taken after their due time
	sent   int64
}

// request is the one request every run sends.
const request = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: berthbench\r\n\r\n"

// runLoad sends spec.rate requests per second for warmup+dur.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	if spec.rate <= 0 || spec.conns < 1 {
		return loadResult{}, fmt.Errorf("load: rate %.0f/s over %d connections", spec.rate, spec.conns)
	}
	interval := time.Duration(float64(time.Second) / spec.rate)
	start := time.Now().Add(50 * time.Millisecond)
	timedFrom := start.Add(spec.warmup)
	end := timedFrom.Add(spec.dur)
	var (
		next    atomic.Int64
		mu      sync.Mutex
		res     loadResult
		wg      sync.WaitGroup
		failure atomic.Pointer[error]
	)
	for range spec.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w worker
			defer w.close()
			var lat []time.Duration
			var errs, non200, late, sent int64
			defer func() {
				mu.Lock()
				res.lat = append(res.lat, lat...)
				res.errs += errs
				res.non200 += non200
				res.late += late
				res.sent += sent
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				due := start.Add(time.Duration(i) * interval)
				if !due.Before(end) {
					return
				}
				from, waited := due, false
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
					from, waited = time.Now(), true
				}
				timed := !due.Before(timedFrom)
				if timed && !waited {
					late++
				}
				status, err := w.do(ctx, spec.dial)
				d := time.Since(from)
				if !timed {
					continue
				}
				sent++
				switch {
				case err != nil:
					errs++
					if errs > 1000 {
						err = fmt.Errorf("over 1000 failed requests, last: %w", err)
						failure.CompareAndSwap(nil, &err)
						return
					}
				case status != http.StatusOK:
					non200++
				default:
					lat = append(lat, d)
				}
			}
		}()
	}
	wg.Wait()
	if p := failure.Load(); p != nil {
		return res, *p
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// worker is one keep-alive connection of the generator.
type worker struct {
	c  net.Conn
	br *bufio.Reader
}

// do sends the request and reads the answer, dialling first if the
// connection is not open; on an error it closes the connection.
func (w *worker) do(ctx context.Context, dial func(context.Context) (net.Conn, error)) (int, error) {
	if w.c == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dial(dctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		w.c, w.br = c, bufio.NewReaderSize(c, 4096)
	}
	_ = w.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(w.c, request); err != nil {
		w.close()
		return 0, fmt.Errorf("write: %w", err)
	}
	status, keep, err := readResponse(w.br)
	if err != nil {
		w.close()
		return 0, fmt.Errorf("read: %w", err)
	}
	if !keep {
		w.close()
	}
	return status, nil
}

// readResponse reads one HTTP/1.1 response with a Content-Length body (what
// the backend, nginx and the ALB send for it) and discards the body; it
// allocates nothing, so the generator costs little CPU beside the servers.
// keep is false when the server closes the connection.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("bad status line %q", line)
		}
		status = status*10 + int(c-'0')
	}
	length, keep := -1, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("bad header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length = 0
			for _, c := range value {
				if c < '0' || c > '9' {
					return 0, false, fmt.Errorf("bad Content-Length %q", value)
				}
				length = length*10 + int(c-'0')
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("chunked answers are not supported")
		}
	}
	if length < 0 {
		return 0, false, fmt.Errorf("answer %d without Content-Length", status)
	}
	if _, err := br.Discard(length); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}

func (w *worker) close() {
	if w.c != nil {
		w.c.Close()
		w.c, w.br = nil, nil
	}
}

// errNoSamples means a run answered nothing in its timed part.
var errNoSamples = errors.New("no request answered")
