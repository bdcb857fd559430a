package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/netns"
)

// Paths a stream takes, from tasks[0] (subnet 1).
const (
	pathLoopback = "loopback"    // to 127.0.0.1 in the same sandbox
	pathRouted   = "two subnets" // to tasks[1] in subnet 2: bridge, VPC namespace's routing, bridge
	pathBridged  = "one subnet"  // to tasks[2] in subnet 1: one bridge
)

var paths = []string{pathLoopback, pathRouted, pathBridged}

// streamBuf is the size of each write and read.
const streamBuf = 256 << 10

// streamSample is one stream.
type streamSample struct {
	bytes int64
	dur   time.Duration // first write → the receiver's EOF
}

// gbits is the stream's throughput in Gbit/s (10⁹ bits per second).
func (s streamSample) gbits() float64 {
	if s.dur <= 0 {
		return 0
	}
	return float64(s.bytes) * 8 / s.dur.Seconds() / 1e9
}

// measureStreams sends b.streams streams along each path, rotating the
// order of the paths each round, after one short untimed stream of each.
func (b *Benchmark) measureStreams(ctx context.Context, h *bench.Harness, vpc *benchVPC, m *measurements) error {
	var err error
	if m.mtu, err = readMTUs(vpc.tasks[0].sb); err != nil {
		return err
	}
	limit := int64(b.streamMiB) << 20
	for _, p := range paths {
		if _, err := streamAlong(ctx, vpc, p, min(limit, 64<<20), b.streamMax); err != nil {
			return fmt.Errorf("warm-up stream, %s: %w", p, err)
		}
	}
	for round := range b.streams {
		for j := range paths {
			p := paths[(round+j)%len(paths)]
			s, err := streamAlong(ctx, vpc, p, limit, b.streamMax)
			if err != nil {
				return fmt.Errorf("stream %d, %s: %w", round+1, p, err)
			}
			m.streams[p] = append(m.streams[p], s)
			h.Log.Debug("stream", "path", p, "bytes", s.bytes, "took", s.dur, "gbit_s", s.gbits())
		}
	}
	return nil
}

// streamAlong runs one stream along path p.
func streamAlong(ctx context.Context, vpc *benchVPC, p string, limit int64, maxDur time.Duration) (streamSample, error) {
	from := vpc.tasks[0].sb
	switch p {
	case pathLoopback:
		return stream(ctx, from, from, netip.MustParseAddr("127.0.0.1"), limit, maxDur)
	case pathRouted:
		return stream(ctx, from, vpc.tasks[1].sb, vpc.tasks[1].cfg.Address, limit, maxDur)
	case pathBridged:
		return stream(ctx, from, vpc.tasks[2].sb, vpc.tasks[2].cfg.Address, limit, maxDur)
	}
	return streamSample{}, fmt.Errorf("unknown path %q", p)
}

// stream sends limit bytes, or as many as it can in maxDur, over one TCP
// connection from a socket made in sandbox from to a listener made in
// sandbox to on addr, and times it until the receiver has read them all.
// Only the sockets are made inside the namespaces (netns.RunIn); sending and
// receiving run on the Go runtime's threads as usual.
func stream(ctx context.Context, from, to *netns.Sandbox, addr netip.Addr, limit int64, maxDur time.Duration) (streamSample, error) {
	var l net.Listener
	err := netns.RunIn(to.Path(), func() error {
		var err error
		l, err = net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		return streamSample{}, fmt.Errorf("listen in %s: %w", to.Name, err)
	}
	defer l.Close()

	deadline := time.Now().Add(maxDur + 30*time.Second)
	type received struct {
		n   int64
		end time.Time
		err error
	}
	done := make(chan received, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- received{err: fmt.Errorf("accept: %w", err)}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		buf := make([]byte, streamBuf)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				done <- received{n: n, end: time.Now()}
				return
			}
			if err != nil {
				done <- received{n: n, err: fmt.Errorf("receive: %w", err)}
				return
			}
		}
	}()

	var c net.Conn
	err = netns.RunIn(from.Path(), func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		var err error
		c, err = d.DialContext(ctx, "tcp4", l.Addr().String())
		return err
	})
	if err != nil {
		l.Close() // unblocks Accept
		<-done
		return streamSample{}, fmt.Errorf("connect from %s to %s: %w", from.Name, l.Addr(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)

	buf := make([]byte, streamBuf)
	var sent int64
	t0 := time.Now()
	for sent < limit && time.Since(t0) < maxDur {
		k, err := c.Write(buf[:min(int64(len(buf)), limit-sent)])
		sent += int64(k)
		if err != nil {
			c.Close()
			<-done
			return streamSample{}, fmt.Errorf("send: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return streamSample{}, fmt.Errorf("close the sending side: %w", err)
	}
	r := <-done
	if r.err != nil {
		return streamSample{}, r.err
	}
	if r.n != sent {
		return streamSample{}, fmt.Errorf("received %d bytes of %d", r.n, sent)
	}
	return streamSample{bytes: sent, dur: r.end.Sub(t0)}, nil
}

// readMTUs reads the MTUs of eth0 and lo in a task's sandbox.
func readMTUs(sb *netns.Sandbox) (map[string]int, error) {
	h, err := sb.Netlink()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	out := map[string]int{}
	for _, name := range []string{"eth0", "lo"} {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("MTU of %s in %s: %w", name, sb.Name, err)
		}
		out[name] = l.Attrs().MTU
	}
	return out, nil
}
