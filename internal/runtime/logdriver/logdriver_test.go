package logdriver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be started as a log driver by TestRun.
func TestMain(m *testing.M) {
	MaybeRun()
	os.Exit(m.Run())
}

func TestIsInvocation(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"/bin/berth", Arg, "/var/log/x.log"}, true},
		{[]string{"/bin/berth", "agent"}, false},
		{[]string{"/bin/berth", Arg}, false},
		{[]string{"/bin/berth", "x", Arg, "/p"}, false},
		{[]string{"/bin/berth", Arg, "/p", CgroupArg, "/sys/fs/cgroup/cpu/t"}, true},
		{[]string{"/bin/berth", CgroupArg, "/sys/fs/cgroup/cpu/t", Arg, "/p"}, true},
		{[]string{"/bin/berth", CgroupArg, "/sys/fs/cgroup/cpu/t"}, false},
		{[]string{"/bin/berth", Arg, "/p", Arg, "/q"}, false},
		{[]string{"/bin/berth", Arg, "/p", "x", "y"}, false},
		{[]string{"/bin/berth", Arg, "/p", CgroupArg}, false},
	}
	for _, tc := range tests {
		if got := IsInvocation(tc.args); got != tc.want {
			t.Errorf("IsInvocation(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// The shim passes the binary URI's query in map order: Args and
// parseInvocation agree whatever the order.
func TestInvocationArgs(t *testing.T) {
	for _, inv := range []Invocation{
		{Path: "/l/c.log"},
		{Path: "/l/c.log", CgroupDirs: []string{"/sys/fs/cgroup/cpu,cpuacct/berth/t"}},
		{Path: "/l/c.log", CgroupDirs: []string{"/sys/fs/cgroup/cpu/berth/t", "/sys/fs/cgroup/cpuacct/berth/t"}},
	} {
		m := inv.Args()
		var pairs [][]string
		for k, v := range m {
			pairs = append(pairs, []string{k, v})
		}
		for _, order := range [][]int{{0, 1}, {1, 0}} {
			args := []string{"/bin/berth-logdriver"}
			for _, i := range order {
				if i < len(pairs) {
					args = append(args, pairs[i]...)
				}
			}
			got, ok := parseInvocation(args)
			if !ok || got.Path != inv.Path || strings.Join(got.CgroupDirs, "|") != strings.Join(inv.CgroupDirs, "|") {
				t.Errorf("parseInvocation(%q) = %+v, %v; want %+v", args, got, ok, inv)
			}
		}
	}
}

func TestJoinCgroup(t *testing.T) {
	dir := t.TempDir() // stands in for a cgroup directory
	procs := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(procs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := joinCgroup(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(procs); string(b) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("cgroup.procs = %q, want our pid", b)
	}
	for _, bad := range []string{"relative/dir", filepath.Join(dir, "missing")} {
		if err := joinCgroup(bad); err == nil {
			t.Errorf("joinCgroup(%q) succeeded", bad)
		}
	}
}

func TestCopyLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10) + "\n"
	tests := []struct {
		name, in   string
		wantWrites []string
	}{
		{"lines read together, written together", "a\nb\n", []string{"a\nb\n"}},
		{"no final newline", "a\nb", []string{"a\n", "b"}},
		{"empty", "", nil},
		{"long line split", long, []string{long[:maxLine], long[maxLine:]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w recorder
			copyLines(&w, strings.NewReader(tc.in))
			if len(w.writes) != len(tc.wantWrites) {
				t.Fatalf("%d writes, want %d", len(w.writes), len(tc.wantWrites))
			}
			for i := range w.writes {
				if w.writes[i] != tc.wantWrites[i] {
					t.Fatalf("write %d = %q, want %q", i, w.writes[i], tc.wantWrites[i])
				}
			}
		})
	}
	// A failing writer does not stop the draining.
	copyLines(failingWriter{}, strings.NewReader("a\nb\nc\n"))
}

// A burst of many lines, arriving in reads that split lines anywhere, is
// written intact and in order, in whole lines, far fewer writes than lines.
func TestCopyLinesBurst(t *testing.T) {
	var in bytes.Buffer
	const lines = 100000
	for i := range lines {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("y", i%150))
	}
	r, w := io.Pipe()
	go func() {
		data := in.Bytes()
		for i := 0; len(data) > 0; i++ {
			n := min(len(data), 1+(i*7919)%100000) // chunks of 1 byte to ~100 KB
			_, _ = w.Write(data[:n])
			data = data[n:]
		}
		w.Close()
	}()
	var rec recorder
	copyLines(&rec, r)
	got := strings.Join(rec.writes, "")
	if got != in.String() {
		t.Fatalf("output differs from input: %d bytes, want %d", len(got), in.Len())
	}
	for i, wr := range rec.writes {
		if !strings.HasSuffix(wr, "\n") {
			t.Fatalf("write %d does not end a line: %q", i, wr[max(0, len(wr)-20):])
		}
	}
	if len(rec.writes) > lines/10 {
		t.Fatalf("%d writes for %d lines: not batched", len(rec.writes), lines)
	}
}

type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// startDriver runs the test binary as a log driver the way the shim does
// and returns the write ends of its stdout and stderr pipes.
func startDriver(t *testing.T, inv Invocation) (stdout, stderr *os.File, cmd *exec.Cmd) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{Arg, inv.Path}
	if v, ok := inv.Args()[CgroupArg]; ok {
		args = append(args, CgroupArg, v)
	}
	cmd = exec.Command(os.Args[0], args...)
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for _, f := range []*os.File{outR, errR, readyW} {
		f.Close()
	}
	// Ready: the driver closes its end.
	if _, err := io.ReadAll(readyR); err != nil {
		t.Fatal(err)
	}
	readyR.Close()
	return outW, errW, cmd
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		logPath func(dir string) string
		wantLog bool
		cgroup  func(dir string) string // CgroupArg, if set
	}{
		{name: "writes the log", logPath: func(dir string) string { return filepath.Join(dir, "sub", "c.log") }, wantLog: true},
		{name: "unwritable path drains", logPath: func(dir string) string { return filepath.Join(dir, "file", "c.log") }},
		{name: "relative path drains", logPath: func(string) string { return "c.log" }},
		// A cgroup it cannot join does not stop it logging.
		{name: "missing cgroup still logs", logPath: func(dir string) string { return filepath.Join(dir, "c.log") }, wantLog: true,
			cgroup: func(dir string) string { return filepath.Join(dir, "no-such-cgroup") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			inv := Invocation{Path: tc.logPath(dir)}
			if tc.cgroup != nil {
				inv.CgroupDirs = []string{tc.cgroup(dir)}
			}
			path := inv.Path
			stdout, stderr, cmd := startDriver(t, inv)
			var want bytes.Buffer
			line := func(stream string, i int) string { return stream + strings.Repeat("x", i) + "\n" }
			for i := range 400 { // ~160 KB: more than a pipe holds, so the driver must drain
				if _, err := stdout.WriteString(line("o", i)); err != nil {
					t.Fatalf("write stdout: %v", err)
				}
				if _, err := stderr.WriteString(line("e", i)); err != nil {
					t.Fatalf("write stderr: %v", err)
				}
				want.WriteString(line("o", i) + line("e", i))
			}
			stdout.Close()
			stderr.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("driver exited: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("driver did not exit at end of input")
			}
			if !tc.wantLog {
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want.Len() {
				t.Fatalf("log has %d bytes, want %d", len(got), want.Len())
			}
			// Each stream's lines arrive whole and in order.
			n := map[string]int{}
			for _, l := range strings.SplitAfter(strings.TrimSuffix(string(got), "\n"), "\n") {
				stream := l[:1]
				if want := line(stream, n[stream]); strings.TrimSuffix(l, "\n")+"\n" != want {
					t.Fatalf("%s line %d = %q, want %q", stream, n[stream], l, want)
				}
				n[stream]++
			}
			if n["o"] != 400 || n["e"] != 400 {
				t.Fatalf("lines per stream: %v", n)
			}
		})
	}
}
