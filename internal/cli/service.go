package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// pollInterval is how often the verbs that wait ask again.
const pollInterval = 500 * time.Millisecond

// newServiceCmd is `berth service`: list and scale ECS services.
func newServiceCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "List and scale services"}
	cmd.AddCommand(newServiceLsCmd(g), newServiceScaleCmd(g))
	return cmd
}

// newServiceLsCmd is `berth service ls`: a table of a cluster's services.
func newServiceLsCmd(g *globalFlags) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the services of a cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			services, err := listServices(cmd.Context(), g.ecs(), cluster)
			if err != nil {
				return err
			}
			return writeServiceTable(os.Stdout, services)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	return cmd
}

// newServiceScaleCmd is `berth service scale NAME N`: set a service's desired
// count and, with --wait, wait until it is steady at that count.
func newServiceScaleCmd(g *globalFlags) *cobra.Command {
	var cluster string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "scale NAME COUNT",
		Short: "Set the desired count of a service",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			n, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("count %q: want a whole number, 0 or more", args[1])
			}
			c := g.ecs()
			out, err := c.UpdateService(cmd.Context(), &ecs.UpdateServiceInput{Cluster: aws.String(cluster),
				Service: aws.String(name), DesiredCount: aws.Int32(int32(n))})
			if err != nil {
				return apiError("scale service "+name, err)
			}
			fmt.Fprintf(os.Stderr, "service %s: desired count %d\n", name, n)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			w := &serviceWatcher{c: c, cluster: cluster, name: name, out: os.Stderr, seen: map[string]bool{}}
			for _, ev := range out.Service.Events { // print only the events after the update
				w.seen[aws.ToString(ev.Id)] = true
			}
			_, err = w.wait(ctx, func(s *types.Service) (bool, error) { return serviceSteady(s), nil })
			return err
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the service is steady at the new count")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// listServices describes every ACTIVE service of a cluster, sorted by name.
func listServices(ctx context.Context, c *ecs.Client, cluster string) ([]types.Service, error) {
	var arns []string
	p := ecs.NewListServicesPaginator(c, &ecs.ListServicesInput{Cluster: aws.String(cluster)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("list services of cluster "+cluster, err)
		}
		arns = append(arns, out.ServiceArns...)
	}
	var services []types.Service
	for chunk := range slices.Chunk(arns, 10) { // DescribeServices takes at most 10
		out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: chunk})
		if err != nil {
			return nil, apiError("describe services", err)
		}
		services = append(services, out.Services...)
	}
	slices.SortFunc(services, func(a, b types.Service) int {
		return strings.Compare(aws.ToString(a.ServiceName), aws.ToString(b.ServiceName))
	})
	return services, nil
}

// writeServiceTable prints services as `berth service ls` shows them.
func writeServiceTable(out io.Writer, services []types.Service) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tDESIRED\tRUNNING\tPENDING\tTASK DEFINITION\tROLLOUT")
	for _, s := range services {
		rollout := ""
		if p := primaryDeployment(&s); p != nil {
			rollout = string(p.RolloutState)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", aws.ToString(s.ServiceName), aws.ToString(s.Status),
			s.DesiredCount, s.RunningCount, s.PendingCount, taskDefName(aws.ToString(s.TaskDefinition)), rollout)
	}
	return w.Flush()
}

// taskDefName is "family:revision" of a task definition ARN.
func taskDefName(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// primaryDeployment is the service's PRIMARY deployment, nil if it has none.
func primaryDeployment(s *types.Service) *types.Deployment {
	for i := range s.Deployments {
		if aws.ToString(s.Deployments[i].Status) == "PRIMARY" {
			return &s.Deployments[i]
		}
	}
	return nil
}

// serviceSteady reports whether a service runs its desired count with one
// deployment whose rollout completed.
func serviceSteady(s *types.Service) bool {
	p := primaryDeployment(s)
	return p != nil && len(s.Deployments) == 1 && p.RolloutState == types.DeploymentRolloutStateCompleted &&
		s.RunningCount == s.DesiredCount && s.PendingCount == 0
}

// serviceWatcher polls one service, printing its new events and a line
// whenever its counts change.
type serviceWatcher struct {
	c             *ecs.Client
	cluster, name string
	out           io.Writer
	seen          map[string]bool // event ids already printed (or older than the watch); nil: the first poll's
	last          string          // the last progress line printed
}

// describe returns the service, or an error if it does not exist.
func (w *serviceWatcher) describe(ctx context.Context) (*types.Service, error) {
	out, err := w.c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(w.cluster), Services: []string{w.name}})
	if err != nil {
		return nil, apiError("describe service "+w.name, err)
	}
	if len(out.Services) == 0 {
		return nil, fmt.Errorf("service %s not found in cluster %s", w.name, w.cluster)
	}
	return &out.Services[0], nil
}

// wait polls until done says the service is where it should be (or fails),
// or ctx ends; on a timeout it prints the service's recent events.
func (w *serviceWatcher) wait(ctx context.Context, done func(*types.Service) (bool, error)) (*types.Service, error) {
	for {
		s, err := w.describe(ctx)
		if err != nil {
			return nil, err
		}
		w.progress(s)
		ok, err := done(s)
		if err != nil {
			w.printRecentEvents(s, 10)
			return s, err
		}
		if ok {
			return s, nil
		}
		select {
		case <-ctx.Done():
			w.printRecentEvents(s, 10)
			return s, fmt.Errorf("service %s is not steady (%d of %d running): %w", w.name, s.RunningCount, s.DesiredCount, context.Cause(ctx))
		case <-time.After(pollInterval):
		}
	}
}

// progress prints the events that appeared since the last poll (oldest
// first) and the service's counts when they changed. Without a seen set to
// start from, the first call only remembers the events already there.
func (w *serviceWatcher) progress(s *types.Service) {
	first := w.seen == nil
	if first {
		w.seen = map[string]bool{}
	}
	for i := len(s.Events) - 1; i >= 0; i-- { // ECS lists the newest first
		ev := s.Events[i]
		id := aws.ToString(ev.Id)
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		if !first {
			fmt.Fprintf(w.out, "  %s\n", aws.ToString(ev.Message))
		}
	}
	line := fmt.Sprintf("service %s: %d running, %d pending, %d desired", w.name, s.RunningCount, s.PendingCount, s.DesiredCount)
	if p := primaryDeployment(s); p != nil {
		line += fmt.Sprintf("; %s %s", taskDefName(aws.ToString(p.TaskDefinition)), p.RolloutState)
	}
	if n := len(s.Deployments); n > 1 {
		line += fmt.Sprintf(" (%d deployments)", n)
	}
	if line != w.last {
		fmt.Fprintln(w.out, line)
		w.last = line
	}
}

// printRecentEvents prints the service's n newest events, oldest first.
func (w *serviceWatcher) printRecentEvents(s *types.Service, n int) {
	evs := s.Events[:min(n, len(s.Events))]
	if len(evs) == 0 {
		return
	}
	fmt.Fprintf(w.out, "recent events of service %s:\n", w.name)
	for i := len(evs) - 1; i >= 0; i-- {
		at := ""
		if evs[i].CreatedAt != nil {
			at = evs[i].CreatedAt.Local().Format(time.TimeOnly) + " "
		}
		fmt.Fprintf(w.out, "  %s%s\n", at, aws.ToString(evs[i].Message))
	}
}

// printStoppedTasks prints why the newest n stopped tasks of a task
// definition stopped (what a failed rollout's events do not say).
func (w *serviceWatcher) printStoppedTasks(ctx context.Context, tdArn string, n int) {
	list, err := w.c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(w.cluster), ServiceName: aws.String(w.name),
		DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(list.TaskArns) == 0 {
		return
	}
	out, err := w.c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(w.cluster), Tasks: list.TaskArns[:min(100, len(list.TaskArns))]})
	if err != nil {
		return
	}
	tasks := slices.DeleteFunc(out.Tasks, func(t types.Task) bool { return aws.ToString(t.TaskDefinitionArn) != tdArn })
	slices.SortFunc(tasks, func(a, b types.Task) int { return aws.ToTime(b.StoppedAt).Compare(aws.ToTime(a.StoppedAt)) })
	for _, t := range tasks[:min(n, len(tasks))] {
		arn := aws.ToString(t.TaskArn)
		line := fmt.Sprintf("stopped task %s: %s", arn[strings.LastIndexByte(arn, '/')+1:], aws.ToString(t.StoppedReason))
		for _, c := range t.Containers {
			if c.ExitCode != nil {
				line += fmt.Sprintf("; %s exited %d", aws.ToString(c.Name), *c.ExitCode)
			}
			if r := aws.ToString(c.Reason); r != "" {
				line += fmt.Sprintf("; %s: %s", aws.ToString(c.Name), r)
			}
		}
		fmt.Fprintln(w.out, line)
	}
}

// apiError wraps an AWS error with what was being done, keeping only the
// error's code and message (not the SDK's request details).
func apiError(doing string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &wrappedAPIError{msg: fmt.Sprintf("%s: %s: %s", doing, ae.ErrorCode(), ae.ErrorMessage()), err: err}
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// wrappedAPIError is an AWS error with a short message; it unwraps to the
// SDK's error.
type wrappedAPIError struct {
	msg string
	err error
}

func (e *wrappedAPIError) Error() string { return e.msg }
func (e *wrappedAPIError) Unwrap() error { return e.err }

// isAPIError reports whether err is an AWS error with one of the codes.
func isAPIError(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}
