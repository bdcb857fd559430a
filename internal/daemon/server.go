// Package daemon wires berth's roles into running processes: the control
// plane (`berth server`), the host agent (`berth agent`), and both joined over
// loopback (`berth dev`), exactly as the binary and the tests start them.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/accounts"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/billing"
	"github.com/berthdev/berth/internal/ecr"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/elb"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/logs"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/throttle"
	"github.com/berthdev/berth/internal/vpc"
)

// ServerConfig configures the control plane.
type ServerConfig struct {
	DataDir string
	Listen  string // host:port; default 127.0.0.1:4566
	// EtcdEndpoints of an external cluster; empty embeds one in DataDir/etcd.
	EtcdEndpoints []string
	// EtcdQuotaBytes is the embedded etcd's database size limit (0: 8 GiB,
	// etcd's largest recommended). A million tasks running at once, with
	// their history, need more (the scale benchmark gives it 16 GiB).
	EtcdQuotaBytes int64
	// Dev accepts the test/test key pair (only on a loopback listener).
	Dev bool
	// AnonymousRegistry lets callers without ECR credentials push and pull
	// images as account 000000000000 (berth dev's explicit opt-in); such a
	// push to a repository that does not exist creates it. Everyone else
	// presents `aws ecr get-login-password` as HTTP Basic AWS:<password>.
	AnonymousRegistry bool
	// Region is the region anonymous registry callers act in (default
	// us-east-1).
	Region string
	// PublicIPPool is where tasks' public IPs come from (default
	// vpc.DefaultPublicIPPool); LBAddressPool is where load balancers'
	// addresses come from (default elb.DefaultPublicPool). Two berth
	// instances on one host need disjoint pools.
	PublicIPPool netip.Prefix
	// SpotReclaimInterval, when positive, interrupts one FARGATE_SPOT task
	// that often (ecs.Config.SpotReclaimInterval).
	SpotReclaimInterval time.Duration
	LBAddressPool       netip.Prefix
	// Throttle is the API and task launch rate limits per account and
	// Region (throttle.AWS() is AWS's; `berth server` starts with it).
	// Nil or empty limits nothing.
	Throttle throttle.Config
	Logger   *slog.Logger
}

// Server is a running control plane.
type Server struct {
	// URL is the endpoint clients use, e.g. http://127.0.0.1:4566.
	URL  string
	Addr string
	// RootKey is the first access key of account 000000000000, made on the
	// first start and kept in etcd.
	RootKey    accounts.Key
	AgentToken string
	Store      *store.Store
	// Metrics is the registry served at /metrics; in dev the agent's
	// metrics join it.
	Metrics *prometheus.Registry

	log    *slog.Logger
	http   *http.Server
	etcd   *store.Embedded
	client *clientv3.Client
	ecr    *ecr.Service
	logs   *logs.Store
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
}

// StartServer starts the control plane and returns once it serves.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4566"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &Server{log: cfg.Logger, errc: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if len(cfg.EtcdEndpoints) == 0 {
		e, err := store.StartEmbeddedWith(ctx, filepath.Join(cfg.DataDir, "etcd"), cfg.Logger, store.EmbedOptions{QuotaBytes: cfg.EtcdQuotaBytes})
		if err != nil {
			return nil, err
		}
		s.etcd, s.client = e, e.Client
	} else {
		c, err := store.Connect(ctx, cfg.EtcdEndpoints)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	s.Store = store.New(s.client)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.Addr = ln.Addr().String()
	s.URL = "http://" + s.Addr
	loopback := false
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		loopback = tcp.IP.IsLoopback()
	}

	accts := accounts.New(s.Store)
	accts.AllowTestKey = cfg.Dev && loopback
	if s.RootKey, err = accts.EnsureRootKey(ctx); err != nil {
		ln.Close()
		return nil, fmt.Errorf("root account: %w", err)
	}
	if s.AgentToken, err = accts.EnsureAgentToken(ctx); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent token: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Metrics = reg
	routerOpts := []protocol.Option{protocol.WithRegisterer(reg)}
	var launches ecs.LaunchLimiter // a nil *throttle.Policy must not become a non-nil interface
	if len(cfg.Throttle) > 0 {
		policy := throttle.NewPolicy(cfg.Throttle, nil)
		routerOpts = append(routerOpts, protocol.WithCallLimiter(policy))
		launches = policy
		cfg.Logger.Info("throttling API calls and task launches per account and Region", "limits", cfg.Throttle.String())
	}
	router := protocol.NewRouter(accts, cfg.Logger, routerOpts...)
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if s.ecr, err = ecr.New(runCtx, ecr.Config{Store: s.Store, RootDir: filepath.Join(cfg.DataDir, "registry"),
		Logger: cfg.Logger.With("service", "ecr"), Anonymous: cfg.AnonymousRegistry,
		AnonymousAccount: accounts.DevAccountID, AnonymousRegion: cfg.Region}); err != nil {
		ln.Close()
		return nil, err
	}
	vpcSvc, err := vpc.New(vpc.Config{Store: s.Store, PublicIPPool: cfg.PublicIPPool, Logger: cfg.Logger.With("service", "ec2")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	instances := &instanceResolver{} // ECS's container instances, bound below
	elbSvc, err := elb.New(elb.Config{Store: s.Store, Networks: vpcSvc, Logger: cfg.Logger.With("service", "elasticloadbalancing"),
		Nodes: nodeLister(s.Store), ENIs: vpcSvc, Firewall: vpcSvc, PublicPool: cmp.Or(cfg.LBAddressPool, elb.DefaultPublicPool),
		Instances: instances})
	if err != nil {
		ln.Close()
		return nil, err
	}
	iamSvc, err := iam.New(iam.Config{Store: s.Store, Logger: cfg.Logger.With("service", "iam"), Sessions: accts})
	if err != nil {
		ln.Close()
		return nil, err
	}
	billSvc := billing.New(billing.Config{Store: s.Store, Logger: cfg.Logger.With("service", "ce"), Registerer: reg})
	ecsSvc := ecs.New(ecs.Config{Store: s.Store, Logger: cfg.Logger.With("service", "ecs"), AgentTokenValid: accts.AgentTokenValid,
		AgentToken: accts.EnsureAgentToken, RegistryPassword: s.ecr.RegistryPassword, Networks: vpcSvc,
		LoadBalancers: lbAdapter{elbSvc}, TargetHealth: elbSvc.ReportTargetHealth, TaskRoles: taskRoles{iamSvc, accts},
		Meter: meterAdapter{billSvc}, Registerer: reg, SpotReclaimInterval: cfg.SpotReclaimInterval, LaunchLimiter: launches,
		VerifySignature: func(ctx context.Context, r *http.Request, body []byte) (protocol.Identity, error) {
			return router.VerifySignature(ctx, r, body, "ecs")
		}})
	instances.ecs = ecsSvc
	if s.logs, err = logs.OpenStore(filepath.Join(cfg.DataDir, "logs", "logs.db")); err != nil {
		ln.Close()
		return nil, err
	}
	logsSvc := logs.New(logs.Config{Store: s.logs, Logger: cfg.Logger.With("service", "logs"), Placement: logPlacement{ecsSvc}})
	router.AddJSONService(logsSvc.JSONService())
	// Hosts ship logs with the join token (berth's own) or their node token.
	router.Handle(agentapi.PathLogs, logsSvc.AgentHandler(ecsSvc.AgentCaller))
	router.AddQueryService(vpcSvc.QueryService())
	router.AddQueryService(elbSvc.QueryService())
	router.AddQueryService(iamSvc.QueryService())
	router.AddQueryService(iamSvc.STSQueryService())
	router.AddJSONService(ecsSvc.JSONService())
	router.AddJSONService(ecsSvc.BerthService())
	router.Handle(agentapi.PathPrefix, ecsSvc.AgentHandler())
	router.Handle("/_berth/admin/", adminHandler(accts))
	router.AddJSONService(s.ecr.JSONService())
	router.AddJSONService(billSvc.JSONService())
	router.Handle("/v2/", s.ecr.Handler())
	router.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if os.Getenv("BERTH_PPROF") == "1" {
		// Go's profiler, unauthenticated: only for profiling a benchmark
		// or a test machine, never set where the API is reachable by others.
		router.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		router.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	}
	router.Handle("/_berth/health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))

	s.http = &http.Server{Handler: router, ReadHeaderTimeout: 30 * time.Second}
	s.wg.Add(5)
	go func() {
		defer s.wg.Done()
		if err := logsSvc.Run(runCtx); err != nil && runCtx.Err() == nil {
			cfg.Logger.Error("log retention controller stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
	go func() {
		defer s.wg.Done()
		_ = ecsSvc.Run(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		if err := elbSvc.Run(runCtx); err != nil && runCtx.Err() == nil {
			cfg.Logger.Error("load balancer reconciler stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := vpcSvc.Run(runCtx); err != nil && runCtx.Err() == nil {
			cfg.Logger.Error("firewall reconciler stopped", "err", err)
		}
	}()
	ok = true
	return s, nil
}

// Err reports a fatal serving error.
func (s *Server) Err() <-chan error { return s.errc }

// Close stops serving and closes the store.
func (s *Server) Close() {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.ecr != nil {
		_ = s.ecr.Close()
	}
	if s.logs != nil {
		_ = s.logs.Close()
	}
	if s.etcd != nil {
		s.etcd.Close()
	} else if s.client != nil {
		s.client.Close()
	}
}
