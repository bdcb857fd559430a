package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The agent makes the DNS names of the load balancers it runs resolve on
// the host through a block of the hosts file (/etc/hosts) that it alone
// writes, one per node:
//
//	# BEGIN berth load balancers (node NODE)
//	127.101.0.7 my-alb-1234.us-east-1.elb.localhost
//	# END berth load balancers (node NODE)
//
// The rest of the file is kept byte for byte. The block is removed when the
// agent stops and when it starts (what a crash left behind).

func hostsMarkers(node string) (begin, end string) {
	return "# BEGIN berth load balancers (node " + node + ")", "# END berth load balancers (node " + node + ")"
}

// withHostsBlock returns content with the node's block replaced by lines
// (none: the block removed). A new block goes at the end.
func withHostsBlock(content []byte, node string, lines []string) []byte {
	begin, end := hostsMarkers(node)
	var block []byte
	if len(lines) > 0 {
		block = []byte(begin + "\n" + strings.Join(lines, "\n") + "\n" + end + "\n")
	}
	s := string(content)
	if i := lineIndex(s, begin); i >= 0 {
		j := lineIndex(s[i:], end)
		stop := len(s)
		if j >= 0 {
			stop = i + j + len(end)
			if stop < len(s) && s[stop] == '\n' {
				stop++
			}
		}
		return []byte(s[:i] + string(block) + s[stop:])
	}
	if len(block) == 0 {
		return content
	}
	if len(s) > 0 && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + string(block))
}

// lineIndex finds line as a whole line of s.
func lineIndex(s, line string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], line)
		if i < 0 {
			return -1
		}
		i += off
		atStart := i == 0 || s[i-1] == '\n'
		after := i + len(line)
		atEnd := after == len(s) || s[after] == '\n' || s[after] == '\r'
		if atStart && atEnd {
			return i
		}
		off = i + 1
	}
}

// writeHostsBlock makes the node's block of the hosts file at path hold
// lines; it writes nothing when that is already so. The file is replaced
// atomically (a temporary file renamed over it); where it cannot be (a
// bind-mounted /etc/hosts in a container gives EBUSY) it is rewritten in
// place.
func writeHostsBlock(path, node string, lines []string) error {
	old, err := os.ReadFile(path)
	if err != nil && !(errors.Is(err, os.ErrNotExist) && len(lines) > 0) {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("hosts file: %w", err)
	}
	updated := withHostsBlock(old, node, lines)
	if bytes.Equal(updated, old) {
		return nil
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".berth-*")
	if err != nil {
		return writeInPlace(path, updated, mode)
	}
	_, werr := tmp.Write(updated)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("hosts file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
			return writeInPlace(path, updated, mode)
		}
		return fmt.Errorf("hosts file: %w", err)
	}
	return nil
}

func writeInPlace(path string, b []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("hosts file: %w", err)
	}
	return nil
}
