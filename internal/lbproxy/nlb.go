package lbproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The NLB: TCP passthrough. A connection is assigned a target group (by
// weight) and a target by a hash of its flow (protocol, client address and
// port, listener address and port), by rendezvous hashing over the healthy
// targets, so a flow sticks to its target while the target set is stable
// and only the flows of a removed target move. Bytes are copied both ways;
// a FIN from either side is passed on as a half-close.
//
// Client addresses: berth's NLB is a userspace proxy, so targets see the
// load balancer's own address (whatever Options.Dial binds). A target group
// with ProxyProtocolV2 receives a PROXY protocol v2 header carrying the
// client's address and port first, as with ELBv2's proxy_protocol_v2.enabled.

// acceptLoop accepts connections until s is closed.
func (rl *runningListener) acceptLoop(s net.Listener) {
	var delay time.Duration
	for {
		c, err := s.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && rl.e.ctx.Err() == nil {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return
		}
		delay = 0
		rl.e.wg.Go(func() { rl.serveTCP(c) })
	}
}

// flowHash hashes the 5-tuple of a TCP connection.
func flowHash(c net.Conn) uint64 {
	h := fnv.New64a()
	h.Write([]byte{6}) // TCP
	h.Write([]byte(c.RemoteAddr().String()))
	h.Write([]byte{0})
	h.Write([]byte(c.LocalAddr().String()))
	return h.Sum64()
}

func (rl *runningListener) serveTCP(c net.Conn) {
	defer c.Close()
	rt := rl.route.Load()
	flow := flowHash(c)
	tg := rt.defaults.pickTG(mix64(flow))
	t, err := tg.pick(&flow)
	if err != nil {
		rl.e.log.Debug("nlb: no target", "listener", rl.arn, "targetGroup", tg.arn, "client", c.RemoteAddr())
		resetConn(c)
		return
	}
	t, up, err := rl.connect(tg, t, flow)
	if err != nil {
		resetConn(c)
		return
	}
	defer t.release()
	defer up.Close()
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	// The target drains out or the engine closes: cut the connection.
	stop := context.AfterFunc(ctx, func() {
		_ = c.Close()
		_ = up.Close()
	})
	defer stop()

	tg.mu.Lock()
	ppv2 := tg.cfg.ProxyProtocolV2
	tg.mu.Unlock()
	if ppv2 {
		if _, err := up.Write(proxyV2Header(c.RemoteAddr(), c.LocalAddr())); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, c) })
	pipe(c, up)
	wg.Wait()
}

// connect dials target t for a client's flow. A target that cannot be
// reached is avoided for a while (dialFailed) and the flow goes to the next
// target by its hash: the client has sent nothing the target could have
// seen, so the connection is as good as new. It returns the target reached
// (counted in flight) or an error, with nothing left in flight.
func (rl *runningListener) connect(tg *targetGroup, t *target, flow uint64) (*target, net.Conn, error) {
	var tried []*target
	for {
		up, err := rl.e.dialTarget(t.ctx, "tcp", t.addr)
		if err == nil {
			return t, up, nil
		}
		rl.e.log.Debug("nlb: dial target", "target", t.addr, "err", err)
		t.release()
		if !isDialError(err) || t.ctx.Err() != nil {
			return nil, nil, err
		}
		t.dialFailed()
		tried = append(tried, t)
		if len(tried) >= maxConnectTries {
			return nil, nil, err
		}
		next, perr := tg.pick(&flow, tried...)
		if perr != nil {
			return nil, nil, err
		}
		t = next
	}
}

// pipe copies src to dst, then half-closes dst's write side.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
		return
	}
	// No half-close (or an error): end both directions.
	_ = dst.Close()
	_ = src.Close()
}

// resetConn closes c with a RST where possible, as an NLB without a target.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// proxyV2Sig is the PROXY protocol v2 signature.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyV2Header is a PROXY protocol v2 header (command PROXY, TCP) for a
// connection from src to dst; LOCAL if either address is not TCP/IP.
func proxyV2Header(src, dst net.Addr) []byte {
	s, ok1 := addrPort(src)
	d, ok2 := addrPort(dst)
	b := append([]byte{}, proxyV2Sig...)
	if !ok1 || !ok2 || s.Addr().Is4() != d.Addr().Is4() {
		return append(b, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC
	}
	b = append(b, 0x21) // v2, PROXY
	if s.Addr().Is4() {
		b = append(b, 0x11, 0, 12) // TCP over IPv4
		a, c := s.Addr().As4(), d.Addr().As4()
		b = append(append(b, a[:]...), c[:]...)
	} else {
		b = append(b, 0x21, 0, 36) // TCP over IPv6
		a, c := s.Addr().As16(), d.Addr().As16()
		b = append(append(b, a[:]...), c[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
