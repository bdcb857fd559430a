package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostsBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	orig := "127.0.0.1\tlocalhost\n# comment\n::1 localhost ip6-localhost" // no final newline
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := writeHostsBlock(path, "n1", []string{"127.101.0.1 a.elb.localhost"}); err != nil {
		t.Fatal(err)
	}
	want1 := orig + "\n# BEGIN berth load balancers (node n1)\n127.101.0.1 a.elb.localhost\n# END berth load balancers (node n1)\n"
	if got := read(); got != want1 {
		t.Fatalf("after add:\n%q\nwant\n%q", got, want1)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	// Another node's block and text after ours are kept.
	other := "# BEGIN berth load balancers (node n2)\n127.101.0.9 z\n# END berth load balancers (node n2)\n"
	if err := os.WriteFile(path, []byte(read()+other+"10.0.0.1 tail\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := writeHostsBlock(path, "n1", []string{"127.101.0.1 a.elb.localhost", "127.101.0.2 b.elb.localhost"}); err != nil {
		t.Fatal(err)
	}
	want2 := orig + "\n# BEGIN berth load balancers (node n1)\n127.101.0.1 a.elb.localhost\n127.101.0.2 b.elb.localhost\n# END berth load balancers (node n1)\n" + other + "10.0.0.1 tail\n"
	if got := read(); got != want2 {
		t.Fatalf("after update:\n%q\nwant\n%q", got, want2)
	}
	// Unchanged: not rewritten.
	fi1, _ := os.Stat(path)
	if err := writeHostsBlock(path, "n1", []string{"127.101.0.1 a.elb.localhost", "127.101.0.2 b.elb.localhost"}); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(path); !os.SameFile(fi1, fi2) {
		t.Error("unchanged block rewrote the file")
	}
	// Removed: the file is what it was plus the other node's block.
	if err := writeHostsBlock(path, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), orig+"\n"+other+"10.0.0.1 tail\n"; got != want {
		t.Fatalf("after removal:\n%q\nwant\n%q", got, want)
	}
	// No temporary files left.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files", len(ents))
	}
	// A missing file and no block: nothing to do.
	if err := writeHostsBlock(filepath.Join(t.TempDir(), "none"), "n1", nil); err != nil {
		t.Fatal(err)
	}
}
