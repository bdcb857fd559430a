package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Sockets opened inside a namespace from the agent's process. A socket
// belongs to the namespace it was created in, for its whole life, whatever
// thread later uses it: so only socket creation (and bind) runs on a thread
// switched into the namespace, and the rest happens in the host's runtime
// as usual.

// DialInVPC connects to address (an IP literal and port, e.g.
// "10.0.1.4:8080") from inside the VPC's namespace, as the VPC's router
// would: the source address is the one the kernel picks for the route (the
// gateway address of the target's subnet). network is "tcp", "tcp4",
// "udp" or "udp4". The error wraps os.ErrNotExist if the VPC has no
// namespace on this host.
func DialInVPC(ctx context.Context, vpcID, network, address string) (net.Conn, error) {
	if err := validID("VPC", vpcID); err != nil {
		return nil, err
	}
	c, err := dialIn(ctx, vpcPath(vpcID), network, netip.AddrPort{}, address)
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", address, vpcID, err)
	}
	return c, nil
}

// ListenInVPC opens a stream listener (network "tcp" or "tcp4") inside the
// VPC's namespace, e.g. on MetadataAddr:80 or on a gateway address. It is
// closed when the VPC's namespace is deleted (its last ENI detached).
func ListenInVPC(vpcID, network, address string) (net.Listener, error) {
	l, err := listenInVPC(vpcID, func(path string) (io.Closer, error) {
		return listenIn(path, network, address)
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", address, vpcID, err)
	}
	return &vpcListener{Listener: l.(net.Listener), vpcID: vpcID}, nil
}

// ListenPacketInVPC is ListenInVPC for datagrams ("udp", "udp4").
func ListenPacketInVPC(vpcID, network, address string) (net.PacketConn, error) {
	l, err := listenInVPC(vpcID, func(path string) (io.Closer, error) {
		return listenPacketIn(path, network, address)
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", address, vpcID, err)
	}
	return &vpcPacketConn{PacketConn: l.(net.PacketConn), vpcID: vpcID}, nil
}

// listenInVPC opens a listener under the VPC lock, so that it cannot race
// with the namespace's deletion, and registers it to be closed with it.
func listenInVPC(vpcID string, open func(path string) (io.Closer, error)) (io.Closer, error) {
	if err := validID("VPC", vpcID); err != nil {
		return nil, err
	}
	lk, err := lockVPC(vpcID)
	if err != nil {
		return nil, err
	}
	defer lk.release(false)
	path := vpcPath(vpcID)
	if ok, err := isNamespaceMount(path); err != nil || !ok {
		return nil, fmt.Errorf("VPC %s has no namespace on this host: %w", vpcID, os.ErrNotExist)
	}
	l, err := open(path)
	if err != nil {
		return nil, err
	}
	vpcListenersMu.Lock()
	if vpcListeners[vpcID] == nil {
		vpcListeners[vpcID] = map[io.Closer]bool{}
	}
	vpcListeners[vpcID][l] = true
	vpcListenersMu.Unlock()
	return l, nil
}

var (
	vpcListenersMu sync.Mutex
	vpcListeners   = map[string]map[io.Closer]bool{} // by VPC id
)

func forgetVPCListener(vpcID string, l io.Closer) {
	vpcListenersMu.Lock()
	delete(vpcListeners[vpcID], l)
	if len(vpcListeners[vpcID]) == 0 {
		delete(vpcListeners, vpcID)
	}
	vpcListenersMu.Unlock()
}

func closeVPCListeners(vpcID string) {
	vpcListenersMu.Lock()
	ls := vpcListeners[vpcID]
	delete(vpcListeners, vpcID)
	vpcListenersMu.Unlock()
	for l := range ls {
		_ = l.Close()
	}
}

type vpcListener struct {
	net.Listener
	vpcID string
}

func (l *vpcListener) Close() error {
	forgetVPCListener(l.vpcID, l.Listener)
	return l.Listener.Close()
}

type vpcPacketConn struct {
	net.PacketConn
	vpcID string
}

func (c *vpcPacketConn) Close() error {
	forgetVPCListener(c.vpcID, c.PacketConn)
	return c.PacketConn.Close()
}

// listenIn opens a stream listener inside the namespace at path.
func listenIn(path, network, address string) (net.Listener, error) {
	var l net.Listener
	err := inNamespace(path, func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// listenPacketIn opens a datagram socket inside the namespace at path.
func listenPacketIn(path, network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := inNamespace(path, func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// dialIn connects from inside the namespace at path, from local if it is
// valid (port 0: any).
func dialIn(ctx context.Context, path, network string, local netip.AddrPort, address string) (net.Conn, error) {
	remote, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("address must be an IP and a port: %w", err)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		c, err := dialTCPIn(ctx, path, local, remote)
		if err != nil {
			// As net.Dialer reports it, so callers can tell a failed
			// connect (nothing sent) from a failure on a connection.
			oe := &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(remote), Err: err}
			if local.IsValid() {
				oe.Source = net.TCPAddrFromAddrPort(local)
			}
			return nil, oe
		}
		return c, nil
	case "udp", "udp4", "udp6":
		// A UDP connect does not block: all of it may run in the namespace.
		var c net.Conn
		err := inNamespace(path, func() error {
			d := net.Dialer{}
			if local.IsValid() {
				d.LocalAddr = net.UDPAddrFromAddrPort(local)
			}
			var err error
			c, err = d.DialContext(ctx, network, remote.String())
			return err
		})
		return c, err
	default:
		return nil, fmt.Errorf("unsupported network %q", network)
	}
}

// dialTCPIn connects a TCP socket created in the namespace at path.
//
// Hand-rolled because net.Dialer has no hook between socket() and
// connect(): dialing with the whole net.Dialer on a switched thread would
// pin an OS thread for as long as the connect takes (seconds, when a
// firewall drops the SYN), which a burst of dials to a firewalled task
// would turn into thousands of threads. Here the thread is switched only
// for socket() and bind(); the connect is waited for by the runtime's
// poller like any other.
func dialTCPIn(ctx context.Context, path string, local, remote netip.AddrPort) (*net.TCPConn, error) {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	family := unix.AF_INET
	if remote.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd := -1
	err := inNamespace(path, func() error {
		s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		fd = s
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	if local.IsValid() {
		// Pick the port at connect time, by the whole 4-tuple, rather than
		// at bind, which would allow one connection per port per address.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, sockaddr(local)); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	switch err := unix.Connect(fd, sockaddr(remote)); err {
	case nil, unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
	default:
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "tcp "+remote.String()) // owns fd, registers it with the poller
	defer f.Close()                                      // net.FileConn below holds a dup
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var connErr error
	werr := rc.Write(func(s uintptr) bool {
		v, err := unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := unix.Errno(v); e {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		case 0, unix.EISCONN:
			// Writable with no error may be a spurious wakeup; connected
			// sockets have a peer.
			_, err := unix.Getpeername(int(s))
			return err == nil
		default:
			connErr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if werr != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return nil, context.DeadlineExceeded
		}
		return nil, werr
	}
	if connErr != nil {
		return nil, connErr
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("not a TCP connection: %T", c)
	}
	_ = tc.SetNoDelay(true)
	return tc, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
