package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where named network namespaces are bind-mounted, shared with
// iproute2 (`ip netns list` shows berth's sandboxes).
const RunDir = "/var/run/netns"

// Sandbox is a named network namespace that the containers of one task join.
type Sandbox struct {
	// Name is the namespace's name, the file name under RunDir.
	Name string
	path string
}

// Path returns the bind-mounted namespace file that containers join
// (the OCI spec's network namespace path).
func (s *Sandbox) Path() string { return s.path }

// Netlink returns a netlink handle whose socket lives inside the sandbox:
// links and addresses it lists or changes are the sandbox's. The caller
// must Close (Delete) it.
func (s *Sandbox) Netlink() (*netlink.Handle, error) {
	h, err := newHandleAt(s.path)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in sandbox %s: %w", s.Name, err)
	}
	return h, nil
}

// CreateSandbox creates the named network namespace with its loopback
// interface up. It is idempotent: if the namespace already exists it is
// returned (and its loopback brought up again).
func CreateSandbox(name string) (*Sandbox, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(RunDir, name)
	mounted, err := isNamespaceMount(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("create sandbox %s: %w", name, err)
	}
	if !mounted {
		if err := ensureRunDir(); err != nil {
			return nil, fmt.Errorf("create sandbox %s: %w", name, err)
		}
		// The file may be left over from an interrupted create; the bind
		// mount goes on top of it either way.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
		if err != nil {
			return nil, fmt.Errorf("create sandbox %s: %w", name, err)
		}
		f.Close()
		if err := newNamespaceAt(path); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("create sandbox %s: %w", name, err)
		}
	}
	s := &Sandbox{Name: name, path: path}
	if err := s.loopbackUp(); err != nil {
		if !mounted {
			_ = DeleteSandbox(name)
		}
		return nil, fmt.Errorf("create sandbox %s: %w", name, err)
	}
	return s, nil
}

// OpenSandbox returns an existing sandbox, e.g. after an agent restart.
// The error wraps os.ErrNotExist if there is no such namespace.
func OpenSandbox(name string) (*Sandbox, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(RunDir, name)
	mounted, err := isNamespaceMount(path)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %s: %w", name, err)
	}
	if !mounted {
		return nil, fmt.Errorf("open sandbox %s: %s is not a network namespace: %w", name, path, os.ErrNotExist)
	}
	return &Sandbox{Name: name, path: path}, nil
}

// DeleteSandbox unmounts and removes the named namespace. If the sandbox
// still has an ENI (AttachENI without DetachENI), the ENI is detached
// first, so that its VPC does not outlive its last task. The namespace
// itself goes away once no process is left in it. Deleting a sandbox that
// does not exist is not an error.
func DeleteSandbox(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	path := filepath.Join(RunDir, name)
	if vpcID, eniID, ok := sandboxENI(path); ok {
		if err := DetachENI(vpcID, eniID); err != nil {
			return fmt.Errorf("delete sandbox %s: %w", name, err)
		}
	}
	if err := deleteNamespace(path); err != nil {
		return fmt.Errorf("delete sandbox %s: %w", name, err)
	}
	return nil
}

// deleteNamespace unmounts and removes a namespace file under RunDir.
func deleteNamespace(path string) error {
	// MNT_DETACH: a process still holding the file open must not make the
	// delete fail; the namespace is freed when its last user leaves.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("invalid sandbox name %q", name)
	}
	return nil
}

// isNamespaceMount reports whether path is a bind mount of a namespace
// (its file system is nsfs). The error wraps os.ErrNotExist if path is absent.
func isNamespaceMount(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// ensureRunDir creates RunDir and makes it a shared mount point, as
// iproute2 does, so that unmounting a namespace file here also unmounts its
// copies in other mount namespaces and the namespace can be freed.
func ensureRunDir() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: bind it onto itself, then share it.
		if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", RunDir, err)
		}
		err = unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s shared: %w", RunDir, err)
	}
	return nil
}

// newNamespaceAt creates a network namespace and bind-mounts it onto path.
// It switches a dedicated OS thread into the new namespace; if that thread
// cannot be switched back it is left locked so that the Go runtime
// discards it when the goroutine exits.
func newNamespaceAt(path string) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		ns.Close()
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		mountErr := unix.Mount(src, path, "none", unix.MS_BIND, "")
		if mountErr != nil {
			mountErr = fmt.Errorf("bind mount %s: %w", path, mountErr)
		}
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(mountErr, fmt.Errorf("restore network namespace: %w", err))
			return // thread stays locked and dies with the goroutine
		}
		goruntime.UnlockOSThread()
		errc <- mountErr
	}()
	return <-errc
}

func (s *Sandbox) loopbackUp() error {
	h, err := netlinkAt(s.path)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
