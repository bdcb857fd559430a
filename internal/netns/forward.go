package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Port is a port a forwarder forwards: Protocol "tcp" or "udp".
type Port struct {
	Protocol string
	// Port is the target's port.
	Port int
	// Listen is the port listened on (0: Port). A bridge-mode task's host
	// port differs from its container port.
	Listen int
}

// ForwarderConfig says what a PublicForwarder forwards where.
type ForwarderConfig struct {
	// VpcID is the VPC of the target.
	VpcID string
	// Public is the address the forwarder listens on in the host namespace:
	// an address of the host's public pool (in dev a loopback address such
	// as 127.100.0.5; all of 127.0.0.0/8 is local on Linux).
	Public netip.Addr
	// Private is the target's address inside the VPC (the ENI's).
	Private netip.Addr
	// Ports are forwarded from Public (at Port.Listen, or Port.Port) to
	// Port.Port on Private.
	Ports []Port
	// DialTimeout bounds a connection attempt to the target (default 10s).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP client's session after that long without
	// traffic either way (default 60s).
	UDPIdleTimeout time.Duration
	// Logger receives the forwarder's errors (nil: discarded).
	Logger *slog.Logger
}

// PublicForwarder gives an ENI its public IP, and a bridge-mode task its
// host ports (the bridge network is a VPC namespace too, see bridge.go): it listens on the public
// address in the host namespace and, for each TCP connection or UDP
// client, dials the private address from inside the VPC's namespace and
// copies both ways (TCP half-closes are passed on; UDP clients get a
// session each, ended after an idle timeout). The dials come from the VPC
// end of the uplink (an address of UplinkPool), so the target's security
// groups admit the host with a 0.0.0.0/0 rule and not with a rule for the
// VPC's own CIDR, as for internet traffic in AWS.
type PublicForwarder struct {
	cfg   ForwarderConfig
	log   *slog.Logger
	vpc   string // namespace path
	src   atomic.Pointer[netip.Addr]
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[io.Closer]bool // listeners, connections, sessions
	shut  bool
	ctx   context.Context
	abort context.CancelFunc
}

// StartPublicForwarder starts listening on every port; it fails, having
// started nothing, if any listener cannot be opened or the VPC has no
// namespace on this host.
func StartPublicForwarder(cfg ForwarderConfig) (*PublicForwarder, error) {
	f, err := startPublicForwarder(cfg)
	if err != nil {
		return nil, fmt.Errorf("forward %s to %s in %s: %w", cfg.Public, cfg.Private, cfg.VpcID, err)
	}
	return f, nil
}

func startPublicForwarder(cfg ForwarderConfig) (*PublicForwarder, error) {
	if err := validID("VPC", cfg.VpcID); err != nil {
		return nil, err
	}
	if !cfg.Public.IsValid() || !cfg.Private.IsValid() {
		return nil, errors.New("public and private addresses are required")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = 60 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &PublicForwarder{cfg: cfg, log: log, vpc: vpcPath(cfg.VpcID), open: map[io.Closer]bool{}}
	f.ctx, f.abort = context.WithCancel(context.Background())
	src, err := vpcUplinkAddr(cfg.VpcID)
	if err != nil {
		return nil, err
	}
	f.src.Store(&src)

	seen := map[Port]bool{}
	for _, p := range cfg.Ports {
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		listen := p.Listen
		if listen == 0 {
			listen = p.Port
		}
		if p.Port <= 0 || p.Port > 65535 || listen < 0 || listen > 65535 {
			f.Close()
			return nil, fmt.Errorf("invalid port %d (listening on %d)", p.Port, listen)
		}
		addr := netip.AddrPortFrom(cfg.Public, uint16(listen)).String()
		switch p.Protocol {
		case "tcp":
			l, err := net.Listen("tcp", addr)
			if err != nil {
				f.Close()
				return nil, err
			}
			f.track(l)
			f.wg.Add(1)
			go f.serveTCP(l, uint16(p.Port))
		case "udp":
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				f.Close()
				return nil, err
			}
			f.track(pc)
			f.wg.Add(1)
			go f.serveUDP(pc.(*net.UDPConn), uint16(p.Port))
		default:
			f.Close()
			return nil, fmt.Errorf("unsupported protocol %q", p.Protocol)
		}
	}
	return f, nil
}

// Close stops listening, ends every forwarded connection and session, and
// waits for them.
func (f *PublicForwarder) Close() error {
	f.mu.Lock()
	f.shut = true
	open := f.open
	f.open = map[io.Closer]bool{}
	f.mu.Unlock()
	f.abort()
	for c := range open {
		_ = c.Close()
	}
	f.wg.Wait()
	return nil
}

// track registers c to be closed by Close; false if already closed.
func (f *PublicForwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shut {
		return false
	}
	f.open[c] = true
	return true
}

func (f *PublicForwarder) untrack(c io.Closer) {
	f.mu.Lock()
	delete(f.open, c)
	f.mu.Unlock()
}

// dial connects to the target port from the VPC end of the uplink. If that
// address is gone (the VPC namespace was made anew), it looks it up again.
func (f *PublicForwarder) dial(network string, port uint16) (net.Conn, error) {
	target := netip.AddrPortFrom(f.cfg.Private, port).String()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.DialTimeout)
		c, err := dialIn(ctx, f.vpc, network, netip.AddrPortFrom(*f.src.Load(), 0), target)
		cancel()
		if err == nil || attempt > 0 || !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return c, err
		}
		src, lerr := vpcUplinkAddr(f.cfg.VpcID)
		if lerr != nil {
			return nil, errors.Join(err, lerr)
		}
		f.src.Store(&src)
	}
}

func (f *PublicForwarder) serveTCP(l net.Listener, port uint16) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if f.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			f.log.Warn("public forwarder: accept", "addr", l.Addr(), "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		f.wg.Add(1)
		go f.forwardTCP(c.(*net.TCPConn), port)
	}
}

func (f *PublicForwarder) forwardTCP(client *net.TCPConn, port uint16) {
	defer f.wg.Done()
	if !f.track(client) {
		client.Close()
		return
	}
	defer f.untrack(client)
	up, err := f.dial("tcp", port)
	if err != nil {
		f.log.Debug("public forwarder: dial", "target", netip.AddrPortFrom(f.cfg.Private, port), "err", err)
		_ = client.SetLinger(0) // reset: the client sees a refusal, not an empty reply
		client.Close()
		return
	}
	upstream := up.(*net.TCPConn)
	if !f.track(upstream) {
		upstream.Close()
		client.Close()
		return
	}
	defer f.untrack(upstream)
	splice(client, upstream)
}

// splice copies both ways. A clean EOF on one side is passed on as a
// half-close; an error on either ends both.
func splice(a, b *net.TCPConn) {
	done := make(chan struct{}, 2)
	one := func(dst, src *net.TCPConn) {
		_, err := io.Copy(dst, src)
		if err != nil {
			a.Close()
			b.Close()
		} else {
			_ = dst.CloseWrite()
		}
		done <- struct{}{}
	}
	go one(a, b)
	go one(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}

// udpSession relays one UDP client.
type udpSession struct {
	up   net.Conn
	seen atomic.Int64 // unix nanos of the last packet either way
}

func (f *PublicForwarder) serveUDP(pc *net.UDPConn, port uint16) {
	defer f.wg.Done()
	var mu sync.Mutex
	sessions := map[netip.AddrPort]*udpSession{}
	buf := make([]byte, 64<<10)
	for {
		n, client, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		mu.Lock()
		s := sessions[client]
		mu.Unlock()
		if s == nil {
			up, err := f.dial("udp", port)
			if err != nil {
				f.log.Debug("public forwarder: dial", "target", netip.AddrPortFrom(f.cfg.Private, port), "err", err)
				continue
			}
			if !f.track(up) {
				up.Close()
				return
			}
			s = &udpSession{up: up}
			s.seen.Store(time.Now().UnixNano()) // before relayUDP reads it
			mu.Lock()
			sessions[client] = s
			mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.relayUDP(pc, client, s)
				mu.Lock()
				delete(sessions, client)
				mu.Unlock()
				f.untrack(up)
				up.Close()
			}()
		}
		s.seen.Store(time.Now().UnixNano())
		_, _ = s.up.Write(buf[:n])
	}
}

// relayUDP copies the target's replies to the client until the session has
// been idle for the timeout or is closed.
func (f *PublicForwarder) relayUDP(pc *net.UDPConn, client netip.AddrPort, s *udpSession) {
	buf := make([]byte, 64<<10)
	idle := f.cfg.UDPIdleTimeout
	for {
		_ = s.up.SetReadDeadline(time.Unix(0, s.seen.Load()).Add(idle))
		n, err := s.up.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Since(time.Unix(0, s.seen.Load())) >= idle {
				return
			}
			continue // the client sent meanwhile: wait on
		case errors.Is(err, syscall.ECONNREFUSED):
			continue // an ICMP port unreachable; the target may come up
		default:
			return
		}
		s.seen.Store(time.Now().UnixNano())
		_, _ = pc.WriteToUDPAddrPort(buf[:n], client)
	}
}
