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
	"sync"
	"syscall"
	"time"
)

// Arg is the argument that marks a log driver invocation; the shim passes
// it followed by the log file's path.
const Arg = "__berth-log-driver"

// drainTimeout is how long the driver keeps copying after the shim's
// SIGTERM (sent when the task is deleted, after the container has exited).
const drainTimeout = 3 * time.Second

// IsInvocation reports whether args (os.Args) start a log driver.
func IsInvocation(args []string) bool {
	return len(args) == 3 && args[1] == Arg
}

// MaybeRun runs the log driver and exits if this process was started as
// one; otherwise it returns at once.
func MaybeRun() {
	if IsInvocation(os.Args) {
		os.Exit(Run(os.Args[2]))
	}
}

// Run copies descriptors 3 (stdout) and 4 (stderr) to the file at path,
// in whole lines, after signalling readiness on descriptor 5, until both
// reach end of file. If the file cannot be opened the output is drained
// and dropped, so that the container never blocks or gets EPIPE.
func Run(path string) int {
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
