// Package logdriver owns the log driver process: the process that appends
// a container's stdout and stderr to the container's log file.
//
// containerd's shim starts it with "binary" logging (the URI
// binary:///path/to/exe?__berth-log-driver=/path/to/log): the container's
// stdout and stderr pipes are its file descriptors 3 and 4, and closing
// descriptor 5 tells the shim it is ready. A child of the shim, it lives as
// long as the container, whatever happens to the berth agent.
//
// It replaces containerd's own file logging (cio.LogFile), whose runc shim
// (1.6 and 1.7) closes the shared log file when stdout reaches end of file,
// so that stderr written as a container exits is sometimes lost.
//
// Given CgroupArg, the driver moves itself into the task's cgroup (the
// directories of its cpu and cpuacct hierarchies) before it says it is
// ready: copying a container's output costs CPU in proportion to what the
// container writes, and a task's logging must count against the CPU the
// task asked for, as on Fargate, not take the host's other cores from other
// tasks. Its memory is not charged to the task (a few MiB at most), so that
// a task that runs out of memory never has its log driver OOM-killed.
//
// This package imports little, so that a binary hosting the driver starts
// fast and stays small: call MaybeRun first thing in main.
package logdriver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Arg is the argument that marks a log driver invocation; the shim passes
// it followed by the log file's path.
const Arg = "__berth-log-driver"

// CgroupArg is the optional argument followed by the cgroup directories
// (absolute paths in the cgroup file system, separated by
// os.PathListSeparator) that the driver joins before it is ready. The shim
// passes the binary URI's query as key value pairs in any order.
const CgroupArg = "__berth-log-cgroup"

// Invocation is what the shim asks of a log driver.
type Invocation struct {
	Path       string   // the log file
	CgroupDirs []string // cgroup directories to join (CgroupArg)
}

// Args returns the arguments (as the binary log URI's query) that start a
// driver for inv.
func (inv Invocation) Args() map[string]string {
	m := map[string]string{Arg: inv.Path}
	if len(inv.CgroupDirs) > 0 {
		m[CgroupArg] = strings.Join(inv.CgroupDirs, string(os.PathListSeparator))
	}
	return m
}

// parseInvocation reads os.Args of a log driver: Arg and its path, and
// optionally CgroupArg and its directories, as pairs in any order.
func parseInvocation(args []string) (Invocation, bool) {
	var inv Invocation
	if len(args) != 3 && len(args) != 5 {
		return inv, false
	}
	seen := map[string]bool{}
	for i := 1; i < len(args); i += 2 {
		k, v := args[i], args[i+1]
		if seen[k] {
			return inv, false
		}
		seen[k] = true
		switch k {
		case Arg:
			inv.Path = v
		case CgroupArg:
			inv.CgroupDirs = filepath.SplitList(v)
		default:
			return inv, false
		}
	}
	return inv, seen[Arg]
}

// drainTimeout is how long the driver keeps copying after the shim's
// SIGTERM (sent when the task is deleted, after the container has exited).
const drainTimeout = 3 * time.Second

// IsInvocation reports whether args (os.Args) start a log driver.
func IsInvocation(args []string) bool {
	_, ok := parseInvocation(args)
	return ok
}

// MaybeRun runs the log driver and exits if this process was started as
// one; otherwise it returns at once.
func MaybeRun() {
	if inv, ok := parseInvocation(os.Args); ok {
		os.Exit(Run(inv))
	}
}

// Run copies descriptors 3 (stdout) and 4 (stderr) to the file at
// inv.Path, in whole lines, after joining inv.CgroupDirs and signalling
// readiness on descriptor 5, until both reach end of file. If the file
// cannot be opened the output is drained and dropped, so that the
// container never blocks or gets EPIPE; if a cgroup cannot be joined the
// driver says so on stderr and logs anyway.
func Run(inv Invocation) int {
	path := inv.Path
	stdout := os.NewFile(3, "stdout")
	stderr := os.NewFile(4, "stderr")
	ready := os.NewFile(5, "ready")
	if stdout == nil || stderr == nil || ready == nil {
		fmt.Fprintln(os.Stderr, "berth log driver: descriptors 3, 4 and 5 are not open")
		return 2
	}
	// Stay alive until the output is drained; the shim's SIGTERM is
	// handled below.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	for _, dir := range inv.CgroupDirs {
		if err := joinCgroup(dir); err != nil {
			fmt.Fprintf(os.Stderr, "berth log driver: %v\n", err)
		}
	}
	var dst io.Writer = io.Discard
	f, err := openLog(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth log driver: %v; dropping output\n", err)
	} else {
		dst = f
		defer f.Close()
	}
	if err := ready.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "berth log driver: signal ready: %v\n", err)
	}

	var wg sync.WaitGroup
	for _, src := range []*os.File{stdout, stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyLines(dst, src)
			src.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			return 0
		case sig := <-sigs:
			if sig != syscall.SIGTERM {
				continue // SIGHUP, SIGINT: keep logging
			}
			select {
			case <-done:
				return 0
			case <-time.After(drainTimeout):
				fmt.Fprintln(os.Stderr, "berth log driver: output not drained after SIGTERM, exiting")
				return 1
			}
		}
	}
}

// joinCgroup moves this process into the cgroup at dir (a v1 hierarchy's
// directory) by writing its pid to cgroup.procs.
func joinCgroup(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("cgroup directory %q is not absolute", dir)
	}
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	_, err = f.WriteString(strconv.Itoa(os.Getpid()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("join cgroup %s: %w", dir, err)
	}
	return nil
}

func openLog(path string) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("log path %q is not absolute", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// maxLine is the longest line written in one piece; longer lines are
// split. It is also the most one write carries.
const maxLine = 64 << 10

// copyLines copies src to dst in whole lines, so that lines of stdout and
// stderr interleave whole (each write to an O_APPEND file is atomic). Each
// write carries every complete line read so far, so a burst costs one
// write per read, not one per line; a complete line is written as soon as
// it is read, and only a line's unfinished end waits, for the rest of it
// (or end of file). Write errors are ignored: the copy goes on so the
// container never blocks.
func copyLines(dst io.Writer, src io.Reader) {
	buf := make([]byte, maxLine)
	n := 0 // buf[:n] is read and not yet written: at most one unfinished line
	for {
		m, err := src.Read(buf[n:])
		n += m
		if i := bytes.LastIndexByte(buf[n-m:n], '\n'); i >= 0 {
			end := n - m + i + 1
			_, _ = dst.Write(buf[:end])
			n = copy(buf, buf[end:n])
		} else if n == len(buf) {
			_, _ = dst.Write(buf) // a line longer than maxLine
			n = 0
		}
		if err != nil {
			if n > 0 {
				_, _ = dst.Write(buf[:n]) // the last line has no newline
			}
			return // io.EOF, or the pipe is gone
		}
	}
}

// Beside returns the log driver program to use with the berth binary bin:
// berth-logdriver in the same directory when it is there (it starts in a few
// milliseconds), else bin itself, which can act as a log driver too.
func Beside(bin string) string {
	small := filepath.Join(filepath.Dir(bin), "berth-logdriver")
	if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return small
	}
	return bin
}
