package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berthdev/berth/internal/devenv"
)

// berthServer is one `berth server` process — the control plane with its
// APIs and registry, no agent — with its own data dir and loopback port. Its
// registry demands ECR credentials unless started anonymous.
type berthServer struct {
	DataDir string
	Addr    string // 127.0.0.1:port
	URL     string // http://Addr
	LogPath string // the process's stdout and stderr
	Keys    aws.Credentials

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// keysLine is how `berth server` prints the root account's first key.
var keysLine = regexp.MustCompile(`access key id (\S+) secret access key (\S+)`)

// startServer starts `berth server` (with --allow-anonymous-registry if
// anonymous) and waits until it serves and has printed its root keys.
// Cleanup stops it and removes its data dir.
func startServer(t *testing.T, ctx context.Context, bin string, anonymous bool) *berthServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-conformance-")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	s := &berthServer{DataDir: dir, Addr: addr, URL: "http://" + addr, LogPath: filepath.Join(dir, "server.log")}
	t.Cleanup(func() {
		if _, err := os.Stat(s.LogPath); err == nil && t.Failed() {
			t.Logf("berth server log (tail):\n%s", tail(s.LogPath, 4096))
		}
		s.stop()
	})
	if err := s.start(bin, anonymous); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(ctx, serverReadyWithin); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the process, its output to LogPath.
func (s *berthServer) start(bin string, anonymous bool) error {
	logf, err := os.Create(s.LogPath)
	if err != nil {
		return fmt.Errorf("berth server log: %w", err)
	}
	defer logf.Close()
	args := []string{"server", "--data-dir", filepath.Join(s.DataDir, "data"), "--listen", s.Addr}
	if anonymous {
		args = append(args, "--allow-anonymous-registry")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start berth server: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return nil
}

// waitReady polls until /_berth/health answers 200 and the keys are in the
// log, the process exits, ctx ends, or within passes.
func (s *berthServer) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(s.LogPath); err == nil {
			if m := keysLine.FindSubmatch(b); m != nil {
				s.Keys = aws.Credentials{AccessKeyID: string(m[1]), SecretAccessKey: string(m[2])}
			}
		}
		if s.Keys.AccessKeyID != "" {
			if resp, err := client.Get(s.URL + "/_berth/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("berth server exited before it was ready; log:\n%s", tail(s.LogPath, 4096))
		case <-ctx.Done():
			return fmt.Errorf("berth server not ready after %s: %w; log:\n%s", within, ctx.Err(), tail(s.LogPath, 4096))
		case <-tick.C:
		}
	}
}

// stop ends the process group it started (SIGTERM, then SIGKILL after 10 s)
// and removes the data dir. It may be called more than once.
func (s *berthServer) stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil {
			pgid := s.cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-s.exited
			}
		}
		_ = os.RemoveAll(s.DataDir)
	})
}
