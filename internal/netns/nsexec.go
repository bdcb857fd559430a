package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Running code inside a network namespace. vishvananda/netlink's
// NewHandleAt switches the calling thread and, if switching back fails,
// unlocks it anyway, handing a thread in the wrong namespace back to the Go
// scheduler; so this package switches threads itself, the way
// newNamespaceAt does.

// RunIn runs fn on a locked OS thread switched into the network namespace
// at path (a Sandbox's Path, a VPC namespace under RunDir, or
// /proc/<pid>/ns/net) and switches the thread back afterwards. Sockets fn
// creates belong to that namespace for life and may be used from any
// goroutine once RunIn returns. fn must not start goroutines that expect to
// run in the namespace and must not block for long: it holds an OS thread.
func RunIn(path string, fn func() error) error {
	if err := inNamespace(path, fn); err != nil {
		return fmt.Errorf("in network namespace %s: %w", path, err)
	}
	return nil
}

// inNamespace runs fn on a locked OS thread switched into the network
// namespace at path (a bind mount under RunDir, or /proc/<pid>/ns/net).
// fn must not start goroutines that expect to run in the namespace and
// must not block for long: it holds an OS thread.
func inNamespace(path string, fn func() error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return inNamespaceFd(fd, fn)
}

// inNamespaceFd is inNamespace for an open namespace file descriptor.
func inNamespaceFd(fd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			// setns either switches or leaves the thread as it was.
			goruntime.UnlockOSThread()
			errc <- os.NewSyscallError("setns", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore network namespace: %w", os.NewSyscallError("setns", err)))
			return
		}
		goruntime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// netlinkAt returns a netlink handle whose NETLINK_ROUTE socket lives in
// the namespace at path: every link, address and route request made through
// it acts there. The caller must Close it.
func netlinkAt(path string) (*netlink.Handle, error) {
	return newHandleAt(path, unix.NETLINK_ROUTE)
}

// newHandleAt is netlinkAt for the given netlink families (none: every
// family the library supports).
func newHandleAt(path string, families ...int) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNamespace(path, func() error {
		var err error
		h, err = netlink.NewHandle(families...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// setSysctl sets a /proc/sys key in the calling thread's network namespace.
func setSysctl(key, value string) error {
	file := filepath.Join("/proc/sys", key)
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) == value {
		return nil
	}
	return os.WriteFile(file, []byte(value), 0o644)
}

// getSysctl reads a /proc/sys key in the calling thread's network namespace.
func getSysctl(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", key))
	return strings.TrimSpace(string(b)), err
}
