package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/logdriver"
)

// AgentConfig configures a host agent.
type AgentConfig struct {
	ServerURL string
	Token     string
	DataDir   string
	// AvailabilityZones this host serves.
	AvailabilityZones []string
	// ContainerdAddress of an existing containerd; empty starts a private one.
	ContainerdAddress string
	// StopContainerdOnExit stops the private containerd when the agent exits
	// (containers keep running in their shims and are adopted next time).
	StopContainerdOnExit bool
	Logger               *slog.Logger
	// Registerer, if set, receives the agent's metrics (agent.Metrics);
	// otherwise the agent serves them itself at /metrics on Listen.
	Registerer prometheus.Registerer
	// Listen is the agent's own HTTP endpoint (container logs for the
	// control plane, metrics); default a free port on 127.0.0.1.
	Listen string
	// Advertise is the host:port the control plane reaches Listen at
	// (default: Listen's address).
	Advertise string
	// Ready, if set, is called once the runtime is up.
	Ready func()
	// Overcommit multiplies the CPU and memory the host offers (default 1).
	// Task limits stay hard (CFS quota, memory limit): overcommitting only
	// lets more mostly idle tasks share the host, as `berth dev` does.
	Overcommit int
	// Cluster, when set, joins this host to that cluster of the account
	// whose Credentials these are, as a container instance that takes only
	// that cluster's EC2 tasks; Region is the cluster's region. Without
	// it, the host is berth's own capacity (FARGATE) and Token is the
	// server's join token.
	Cluster      string
	Region       string
	Credentials  Credentials
	InstanceType string
	// CapacityProvider is the user's capacity provider the instance joins.
	CapacityProvider string
	// Attributes are custom attributes the container instance registers
	// with.
	Attributes map[string]string
	// HostEgress forwards and masquerades traffic from tasks with NAT
	// egress (public subnets, public IPs) out of the host, as a NAT gateway
	// would: it turns on net.ipv4.ip_forward and adds the nftables table
	// ip berth-egress, and leaves both in place on exit (other agents on
	// the host may rely on them).
	HostEgress bool
	// HostAddress is the instance's address: bridge-mode tasks' ports are
	// published on it (default 127.0.0.1). BridgeSubnet is the agent's
	// bridge network (default 172.17.0.0/16, inside its own namespace).
	// Bridge-mode tasks reach beyond the host only with HostEgress.
	HostAddress  netip.Addr
	BridgeSubnet netip.Prefix
}

// RunAgent runs a host agent until ctx ends.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("agent data dir: %w", err)
	}
	nodeID, err := loadOrCreate(filepath.Join(cfg.DataDir, "node-id"), func() string {
		if cfg.Cluster != "" {
			return "i-" + randomHex(9)[:17] // a container instance has an EC2-shaped id
		}
		return "host-" + randomHex(8)
	})
	if err != nil {
		return err
	}
	logDriver, err := logDriverPath()
	if err != nil {
		return err
	}
	rt, err := runtime.Start(ctx, runtime.Config{
		LogDriver: logDriver,
		DataDir:   filepath.Join(cfg.DataDir, "containerd"), Address: cfg.ContainerdAddress,
		Logger: cfg.Logger.With("component", "runtime"),
	})
	if err != nil {
		return err
	}
	defer func() {
		if cfg.StopContainerdOnExit && cfg.ContainerdAddress == "" {
			_ = rt.Shutdown(context.Background())
		}
		_ = rt.Close()
	}()
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("agent listener: %w", err)
	}
	// A standalone agent serves its own metrics; in dev they join the server's.
	reg := cfg.Registerer
	mux := http.NewServeMux()
	// The control plane presents the join token to berth's own hosts and
	// a token of the host's own to a user's host.
	callbackToken := cfg.Token
	if cfg.Cluster != "" {
		callbackToken = randomHex(24)
	}
	mux.Handle(agent.LogsPath, agent.LogHandler(cfg.DataDir, agent.TokenMatcher(callbackToken)))
	if reg == nil {
		own := prometheus.NewRegistry()
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = own
		mux.Handle("/metrics", promhttp.HandlerFor(own, promhttp.HandlerOpts{}))
	}
	agentSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = agentSrv.Serve(ln) }()
	defer agentSrv.Close()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	if cfg.HostEgress {
		if err := netns.EnableHostEgress(); err != nil {
			cfg.Logger.Warn("tasks will not reach beyond the host", "err", err)
		}
	}
	metrics := agent.NewMetrics(reg)
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	node := agentapi.RegisterRequest{
		NodeID: nodeID, AvailabilityZones: cfg.AvailabilityZones, Pool: agentapi.PoolFargate,
		CPU: goruntime.NumCPU() * 1024 * max(cfg.Overcommit, 1), MemoryMiB: hostMemoryMiB() * 9 / 10 * max(cfg.Overcommit, 1),
		Address: "http://" + advertise,
	}
	// Heartbeats ride on the long polls while they return often
	// (agentapi.Beats).
	server := &agentapi.Client{BaseURL: cfg.ServerURL, Token: cfg.Token, HTTP: &http.Client{}, Beats: &agentapi.Beats{}}
	if cfg.Cluster != "" {
		az := cfg.Region + "a"
		if len(cfg.AvailabilityZones) > 0 {
			az = cfg.AvailabilityZones[0]
		}
		joined, err := joinCluster(ctx, cfg, server, agentapi.JoinRequest{
			Cluster: cfg.Cluster, NodeID: nodeID, AvailabilityZone: az, InstanceType: cfg.InstanceType,
			Architecture: archName(), CPU: node.CPU, MemoryMiB: node.MemoryMiB, Attributes: cfg.Attributes, AgentVersion: "berth",
			CapacityProvider: cfg.CapacityProvider, HostAddress: hostAddress(cfg.HostAddress),
		})
		if err != nil {
			return err
		}
		cfg.Logger.Info("joined the cluster as a container instance", "instance", joined.ContainerInstanceArn, "node", nodeID)
		server.Token = joined.Token
		node.Pool, node.AvailabilityZones, node.CallbackToken = agentapi.PoolEC2, []string{az}, callbackToken
	}
	sandboxes := agent.NewHostSandboxesWith(filepath.Join(cfg.DataDir, "sandboxes"), cfg.Logger,
		agent.HostNetworkConfig{HostAddress: cfg.HostAddress, BridgeSubnet: cfg.BridgeSubnet})
	defer sandboxes.Close() // forwarders; the next agent forwards again
	a := agent.New(agent.Config{
		Node:      node,
		DataDir:   cfg.DataDir,
		Server:    server,
		APIURL:    cfg.ServerURL,
		Runtime:   rt,
		Sandboxes: sandboxes,
		Logger:    cfg.Logger.With("component", "agent"),
		Metrics:   metrics,
	})
	return a.Run(ctx)
}

// hostMemoryMiB reads MemTotal from /proc/meminfo.
func hostMemoryMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 2048
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(fields[1])
			return kb / 1024
		}
	}
	return 2048
}

// logDriverPath is the program containerd's shims start as each container's
// log driver (see logdriver.Beside).
func logDriverPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the berth binary (the containers' log driver): %w", err)
	}
	return logdriver.Beside(self), nil
}

// archName is the host's CPU architecture as ECS names it.
func archName() string {
	if goruntime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// hostAddress is the address bridge tasks' ports are published on (the
// sandboxes' default when unset).
func hostAddress(a netip.Addr) string {
	if !a.IsValid() {
		return "127.0.0.1"
	}
	return a.String()
}
