package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/throttle"
)

// DevConfig configures `berth dev`.
type DevConfig struct {
	DataDir string
	Listen  string
	Region  string
	Logger  *slog.Logger
	// HostEgress lets tasks with NAT egress reach beyond the host (see
	// AgentConfig.HostEgress).
	HostEgress bool
	// PublicIPPool, LBAddressPool and SpotReclaimInterval: see ServerConfig.
	PublicIPPool, LBAddressPool netip.Prefix
	SpotReclaimInterval         time.Duration
	// Throttle: see ServerConfig (`berth dev` starts with throttle.Dev()).
	Throttle throttle.Config
	// Started is called once the server serves, with it.
	Started func(*Server)
}

// devOvercommit is how many times its CPU and memory the dev host offers.
const devOvercommit = 8

// RunDev runs the control plane and one Fargate capacity agent on this host
// until ctx ends. The agent joins the server over loopback through the same
// agent protocol and token a remote agent uses.
func RunDev(ctx context.Context, cfg DevConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	srv, err := StartServer(ctx, ServerConfig{DataDir: filepath.Join(cfg.DataDir, "server"), Listen: cfg.Listen, Dev: true, AnonymousRegistry: true, Region: cfg.Region, Logger: cfg.Logger,
		PublicIPPool: cfg.PublicIPPool, LBAddressPool: cfg.LBAddressPool, SpotReclaimInterval: cfg.SpotReclaimInterval,
		Throttle: cfg.Throttle})
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := writeEnvFile(filepath.Join(cfg.DataDir, "env"), srv, cfg.Region); err != nil {
		return err
	}
	if cfg.Started != nil {
		cfg.Started(srv)
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	errc := make(chan error, 1)
	go func() {
		errc <- RunAgent(agentCtx, AgentConfig{
			ServerURL: srv.URL, Token: srv.AgentToken, DataDir: filepath.Join(cfg.DataDir, "agent"),
			AvailabilityZones:    []string{cfg.Region + "a", cfg.Region + "b", cfg.Region + "c"},
			StopContainerdOnExit: true, Logger: cfg.Logger, Registerer: srv.Metrics,
			// A developer's host runs many small, mostly idle tasks.
			Overcommit: devOvercommit, HostEgress: cfg.HostEgress,
		})
	}()
	select {
	case <-ctx.Done():
		stopAgent()
		return <-errc
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		return nil
	case err := <-srv.Err():
		stopAgent()
		<-errc
		return fmt.Errorf("server: %w", err)
	}
}

// writeEnvFile leaves a file of shell exports for the dev endpoint and keys.
func writeEnvFile(path string, srv *Server, region string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "export AWS_ENDPOINT_URL=%s\n", srv.URL)
	fmt.Fprintf(&b, "export AWS_ACCESS_KEY_ID=%s\n", srv.RootKey.AccessKeyID)
	fmt.Fprintf(&b, "export AWS_SECRET_ACCESS_KEY=%s\n", srv.RootKey.SecretAccessKey)
	fmt.Fprintf(&b, "export AWS_DEFAULT_REGION=%s\n", region)
	fmt.Fprintf(&b, "export AWS_REGION=%s\n", region)
	// The join token, for `berth agent` on another host (and the tests).
	fmt.Fprintf(&b, "export BERTH_AGENT_TOKEN=%s\n", srv.AgentToken)
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func loadOrCreate(path string, gen func() string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
