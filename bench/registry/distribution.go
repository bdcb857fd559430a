package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/devenv"
)

// distributionBin is where Debian's docker-registry package installs
// Distribution 2.8.
const distributionBin = "/usr/bin/docker-registry"

// distribution is a running docker-registry on loopback, without auth.
type distribution struct {
	Addr    string // 127.0.0.1:PORT
	Version string // `docker-registry --version`
}

// ensureDistribution installs Debian's docker-registry when it is missing.
func ensureDistribution(ctx context.Context, h *bench.Harness) error {
	if _, err := os.Stat(distributionBin); err == nil {
		return nil
	}
	h.Log.Info("installing Debian's docker-registry (apt-get install -y docker-registry)")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "docker-registry")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install docker-registry: %w\n%s", err, tail(out, 2048))
	}
	if _, err := os.Stat(distributionBin); err != nil {
		return fmt.Errorf("docker-registry installed but %s is missing: %w", distributionBin, err)
	}
	return nil
}

// startDistribution runs docker-registry with filesystem storage in a data
// dir of the harness, delete enabled and no cache (as berth's registry), on
// a free loopback port. The harness stops it and removes its storage.
func startDistribution(ctx context.Context, h *bench.Harness) (*distribution, error) {
	if err := ensureDistribution(ctx, h); err != nil {
		return nil, err
	}
	dir, err := h.NewDataDir()
	if err != nil {
		return nil, err
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: %s
  secret: %s
`, filepath.Join(dir, "storage"), addr, hex.EncodeToString(secret))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("docker-registry config: %w", err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("docker-registry log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(distributionBin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-registry: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	h.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	d := &distribution{Addr: addr, Version: version()}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				h.Log.Info("docker-registry ready", "addr", addr, "version", d.Version)
				return d, nil
			}
		}
		log, _ := os.ReadFile(logPath)
		select {
		case <-exited:
			return nil, fmt.Errorf("docker-registry exited before it served; log:\n%s", tail(log, 2048))
		case <-ctx.Done():
			return nil, fmt.Errorf("docker-registry not serving: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("docker-registry not serving after 30 s; log:\n" + tail(log, 2048))
		}
	}
}

// version is the first line of `docker-registry --version`.
func version() string {
	out, err := exec.Command(distributionBin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
