package netns

import (
	"errors"
	"net"
	"testing"
)

func TestRunIn(t *testing.T) {
	requireRoot(t)
	sb := newTestSandbox(t)
	host := inode(t, "/proc/self/ns/net")
	var inside uint64
	var ifaces []net.Interface
	err := RunIn(sb.Path(), func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		var err error
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatalf("RunIn: %v", err)
	}
	if inside != inode(t, sb.Path()) || inside == host {
		t.Fatalf("fn ran in namespace %d, want the sandbox's %d (host %d)", inside, inode(t, sb.Path()), host)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" {
		t.Fatalf("interfaces inside = %v, want only lo", ifaces)
	}
	if got := inode(t, "/proc/thread-self/ns/net"); got != host {
		t.Fatalf("caller's thread is in namespace %d afterwards, want the host's %d", got, host)
	}

	// fn's error comes back, wrapped with the namespace.
	errFn := errors.New("from fn")
	if err := RunIn(sb.Path(), func() error { return errFn }); !errors.Is(err, errFn) {
		t.Fatalf("RunIn error = %v, want %v", err, errFn)
	}
	if err := RunIn(RunDir+"/berth-test-absent-"+randHex(t, 8), func() error { return nil }); err == nil {
		t.Fatal("RunIn into a missing namespace succeeded")
	}
}
