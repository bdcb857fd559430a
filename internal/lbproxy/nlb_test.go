package lbproxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer answers each connection with "NAME\n", then echoes until EOF,
// then half-closes.
type echoServer struct {
	name  string
	ln    net.Listener
	port  int
	mu    sync.Mutex
	conns int
	// proxy is the PROXY v2 header of the last connection, if parsing.
	parsePP bool
	ppSrc   string
}

func newEchoServer(t testing.TB, name string) *echoServer {
	return newEchoServerPP(t, name, false)
}

func newEchoServerPP(t testing.TB, name string, pp bool) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{name: name, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, parsePP: pp}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if s.parsePP {
					hdr := make([]byte, 16)
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					rest := make([]byte, binary.BigEndian.Uint16(hdr[14:]))
					if _, err := io.ReadFull(c, rest); err != nil {
						return
					}
					if hdr[13] == 0x11 {
						s.mu.Lock()
						s.ppSrc = net.IP(rest[0:4]).String() + ":" + strconv.Itoa(int(binary.BigEndian.Uint16(rest[8:])))
						s.mu.Unlock()
					}
				}
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
				io.WriteString(c, s.name+"\n")
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return s
}

func (s *echoServer) target() Target { return Target{ID: "127.0.0.1", Port: s.port} }

func tcpTG(arn string, targets ...Target) TargetGroup {
	return TargetGroup{ARN: arn, Protocol: ProtocolTCP, Port: 1, Targets: targets, HealthCheck: fastHC(), DeregistrationDelay: 5 * time.Second}
}

func nlb(l Listener, tgs ...TargetGroup) LoadBalancer {
	if l.ARN == "" {
		l.ARN = "listener/net/lb/1"
	}
	l.Protocol = ProtocolTCP
	return LoadBalancer{ARN: "lb/net/1", Type: TypeNetwork, Listeners: []Listener{l}, TargetGroups: tgs}
}

// roundTrip connects, reads the greeting, sends msg, half-closes and reads
// the echo.
func roundTrip(t testing.TB, addr, msg string) (name, echo string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	name, err = br.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	io.WriteString(c, msg)
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	return strings.TrimSpace(name), string(b)
}

func TestNLBSpreadsAndEchoes(t *testing.T) {
	e := newTestEngine(t, Options{})
	var targets []Target
	for _, n := range []string{"a", "b", "c"} {
		s := newEchoServer(t, n)
		targets = append(targets, s.target())
	}
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tcpTG("tg", targets...)))
	waitFor(t, "healthy", func() bool {
		for _, s := range e.TargetHealth()["tg"] {
			if s.State != StateHealthy {
				return false
			}
		}
		return true
	})
	addr := e.ListenerAddrs("listener/net/lb/1")[0].String()
	names := map[string]int{}
	for i := range 60 {
		msg := strings.Repeat("x", i*1000)
		name, echo := roundTrip(t, addr, msg)
		if echo != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(echo))
		}
		names[name]++
	}
	if len(names) != 3 {
		t.Errorf("connections spread over %v", names)
	}
	for n, c := range names {
		if c < 5 {
			t.Errorf("target %s got %d of 60 connections", n, c)
		}
	}
}

func TestNLBFlowHashStable(t *testing.T) {
	e := newTestEngine(t, Options{})
	tg := newTargetGroup(e, TargetGroup{ARN: "tg", Protocol: ProtocolTCP, Port: 1, Targets: []Target{
		{ID: "10.0.0.1"}, {ID: "10.0.0.2"}, {ID: "10.0.0.3"}, {ID: "10.0.0.4"}}})
	first := map[uint64]string{}
	for f := range uint64(200) {
		t1, _ := tg.pick(&f)
		t1.release()
		first[f] = t1.addr
		t2, _ := tg.pick(&f)
		t2.release()
		if t2 != t1 {
			t.Fatalf("flow %d moved from %s to %s", f, t1.addr, t2.addr)
		}
	}
	// Removing one target moves only its flows.
	tg.update(TargetGroup{ARN: "tg", Protocol: ProtocolTCP, Port: 1, Targets: []Target{{ID: "10.0.0.1"}, {ID: "10.0.0.2"}, {ID: "10.0.0.3"}}})
	for f := range uint64(200) {
		t1, _ := tg.pick(&f)
		t1.release()
		if first[f] != "10.0.0.4:1" && first[f] != t1.addr {
			t.Fatalf("flow %d moved from %s to %s though its target stayed", f, first[f], t1.addr)
		}
	}
}

func TestNLBDraining(t *testing.T) {
	e := newTestEngine(t, Options{})
	a := newEchoServer(t, "a")
	b := newEchoServer(t, "b")
	tg := tcpTG("tg", a.target())
	tg.DeregistrationDelay = 500 * time.Millisecond
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tg))
	addr := e.ListenerAddrs("listener/net/lb/1")[0].String()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if name, _ := br.ReadString('\n'); name != "a\n" {
		t.Fatalf("greeting %q", name)
	}
	tg.Targets = []Target{b.target()}
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tg))
	s, _ := stateOf(e, "tg", "127.0.0.1", a.port)
	if s.State != StateDraining || s.Reason != ReasonDeregistrationInProgress {
		t.Errorf("removed target: %+v", s)
	}
	// The established connection still works; new ones go to b.
	io.WriteString(c, "still here\n")
	if line, err := br.ReadString('\n'); err != nil || line != "still here\n" {
		t.Fatalf("draining connection: %q %v", line, err)
	}
	for range 5 {
		if name, _ := roundTrip(t, addr, "x"); name != "b" {
			t.Fatalf("new connection went to %s", name)
		}
	}
	// After the delay the connection is closed and the target gone.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("connection still open after the deregistration delay")
	}
	waitFor(t, "target gone", func() bool { _, ok := stateOf(e, "tg", "127.0.0.1", a.port); return !ok })
}

func TestNLBProxyProtocolV2(t *testing.T) {
	e := newTestEngine(t, Options{})
	s := newEchoServerPP(t, "pp", true)
	tg := tcpTG("tg", s.target())
	tg.ProxyProtocolV2 = true
	tg.HealthCheck.Enabled = false
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tg))
	addr := e.ListenerAddrs("listener/net/lb/1")[0].String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if name, err := br.ReadString('\n'); err != nil || name != "pp\n" {
		t.Fatalf("greeting %q %v", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ppSrc != c.LocalAddr().String() {
		t.Errorf("PROXY v2 source %q, want the client's %q", s.ppSrc, c.LocalAddr())
	}
}

func TestNLBNoTargets(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tcpTG("tg")))
	c, err := net.Dial("tcp", e.ListenerAddrs("listener/net/lb/1")[0].String())
	if err != nil {
		return // reset before the dial returned: fine
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection without targets not closed")
	}
}
