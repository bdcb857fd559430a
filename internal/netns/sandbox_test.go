package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and network namespaces; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "berth-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := DeleteSandbox(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestSandboxLifecycle(t *testing.T) {
	requireRoot(t)
	name := uniqueName(t)

	s, err := CreateSandbox(name)
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if s.Name != name || s.Path() != RunDir+"/"+name {
		t.Fatalf("sandbox = %+v, path %q", s, s.Path())
	}
	if inode(t, s.Path()) == inode(t, "/proc/self/ns/net") {
		t.Fatal("sandbox is the host network namespace")
	}

	// Loopback is up inside, and it is the only link.
	h, err := s.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("links in sandbox = %v, want only lo", links)
	}
	if links[0].Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("lo is not up: flags %v", links[0].Attrs().Flags)
	}

	// Create again: same namespace.
	again, err := CreateSandbox(name)
	if err != nil {
		t.Fatalf("CreateSandbox again: %v", err)
	}
	if inode(t, again.Path()) != inode(t, s.Path()) {
		t.Fatal("second CreateSandbox made a new namespace")
	}

	opened, err := OpenSandbox(name)
	if err != nil {
		t.Fatalf("OpenSandbox: %v", err)
	}
	if inode(t, opened.Path()) != inode(t, s.Path()) {
		t.Fatal("OpenSandbox returned another namespace")
	}

	for i := range 2 { // the second delete must be a no-op
		if err := DeleteSandbox(name); err != nil {
			t.Fatalf("DeleteSandbox #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace file still there after delete: %v", err)
	}
	if _, err := OpenSandbox(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenSandbox after delete: %v, want os.ErrNotExist", err)
	}
}

func TestCreateSandboxOverLeftoverFile(t *testing.T) {
	requireRoot(t)
	name := uniqueName(t)
	if err := ensureRunDir(); err != nil {
		t.Fatal(err)
	}
	// A crash between creating the file and mounting leaves a plain file.
	if err := os.WriteFile(RunDir+"/"+name, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSandbox(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenSandbox of a plain file: %v, want os.ErrNotExist", err)
	}
	s, err := CreateSandbox(name)
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if ok, err := isNamespaceMount(s.Path()); err != nil || !ok {
		t.Fatalf("not a namespace mount: %v %v", ok, err)
	}
}

func TestInvalidNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "../etc"} {
		t.Run(name, func(t *testing.T) {
			if _, err := CreateSandbox(name); err == nil {
				t.Error("CreateSandbox accepted it")
			}
			if _, err := OpenSandbox(name); err == nil {
				t.Error("OpenSandbox accepted it")
			}
			if err := DeleteSandbox(name); err == nil {
				t.Error("DeleteSandbox accepted it")
			}
		})
	}
}

func TestSandboxesAreSeparate(t *testing.T) {
	requireRoot(t)
	a, err := CreateSandbox(uniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := CreateSandbox(uniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	if inode(t, a.Path()) == inode(t, b.Path()) {
		t.Fatal("two sandboxes share a namespace")
	}
}
