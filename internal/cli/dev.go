package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/gcpolicy"
	"github.com/berthdev/berth/internal/throttle"
)

// hostEgressHelp documents --host-egress for dev and agent.
const hostEgressHelp = "let tasks in public subnets (or with a public IP) reach beyond the host: sets net.ipv4.ip_forward=1 and masquerades their traffic (nftables table ip berth-egress)"

func newDevCmd(g *globalFlags) *cobra.Command {
	var listen string
	var hostEgress bool
	var pools poolFlags
	var limits throttle.Config
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this host: control plane, one Fargate capacity agent, embedded etcd and registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			region := g.regionOr()
			defer startGCPolicy(cmd.Context(), g)()
			return daemon.RunDev(cmd.Context(), daemon.DevConfig{
				DataDir: g.dataDir, Listen: listen, Region: region, Logger: g.logger(), HostEgress: hostEgress,
				PublicIPPool: pools.publicIP, LBAddressPool: pools.lb, SpotReclaimInterval: pools.spotReclaim,
				Throttle: limits,
				Started: func(s *daemon.Server) {
					fmt.Fprintf(os.Stdout, "berth dev is ready\n\n  endpoint  %s\n  region    %s\n  account   000000000000\n"+
						"  access key id      %s\n  secret access key  %s\n  (the pair test/test works too, on this loopback endpoint)\n"+
						"  throttling  %s\n  (%s; --throttle to change)\n\n"+
						"  eval \"$(cat %s/env)\"   # sets AWS_ENDPOINT_URL and the keys for the aws CLI\n\n",
						s.URL, region, s.RootKey.AccessKeyID, s.RootKey.SecretAccessKey, limits, devThrottleNote,
						strings.TrimRight(g.dataDir, "/"))
				},
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4566", "address for all APIs")
	cmd.Flags().BoolVar(&hostEgress, "host-egress", true, hostEgressHelp)
	pools.add(cmd)
	addThrottleFlag(cmd, &limits, throttle.Dev(), devThrottleNote)
	return cmd
}

// startGCPolicy runs the control plane's garbage collector policy
// (internal/gcpolicy) for the process until the returned stop is called.
func startGCPolicy(ctx context.Context, g *globalFlags) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); gcpolicy.Run(ctx, gcpolicy.Config{Logger: g.logger()}) }()
	return func() { cancel(); <-done }
}

// devThrottleNote says why dev's limits are what they are.
var devThrottleNote = "50 times AWS's (" + throttle.AWS().String() + "), high enough not to get in the way of development"

// poolFlags are the control plane's flags `dev` and `server` share: the
// address pools of public IPs and load balancers, and the simulated Spot
// reclaim rate.
type poolFlags struct {
	publicIP, lb netip.Prefix
	spotReclaim  time.Duration
}

func (p *poolFlags) add(cmd *cobra.Command) {
	cmd.Flags().Var(prefixValue{&p.publicIP}, "public-ip-pool", "where tasks' public IPs come from (default 127.100.0.0/16)")
	cmd.Flags().Var(prefixValue{&p.lb}, "lb-address-pool", "where load balancers' addresses come from (default 127.101.0.0/16)")
	cmd.Flags().DurationVar(&p.spotReclaim, "spot-reclaim-every", 0, "interrupt one FARGATE_SPOT task this often, simulating Spot reclaims (0: only `berth admin spot-interrupt`)")
}

// prefixValue is a pflag.Value for a netip.Prefix.
type prefixValue struct{ p *netip.Prefix }

func (v prefixValue) String() string {
	if v.p == nil || !v.p.IsValid() {
		return ""
	}
	return v.p.String()
}

func (v prefixValue) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return err
	}
	*v.p = p
	return nil
}

func (v prefixValue) Type() string { return "prefix" }

func newServerCmd(g *globalFlags) *cobra.Command {
	var listen string
	var etcd []string
	var anonRegistry bool
	var quotaGiB int
	var pools poolFlags
	var limits throttle.Config
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (APIs, scheduler, controllers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer startGCPolicy(cmd.Context(), g)()
			switch {
			case quotaGiB < 0:
				return fmt.Errorf("--etcd-quota-gib %d: give a size in GiB, or 0 for the default (8)", quotaGiB)
			case quotaGiB > 0 && len(etcd) > 0:
				return fmt.Errorf("--etcd-quota-gib sizes the embedded etcd: an external cluster (--etcd-endpoints) sets its own --quota-backend-bytes")
			}
			srv, err := daemon.StartServer(cmd.Context(), daemon.ServerConfig{DataDir: g.dataDir, Listen: listen, EtcdEndpoints: etcd,
				EtcdQuotaBytes:    int64(quotaGiB) << 30,
				AnonymousRegistry: anonRegistry, Logger: g.logger(),
				PublicIPPool: pools.publicIP, LBAddressPool: pools.lb, SpotReclaimInterval: pools.spotReclaim,
				Throttle: limits})
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Printf("berth server listening on %s\n  account 000000000000 access key id %s secret access key %s\n  agent join token %s\n  throttling %s\n",
				srv.URL, srv.RootKey.AccessKeyID, srv.RootKey.SecretAccessKey, srv.AgentToken, limits)
			select {
			case <-cmd.Context().Done():
				return nil
			case err := <-srv.Err():
				return err
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4566", "address for all APIs")
	cmd.Flags().StringSliceVar(&etcd, "etcd-endpoints", nil, "external etcd cluster (default: embedded in the data dir)")
	cmd.Flags().IntVar(&quotaGiB, "etcd-quota-gib", 0, "the embedded etcd's database size limit in GiB (0: 8, etcd's largest recommended; a million tasks running at once need more: the scale benchmark gives 16)")
	cmd.Flags().BoolVar(&anonRegistry, "allow-anonymous-registry", false, "let callers without ECR credentials push and pull images as account 000000000000 (a push creates a missing repository); for development only")
	pools.add(cmd)
	addThrottleFlag(cmd, &limits, throttle.AWS(), "AWS's documented quotas")
	return cmd
}

func newAgentCmd(g *globalFlags) *cobra.Command {
	var server, token, containerd, listen, advertise, cluster, instanceType, hostAddress, provider string
	var hostEgress bool
	var bridgeSubnet netip.Prefix
	var azs, attrs []string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a host agent: berth's own capacity (--token), or a container instance of your cluster (--cluster)",
		Long: `Run a host agent.

With --token (or $BERTH_AGENT_TOKEN), the host is berth's own capacity and
runs FARGATE tasks of every account.

With --cluster NAME, the host joins that cluster of your account as a
container instance (EC2 launch type), authenticated by your credentials from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); it runs
only that cluster's EC2 tasks. Several agents may share a machine with
separate --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hostAddr, err := netip.ParseAddr(hostAddress)
			if err != nil {
				return fmt.Errorf("--host-address: %w", err)
			}
			cfg := daemon.AgentConfig{
				ServerURL: server, DataDir: g.dataDir, AvailabilityZones: azs,
				ContainerdAddress: containerd, Listen: listen, Advertise: advertise, Logger: g.logger(), HostEgress: hostEgress,
				Region: g.regionOr(), InstanceType: instanceType, HostAddress: hostAddr, BridgeSubnet: bridgeSubnet,
			}
			if cluster != "" {
				creds, err := daemon.CredentialsFromEnv()
				if err != nil {
					return err
				}
				cfg.Cluster, cfg.Credentials, cfg.CapacityProvider = cluster, creds, provider
				cfg.Attributes = map[string]string{}
				for _, a := range attrs {
					k, v, _ := strings.Cut(a, "=")
					cfg.Attributes[k] = v
				}
			} else {
				if token == "" {
					token = os.Getenv("BERTH_AGENT_TOKEN")
				}
				if token == "" {
					return fmt.Errorf("an agent needs the server's join token (--token or $BERTH_AGENT_TOKEN), or --cluster to join your own cluster")
				}
				cfg.Token = token
			}
			if len(cfg.AvailabilityZones) == 0 {
				cfg.AvailabilityZones = []string{g.regionOr() + "a"}
			}
			return daemon.RunAgent(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://127.0.0.1:4566", "berth server URL")
	cmd.Flags().StringVar(&token, "token", "", "join token printed by berth server (berth's own capacity)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "join this cluster of your account as a container instance")
	cmd.Flags().StringVar(&provider, "capacity-provider", "", "the capacity provider (CreateCapacityProvider) this container instance belongs to")
	cmd.Flags().StringVar(&instanceType, "instance-type", "", "the instance's ecs.instance-type attribute (default berth.host)")
	cmd.Flags().StringSliceVar(&attrs, "attribute", nil, "custom attribute name=value of the container instance (repeatable)")
	cmd.Flags().StringSliceVar(&azs, "availability-zone", nil, "availability zone(s) of this host (a container instance has one)")
	cmd.Flags().StringVar(&containerd, "containerd", "", "use this containerd socket instead of a private one")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "the agent's own endpoint (container logs for the server, /metrics)")
	cmd.Flags().StringVar(&advertise, "advertise", "", "host:port the server reaches --listen at (default: the listen address)")
	cmd.Flags().BoolVar(&hostEgress, "host-egress", true, hostEgressHelp)
	cmd.Flags().StringVar(&hostAddress, "host-address", "127.0.0.1", "the instance's address: bridge-mode tasks' ports are published on it")
	cmd.Flags().Var(prefixValue{&bridgeSubnet}, "bridge-subnet", "the subnet of the agent's bridge network, inside its own namespace (default 172.17.0.0/16)")
	return cmd
}

func (g *globalFlags) regionOr() string {
	if g.region != "" {
		return g.region
	}
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	if r := os.Getenv("AWS_DEFAULT_REGION"); r != "" {
		return r
	}
	return "us-east-1"
}
