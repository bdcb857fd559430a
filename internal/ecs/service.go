// Package ecs owns the ECS API: clusters, task definitions and tasks, their
// ARNs and errors, the placement controller that hands tasks to hosts, and the
// server side of the agent protocol through which hosts learn their tasks and
// report what became of them. The API writes only desired state; agents report
// actual state; controllers reconcile the two and are safe to run twice.
package ecs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// TargetPrefix is ECS's X-Amz-Target prefix.
const TargetPrefix = "AmazonEC2ContainerServiceV20141113"

// Config configures the ECS service.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// AgentTokenValid authenticates agents' bearer tokens.
	AgentTokenValid func(ctx context.Context, token string) bool
	// VerifySignature authenticates a host joining a user's cluster by
	// the user's SigV4 signature (nil: no container instances can join).
	VerifySignature func(ctx context.Context, r *http.Request, body []byte) (protocol.Identity, error)
	// RegistryPassword mints registry credentials of an account, for agents
	// pulling that account's images (nil: agents pull anonymously).
	RegistryPassword func(ctx context.Context, account, region string, ttl time.Duration) (string, time.Time, error)
	// AgentToken is the token the control plane presents to agents.
	AgentToken func(ctx context.Context) (string, error)
	// StoppedRetention is how long stopped tasks stay describable (ECS: about an hour).
	StoppedRetention time.Duration
	// NodeTTL is how long a host may miss heartbeats before it is lost.
	NodeTTL time.Duration
	// SpotReclaimInterval, when positive, interrupts one FARGATE_SPOT task
	// that often, simulating Spot reclaims (see spot.go).
	SpotReclaimInterval time.Duration
	// HostLossGrace is how long after that its tasks are stopped as lost
	// (default 5s).
	HostLossGrace time.Duration
	// Networks is the VPC control plane that awsvpc tasks get their network
	// interfaces from (nil: tasks get none; unit tests of the API alone).
	Networks Networks
	// LoadBalancers is the load balancer control plane services register
	// their tasks with (nil: services with loadBalancers are refused).
	LoadBalancers LoadBalancers
	// TargetHealth applies an agent's health report of the targets of a
	// load balancer placed on its node (nil: reports are refused). The
	// agent server has checked that the load balancer is placed there.
	TargetHealth func(ctx context.Context, r agentapi.TargetHealthReport) error
	// TaskRoles checks task roles and mints, rotates and revokes their
	// credentials (nil: a taskRoleArn is recorded but yields none).
	TaskRoles TaskRoles
	// ServiceBackoff is the first delay before a service launches again after
	// a task failed to start; it doubles per failure in a row (default 5s).
	ServiceBackoff time.Duration
	// Meter records the usage of stopped tasks (nil: nothing is metered).
	Meter Meter
	// LaunchLimiter limits the rate of Fargate task launches per account
	// and Region (nil: unlimited; see throttle.go).
	LaunchLimiter LaunchLimiter
	// Registerer receives the task metrics (nil: not exported).
	Registerer prometheus.Registerer
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// Service implements the ECS API.
type Service struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	place   chan struct{} // wakes the placement controller
	placeMu sync.Mutex    // one placement plan at a time (placePending, runEC2)
	svcWake chan struct{} // wakes the service scheduler
	hub     *nodeHub      // wakes agents' long polls

	// Agents' reports in batches (reportbatch.go): the queue, and a
	// channel closed while no worker takes from it.
	reports      chan *reportReq
	reportersMu  sync.Mutex
	reportersOff chan struct{}
	fwNames      fwNames            // set names of stored firewalls (pollfirewalls.go)
	setReads     singleflight.Group // whole reads of address sets, by name (wholeSets)
	tasks        *taskIndex         // ListTasks' view of the stored tasks
	usage        *usageIndex        // placement's view of what each host runs
	hosts        *nodeIndex         // the registered hosts
	fwKeys       *nodeKeys          // each node's firewall keys, for delta polls
	metrics      *metrics
	records      recordCache // records just written, for their next writer (recordcache.go)
}

// New creates the ECS service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StoppedRetention == 0 {
		cfg.StoppedRetention = time.Hour
	}
	if cfg.NodeTTL == 0 {
		cfg.NodeTTL = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HostLossGrace == 0 {
		cfg.HostLossGrace = 5 * time.Second
	}
	if cfg.ServiceBackoff == 0 {
		cfg.ServiceBackoff = 5 * time.Second
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, place: make(chan struct{}, 1), svcWake: make(chan struct{}, 1),
		hub:   newNodeHub(cfg.Store, cfg.Logger, store.Prefix("assign"), store.Prefix("fw"), store.Prefix("lbs")),
		tasks: newTaskIndex(cfg.Store, cfg.Logger), usage: newUsageIndex(cfg.Store, cfg.Logger),
		hosts: newNodeIndex(cfg.Store, cfg.Logger),
		fwKeys: newNodeKeys(cfg.Store, cfg.Logger, store.Prefix("fw"), "firewall key index", func(v []byte) []string {
			names, _ := firewallSets(v)
			return names
		})}
	s.metrics = newMetrics(cfg.Registerer, s)
	s.reports, s.reportersOff = make(chan *reportReq), make(chan struct{})
	close(s.reportersOff)
	return s
}

// JSONService returns the ECS operations for the protocol router.
func (s *Service) JSONService() protocol.JSONService {
	return protocol.JSONService{
		TargetPrefix:      TargetPrefix,
		SigningName:       "ecs",
		InternalErrorCode: codeServer,
		Ops: map[string]protocol.JSONHandler{
			"CreateCluster":                 s.createCluster,
			"DescribeClusters":              s.describeClusters,
			"ListClusters":                  s.listClusters,
			"DeleteCluster":                 s.deleteCluster,
			"RegisterTaskDefinition":        s.registerTaskDefinition,
			"DescribeTaskDefinition":        s.describeTaskDefinition,
			"ListTaskDefinitions":           s.listTaskDefinitions,
			"ListTaskDefinitionFamilies":    s.listTaskDefinitionFamilies,
			"DeregisterTaskDefinition":      s.deregisterTaskDefinition,
			"RunTask":                       s.runTask,
			"StartTask":                     s.startTask,
			"StopTask":                      s.stopTask,
			"DescribeTasks":                 s.describeTasks,
			"ListTasks":                     s.listTasks,
			"TagResource":                   s.tagResource,
			"UntagResource":                 s.untagResource,
			"ListTagsForResource":           s.listTagsForResource,
			"CreateService":                 s.createService,
			"UpdateService":                 s.updateService,
			"DeleteService":                 s.deleteService,
			"DescribeServices":              s.describeServices,
			"ListServices":                  s.listServices,
			"RegisterContainerInstance":     s.registerContainerInstance,
			"DeregisterContainerInstance":   s.deregisterContainerInstance,
			"DescribeContainerInstances":    s.describeContainerInstances,
			"ListContainerInstances":        s.listContainerInstances,
			"UpdateContainerInstancesState": s.updateContainerInstancesState,
			"PutAttributes":                 s.putAttributes,
			"CreateCapacityProvider":        s.createCapacityProvider,
			"DescribeCapacityProviders":     s.describeCapacityProviders,
			"UpdateCapacityProvider":        s.updateCapacityProvider,
			"DeleteCapacityProvider":        s.deleteCapacityProvider,
			"PutClusterCapacityProviders":   s.putClusterCapacityProviders,
			"ListAttributes":                s.listAttributes,
			"DeleteAttributes":              s.deleteAttributes,
		},
	}
}

// AgentHandler serves the agent protocol under agentapi.PathPrefix.
func (s *Service) AgentHandler() http.Handler { return http.HandlerFunc(s.serveAgent) }

// Run runs the controllers (placement, stopped-task purge, service
// scheduler) until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(11)
	go func() { defer wg.Done(); s.hub.run(ctx) }()
	go func() { defer wg.Done(); s.hosts.run(ctx) }()
	go func() { defer wg.Done(); s.runReporters(ctx) }()
	go func() { defer wg.Done(); s.tasks.run(ctx) }()
	go func() { defer wg.Done(); s.usage.run(ctx) }()
	go func() { defer wg.Done(); s.fwKeys.run(ctx) }()
	go func() { defer wg.Done(); s.runSpotReclaim(ctx, s.cfg.SpotReclaimInterval) }()
	go func() { defer wg.Done(); s.runHostLoss(ctx) }()
	go func() { defer wg.Done(); s.runServices(ctx) }()
	go func() { defer wg.Done(); s.runPlacement(ctx) }()
	go func() { defer wg.Done(); s.runPurge(ctx) }()
	wg.Wait()
	return nil
}

// scope is the caller's account and region.
type scope struct{ account, region string }

func scopeOf(ctx context.Context) (scope, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return scope{}, protocol.NewError(codeAccessDenied, 400, "The request is not authenticated.")
	}
	region := id.Region
	if region == "" {
		region = "us-east-1"
	}
	return scope{account: id.AccountID, region: region}, nil
}

// request decodes an operation's input in the caller's scope.
func request[T any](ctx context.Context, body []byte) (scope, *T, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return scope{}, nil, err
	}
	in := new(T)
	if err := protocol.Decode(body, in); err != nil {
		return scope{}, nil, err
	}
	return sc, in, nil
}

func (sc scope) arn(resource string) string {
	return "arn:aws:ecs:" + sc.region + ":" + sc.account + ":" + resource
}

// newID returns 32 hex characters, the shape of ECS task ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// lastSegment returns what follows the last "/" of an ARN or the input itself.
func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
