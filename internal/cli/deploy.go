package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/spf13/cobra"
)

// deployOptions is what `berth deploy` was asked for.
type deployOptions struct {
	image, name, cluster, healthPath string
	port, cpu, memory, count         int
	countSet                         bool // --count was given: an existing service is scaled to it
	env, command                     []string
	timeout                          time.Duration
}

// newDeployCmd is `berth deploy IMAGE`: from an image to a URL, creating
// what is missing (cluster, task definition, security groups, load balancer,
// target group, listener, service) and rolling the service to the image.
func newDeployCmd(g *globalFlags) *cobra.Command {
	o := deployOptions{}
	cmd := &cobra.Command{
		Use:   "deploy IMAGE [flags] [-- COMMAND ARGS...]",
		Short: "Run an image as a load-balanced service and print its URL",
		Long: `Run an image as a load-balanced Fargate service and print its URL.

Everything is named after --name (default: the image's repository name):
the task definition family, the service, the target group, the load balancer
(one per app, listening on port 80), and the security groups NAME-alb (port 80
from anywhere) and NAME-tasks (--port from the load balancer only). Running it
again creates only what is missing, registers a new task definition revision
only when the container changed, and waits for the rollout to complete.
Progress goes to stderr; the URL is the last line on stdout.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				if dash != 1 {
					return fmt.Errorf("want one IMAGE before --, got %q", args[:dash])
				}
				o.command = args[1:]
			} else if len(args) > 1 {
				return fmt.Errorf("put the container's command after --: berth deploy IMAGE -- %s", strings.Join(args[1:], " "))
			}
			o.image = args[0]
			o.countSet = cmd.Flags().Changed("count")
			if o.name == "" {
				o.name = appName(o.image)
				if o.name == "" {
					return fmt.Errorf("cannot name an app after image %q: give --name", o.image)
				}
			}
			if err := checkAppName(o.name); err != nil {
				return err
			}
			if err := o.check(); err != nil {
				return err
			}
			cfg := g.awsConfig()
			d := &deployer{o: o, ecs: ecs.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg), elb: elbv2.NewFromConfig(cfg), log: os.Stderr}
			url, err := d.run(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Println(url)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "the app's name: [a-z0-9-], at most 32 characters (default: the image's repository name)")
	f.IntVar(&o.port, "port", 8080, "the container port the app listens on")
	f.IntVar(&o.cpu, "cpu", 256, "task CPU units (1024 = 1 vCPU)")
	f.IntVar(&o.memory, "memory", 512, "task memory in MiB")
	f.IntVar(&o.count, "count", 2, "number of tasks (an existing service keeps its count unless given)")
	f.StringVar(&o.cluster, "cluster", "default", "cluster")
	f.StringVar(&o.healthPath, "health-path", "/", "the path the load balancer checks")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable NAME=VALUE (repeatable)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the rollout")
	return cmd
}

// check validates the options that need no API call.
func (o *deployOptions) check() error {
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d: want 1-65535", o.port)
	}
	if o.count < 0 {
		return fmt.Errorf("--count %d: want 0 or more", o.count)
	}
	if !strings.HasPrefix(o.healthPath, "/") {
		return fmt.Errorf("--health-path %q: want a path starting with /", o.healthPath)
	}
	for _, kv := range o.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
	}
	return nil
}

// appNameRE is a name every resource `berth deploy` makes accepts (load
// balancer and target group names are the strictest: 32 characters,
// letters, digits and hyphens, no hyphen at either end).
var appNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// checkAppName reports whether name can name an app's resources.
func checkAppName(name string) error {
	if !appNameRE.MatchString(name) || strings.HasPrefix(name, "internal-") {
		return fmt.Errorf("app name %q: want 1-32 of [a-z0-9-], not starting or ending with '-' (nor starting with internal-)", name)
	}
	return nil
}

// appName is the default app name of an image: its repository's last path
// element, without tag or digest, sanitized to [a-z0-9-] and 32 characters.
func appName(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	base := ref[strings.LastIndexByte(ref, '/')+1:]
	base, _, _ = strings.Cut(base, ":")
	return sanitizeName(base)
}

// sanitizeName lowercases s, turns every run of characters outside
// [a-z0-9] into one '-', trims '-' at the ends and cuts to 32 characters.
func sanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	out := b.String()
	if len(out) > 32 {
		out = strings.TrimRight(out[:32], "-")
	}
	return out
}

// deployer makes what one deploy needs, reporting what it creates on log.
type deployer struct {
	o   deployOptions
	ecs *ecs.Client
	ec2 *ec2.Client
	elb *elbv2.Client
	log io.Writer
	// seenEvents are the service's events before this deploy changed it:
	// the wait prints only the ones after.
	seenEvents map[string]bool
}

func (d *deployer) logf(format string, args ...any) { fmt.Fprintf(d.log, format+"\n", args...) }

// run deploys and returns the app's URL once the rollout completed.
func (d *deployer) run(ctx context.Context) (string, error) {
	o := &d.o
	if err := d.ensureCluster(ctx); err != nil {
		return "", err
	}
	subnets, vpcID, err := d.defaultNetwork(ctx)
	if err != nil {
		return "", err
	}
	// The target group first: it cannot change port, so a deploy that
	// cannot work stops here before changing anything.
	tgArn, err := d.ensureTargetGroup(ctx, vpcID)
	if err != nil {
		return "", err
	}
	albSG, err := d.ensureGroup(ctx, vpcID, o.name+"-alb", "berth deploy "+o.name+": its load balancer")
	if err != nil {
		return "", err
	}
	if err := d.ensureIngress(ctx, albSG, o.name+"-alb", 80, "0.0.0.0/0", ""); err != nil {
		return "", err
	}
	lbArn, dns, err := d.ensureLoadBalancer(ctx, subnets, albSG)
	if err != nil {
		return "", err
	}
	if err := d.ensureListener(ctx, lbArn, tgArn); err != nil {
		return "", err
	}
	tasksSG, err := d.ensureGroup(ctx, vpcID, o.name+"-tasks", "berth deploy "+o.name+": its tasks")
	if err != nil {
		return "", err
	}
	if err := d.ensureIngress(ctx, tasksSG, o.name+"-tasks", int32(o.port), "", albSG); err != nil {
		return "", err
	}
	tdArn, err := d.ensureTaskDefinition(ctx)
	if err != nil {
		return "", err
	}
	depID, err := d.ensureService(ctx, tdArn, tgArn, subnets, tasksSG)
	if err != nil {
		return "", err
	}
	if err := d.waitRollout(ctx, tdArn, depID); err != nil {
		return "", err
	}
	return "http://" + dns + "/", nil
}

// ensureCluster creates the cluster if it does not exist.
func (d *deployer) ensureCluster(ctx context.Context) error {
	out, err := d.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{d.o.cluster}})
	if err != nil {
		return apiError("describe cluster "+d.o.cluster, err)
	}
	if len(out.Clusters) == 1 && aws.ToString(out.Clusters[0].Status) == "ACTIVE" {
		return nil
	}
	if err := ensureCluster(ctx, d.ecs, d.o.cluster); err != nil {
		return apiError("create cluster "+d.o.cluster, err)
	}
	d.logf("created cluster %s", d.o.cluster)
	return nil
}

// taskDefinitionInput is the task definition the options describe.
func (o *deployOptions) taskDefinitionInput() *ecs.RegisterTaskDefinitionInput {
	var env []types.KeyValuePair
	for _, kv := range o.env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, types.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
	}
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(o.name), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String(strconv.Itoa(o.cpu)), Memory: aws.String(strconv.Itoa(o.memory)),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String(o.name), Image: aws.String(o.image), Essential: aws.Bool(true),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(int32(o.port)), Protocol: types.TransportProtocolTcp}},
			Command:      o.command, Environment: env,
		}},
	}
}

// taskDefinitionDiff says how an existing task definition differs from the
// one to register ("" when it is the same: same image, port, CPU, memory,
// environment and command, in one container named after the app).
func taskDefinitionDiff(have *types.TaskDefinition, want *ecs.RegisterTaskDefinitionInput) string {
	switch {
	case have == nil:
		return "new family"
	case have.Status != types.TaskDefinitionStatusActive:
		return "no active revision"
	case have.NetworkMode != want.NetworkMode || !slices.Contains(have.RequiresCompatibilities, types.CompatibilityFargate):
		return "network mode or compatibility"
	case aws.ToString(have.Cpu) != aws.ToString(want.Cpu):
		return "cpu"
	case aws.ToString(have.Memory) != aws.ToString(want.Memory):
		return "memory"
	case len(have.ContainerDefinitions) != 1:
		return "containers"
	}
	h, w := have.ContainerDefinitions[0], want.ContainerDefinitions[0]
	switch {
	case aws.ToString(h.Name) != aws.ToString(w.Name):
		return "container name"
	case aws.ToString(h.Image) != aws.ToString(w.Image):
		return "image"
	case !samePorts(h.PortMappings, w.PortMappings):
		return "port"
	case !slices.Equal(h.Command, w.Command):
		return "command"
	case !maps.Equal(envMap(h.Environment), envMap(w.Environment)):
		return "environment"
	}
	return ""
}

// samePorts compares the container ports of two port mapping lists.
func samePorts(a, b []types.PortMapping) bool {
	ports := func(pms []types.PortMapping) []int32 {
		var out []int32
		for _, pm := range pms {
			out = append(out, aws.ToInt32(pm.ContainerPort))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ports(a), ports(b))
}

// envMap is an environment as a map (its order does not matter).
func envMap(env []types.KeyValuePair) map[string]string {
	out := map[string]string{}
	for _, kv := range env {
		out[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	return out
}

// ensureTaskDefinition returns the latest ACTIVE revision of the app's
// family if it is what the options describe, else registers a new one.
func (d *deployer) ensureTaskDefinition(ctx context.Context) (string, error) {
	want := d.o.taskDefinitionInput()
	var have *types.TaskDefinition
	out, err := d.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(d.o.name)})
	switch {
	case err == nil:
		have = out.TaskDefinition
	case !isAPIError(err, "ClientException"): // ECS's answer for a family without an ACTIVE revision
		return "", apiError("describe task definition "+d.o.name, err)
	}
	why := taskDefinitionDiff(have, want)
	if why == "" {
		return aws.ToString(have.TaskDefinitionArn), nil
	}
	reg, err := d.ecs.RegisterTaskDefinition(ctx, want)
	if err != nil {
		return "", apiError("register task definition "+d.o.name, err)
	}
	arn := aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
	d.logf("registered task definition %s (%s)", taskDefName(arn), why)
	return arn, nil
}

// ensureService creates the app's service, or rolls an existing one to the
// task definition (and to --count when given). It returns the id of the
// deployment to wait for.
func (d *deployer) ensureService(ctx context.Context, tdArn, tgArn string, subnets []string, tasksSG string) (string, error) {
	o := &d.o
	out, err := d.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(o.cluster), Services: []string{o.name}})
	if err != nil {
		return "", apiError("describe service "+o.name, err)
	}
	d.seenEvents = map[string]bool{}
	if len(out.Services) == 1 {
		for _, ev := range out.Services[0].Events {
			d.seenEvents[aws.ToString(ev.Id)] = true
		}
		switch s := &out.Services[0]; aws.ToString(s.Status) {
		case "ACTIVE":
			return d.updateService(ctx, s, tdArn, tgArn)
		case "DRAINING":
			return "", fmt.Errorf("service %s is being deleted (DRAINING): run deploy again once it is gone", o.name)
		}
	}
	created, err := d.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(o.cluster), ServiceName: aws.String(o.name), TaskDefinition: aws.String(tdArn),
		DesiredCount: aws.Int32(int32(o.count)), LaunchType: types.LaunchTypeFargate,
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tgArn), ContainerName: aws.String(o.name),
			ContainerPort: aws.Int32(int32(o.port))}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: subnets, SecurityGroups: []string{tasksSG}, AssignPublicIp: types.AssignPublicIpDisabled}},
		HealthCheckGracePeriodSeconds: aws.Int32(30),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			MinimumHealthyPercent:    aws.Int32(100),
			MaximumPercent:           aws.Int32(200),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	})
	if err != nil {
		return "", apiError("create service "+o.name, err)
	}
	d.logf("created service %s (%s, %d tasks)", o.name, taskDefName(tdArn), o.count)
	return primaryID(created.Service), nil
}

// updateService rolls an existing service to tdArn if it is not there yet.
func (d *deployer) updateService(ctx context.Context, s *types.Service, tdArn, tgArn string) (string, error) {
	o := &d.o
	if !slices.ContainsFunc(s.LoadBalancers, func(lb types.LoadBalancer) bool {
		return aws.ToString(lb.TargetGroupArn) == tgArn && aws.ToString(lb.ContainerName) == o.name &&
			aws.ToInt32(lb.ContainerPort) == int32(o.port)
	}) {
		return "", fmt.Errorf("service %s exists but does not send target group %s to container %s port %d (a service's load balancers cannot change): delete the service or deploy under another --name",
			o.name, o.name, o.name, o.port)
	}
	in := &ecs.UpdateServiceInput{Cluster: aws.String(o.cluster), Service: aws.String(o.name)}
	change := false
	if aws.ToString(s.TaskDefinition) != tdArn {
		in.TaskDefinition, change = aws.String(tdArn), true
	}
	if o.countSet && s.DesiredCount != int32(o.count) {
		in.DesiredCount, change = aws.Int32(int32(o.count)), true
	}
	if !change {
		d.logf("service %s already runs %s", o.name, taskDefName(tdArn))
		return primaryID(s), nil
	}
	out, err := d.ecs.UpdateService(ctx, in)
	if err != nil {
		return "", apiError("update service "+o.name, err)
	}
	d.logf("updated service %s (%s, %d tasks)", o.name, taskDefName(tdArn), out.Service.DesiredCount)
	return primaryID(out.Service), nil
}

// primaryID is the id of the service's PRIMARY deployment ("" if none).
func primaryID(s *types.Service) string {
	if s == nil {
		return ""
	}
	if p := primaryDeployment(s); p != nil {
		return aws.ToString(p.Id)
	}
	return ""
}

// waitRollout waits until deployment depID of tdArn completed and the
// service is steady, printing events as they appear. A failed rollout (the
// circuit breaker) or a rollback is an error.
func (d *deployer) waitRollout(ctx context.Context, tdArn, depID string) error {
	ctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	w := &serviceWatcher{c: d.ecs, cluster: d.o.cluster, name: d.o.name, out: d.log, seen: d.seenEvents}
	_, err := w.wait(ctx, func(s *types.Service) (bool, error) { return rolloutDone(s, tdArn, depID) })
	if err != nil && ctx.Err() == nil {
		w.printStoppedTasks(context.WithoutCancel(ctx), tdArn, 3)
	}
	return err
}

// rolloutDone reports whether the service is steady on deployment depID of
// tdArn, and an error if that deployment failed or was rolled back.
func rolloutDone(s *types.Service, tdArn, depID string) (bool, error) {
	for _, dep := range s.Deployments {
		if (depID == "" || aws.ToString(dep.Id) == depID) && aws.ToString(dep.TaskDefinition) == tdArn &&
			dep.RolloutState == types.DeploymentRolloutStateFailed {
			return false, fmt.Errorf("rollout of %s failed: %s", taskDefName(tdArn), aws.ToString(dep.RolloutStateReason))
		}
	}
	p := primaryDeployment(s)
	if p != nil && aws.ToString(p.TaskDefinition) != tdArn {
		return false, fmt.Errorf("rollout of %s failed: the service went back to %s", taskDefName(tdArn),
			taskDefName(aws.ToString(p.TaskDefinition)))
	}
	return p != nil && serviceSteady(s), nil
}
