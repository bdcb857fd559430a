package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/gcpolicy"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// ControlPlane is berth's ECS control plane in this process: the real API
// behind the real SigV4 router, the placement controller and the agent
// protocol's server, on an embedded etcd, served over loopback HTTP. Only
// the VPC control plane is replaced, by simNetworks (see there).
type ControlPlane struct {
	URL        string
	AgentToken string
	// ECS is an aws-sdk-go-v2 client of the API, account 000000000000.
	ECS   *awsecs.Client
	Store *store.Store

	stop func()
}

// ControlPlaneConfig configures StartControlPlane.
type ControlPlaneConfig struct {
	DataDir string
	Logger  *slog.Logger
	// NodeTTL is how long a host may miss heartbeats (ecs.Config.NodeTTL):
	// hosts heartbeat every quarter of it.
	NodeTTL time.Duration
	// History is how much history etcd keeps (store.EmbedOptions.History).
	History time.Duration
	// QuotaBytes is etcd's database size limit (store.EmbedOptions.QuotaBytes).
	QuotaBytes int64
}

const (
	accessKey  = "scale"
	account    = "000000000000"
	region     = "us-east-1"
	agentToken = "scale-agent-token"
)

type keys struct{}

func (keys) Lookup(_ context.Context, akid string) (string, string, error) {
	if akid == accessKey {
		return accessKey, account, nil
	}
	return "", "", protocol.ErrUnknownKey
}

// StartControlPlane starts the control plane; Close stops it.
func StartControlPlane(ctx context.Context, cfg ControlPlaneConfig) (*ControlPlane, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e, err := store.StartEmbeddedWith(ctx, cfg.DataDir, cfg.Logger, store.EmbedOptions{History: cfg.History, QuotaBytes: cfg.QuotaBytes})
	if err != nil {
		return nil, err
	}
	st := store.New(e.Client)
	router := protocol.NewRouter(keys{}, cfg.Logger, protocol.WithRegisterer(nil))
	svc := ecs.New(ecs.Config{Store: st, Logger: cfg.Logger, NodeTTL: cfg.NodeTTL, Networks: simNetworks{},
		AgentTokenValid: func(_ context.Context, tok string) bool { return tok == agentToken }})
	router.AddJSONService(svc.JSONService())
	router.Handle(agentapi.PathPrefix, svc.AgentHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 30 * time.Second}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	// The collector's policy of berth server (internal/gcpolicy), here for
	// the whole process: the simulated hosts and the clients too.
	go func() { defer wg.Done(); gcpolicy.Run(runCtx, gcpolicy.Config{Logger: cfg.Logger}) }()
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("scale control plane: serve", "err", err)
		}
	}()
	go func() { defer wg.Done(); _ = svc.Run(runCtx) }()
	url := "http://" + ln.Addr().String()
	client := awsecs.NewFromConfig(aws.Config{Region: region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, accessKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}},
		// A client of a loaded control plane retries a 5xx as an AWS SDK
		// does, only more patiently and without the SDK's retry quota
		// (which one slow moment of a run of 100,000 calls would drain).
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 10
				o.RateLimiter = ratelimit.None
			})
		}})
	return &ControlPlane{URL: url, AgentToken: agentToken, ECS: client, Store: st, stop: func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
		_ = srv.Close() // long polls do not end on Shutdown
		cancel()
		wg.Wait()
		e.Close()
	}}, nil
}

// Close stops the control plane and its etcd.
func (c *ControlPlane) Close() { c.stop() }

// simNetworks stands in for the VPC control plane (internal/vpc): subnet
// "subnet-<zone>" is in availability zone <zone>, and a task's interface is
// made up from its attachment id without touching etcd. The scale run
// measures placement and the agent protocol; the real ENI path (an etcd
// transaction per interface for the address lease, and the firewall
// reconciler's record per interface) is not part of it, and would need a
// VPC with a million free addresses.
type simNetworks struct{}

func (simNetworks) ResolveAwsvpc(_ context.Context, _, _ string, subnets, groups []string) (string, map[string]string, []string, error) {
	azs := make(map[string]string, len(subnets))
	for _, s := range subnets {
		az, ok := strings.CutPrefix(s, "subnet-")
		if !ok {
			return "", nil, nil, fmt.Errorf("simulated networks: subnet %q is not subnet-<zone>", s)
		}
		azs[s] = az
	}
	if len(groups) == 0 {
		groups = []string{"sg-sim"}
	}
	return "vpc-sim", azs, groups, nil
}

func (simNetworks) AttachENI(_ context.Context, _, _, attachmentID, _ string, subnets, _ []string, _ bool) (agentapi.ENI, error) {
	if len(subnets) == 0 {
		return agentapi.ENI{}, errors.New("simulated networks: no subnet in the chosen zone")
	}
	return agentapi.ENI{AttachmentID: attachmentID, ID: "eni-" + attachmentID, SubnetID: subnets[0], PrivateIP: "10.0.0.2"}, nil
}

func (simNetworks) ReleaseENI(context.Context, string, string, string) error { return nil }
func (simNetworks) AddressSets(context.Context, []string, int64, int64) ([]agentapi.AddressSet, error) {
	return nil, nil
}
func (simNetworks) AddressSetRevisions(_ context.Context, names []string, _ int64) ([]int64, error) {
	return make([]int64, len(names)), nil
}
