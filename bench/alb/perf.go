package alb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Profiling the ALB (-alb.perf): berth has no pprof endpoint, so the
// benchmark samples the `berth dev` process (which runs the ALB's proxy)
// with Linux perf while wrk loads the ALB, and keeps perf's top symbols.

// devPID finds the `berth dev` process whose command line names dataDir.
func devPID(bin, dataDir string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if len(args) > 2 && args[0] == bin && args[1] == "dev" && strings.Contains(string(b), dataDir) {
			return strconv.Atoi(filepath.Base(filepath.Dir(p)))
		}
	}
	return 0, fmt.Errorf("no `%s dev` process with data dir %s", bin, dataDir)
}

// profile is what perf saw of berth dev under load.
type profile struct {
	reqPerSec float64  // wrk's rate during the profile
	kernel    float64  // % of samples in the kernel
	top       []string // "inclusive% self% symbol", by inclusive time
}

// perfProfile samples pid's stacks for d into file and summarizes them:
// the kernel's share and the (at most maxProfileLines) symbols with at
// least 5 % of the samples, callees included (wrappers every goroutine or
// syscall has left out).
func perfProfile(ctx context.Context, pid int, d time.Duration, file string) (*profile, error) {
	secs := strconv.Itoa(max(1, int(d.Seconds())))
	rec := exec.CommandContext(ctx, "perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", secs)
	if out, err := rec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("perf record: %w\n%s", err, out)
	}
	p := &profile{}
	for _, f := range perfReport(ctx, file, "--sort", "dso") {
		if len(f) >= 2 && f[len(f)-1] == "[kernel.kallsyms]" {
			p.kernel, _ = strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		}
	}
	for _, f := range perfReport(ctx, file, "--children", "--sort", "symbol", "--percent-limit", "5") {
		// "48.73%  0.44%  [.]  net/http.(*conn).serve  -  -"
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		sym := f[3]
		if skipSymbol(sym) {
			continue
		}
		p.top = append(p.top, fmt.Sprintf("%7s %7s  %s", f[0], f[1], sym))
		if len(p.top) == maxProfileLines {
			break
		}
	}
	if len(p.top) == 0 {
		return nil, fmt.Errorf("perf report: no symbols in %s", file)
	}
	return p, nil
}

// maxProfileLines bounds the symbols a profile keeps.
const maxProfileLines = 30

// perfReport runs perf report --stdio on file and returns the fields of its
// lines that are not comments.
func perfReport(ctx context.Context, file string, args ...string) [][]string {
	out, err := exec.CommandContext(ctx, "perf", append([]string{"report", "-i", file, "--stdio", "-g", "none"}, args...)...).Output()
	if err != nil {
		return nil
	}
	var lines [][]string
	for _, l := range strings.Split(string(out), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			lines = append(lines, strings.Fields(t))
		}
	}
	return lines
}

// skipSymbol is true for frames under which everything runs: goroutine and
// thread starts, the syscall entry.
func skipSymbol(sym string) bool {
	for _, s := range []string{"runtime.goexit", "runtime.mstart", "gowrap", "entry_SYSCALL", "do_syscall_64", "syscall.Syscall",
		"linux.Syscall6", "runtime.systemstack"} {
		if strings.Contains(sym, s) {
			return true
		}
	}
	return false
}
