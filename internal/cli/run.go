package cli

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/spf13/cobra"
)

var nonFamily = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func newRunCmd(g *globalFlags) *cobra.Command {
	var cpu, memory int
	var wait bool
	var cluster string
	var env, subnets, groups []string
	var public bool
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND...]",
		Short: "Run a container as a Fargate task and print its task id",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.ecs()
			if err := ensureCluster(ctx, c, cluster); err != nil {
				return err
			}
			tdArn, err := ensureTaskDef(ctx, c, args[0], cpu, memory)
			if err != nil {
				return err
			}
			if len(subnets) == 0 {
				if subnets, err = defaultSubnets(ctx, g.ec2()); err != nil {
					return err
				}
			}
			publicIP := types.AssignPublicIpDisabled
			if public {
				publicIP = types.AssignPublicIpEnabled
			}
			override := types.ContainerOverride{Name: aws.String("main")}
			if len(args) > 1 {
				override.Command = args[1:]
			}
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				override.Environment = append(override.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
			}
			out, err := c.RunTask(ctx, &ecs.RunTaskInput{
				Cluster: aws.String(cluster), TaskDefinition: aws.String(tdArn), LaunchType: types.LaunchTypeFargate,
				StartedBy: aws.String("berth-cli"),
				NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
					Subnets: subnets, SecurityGroups: groups, AssignPublicIp: publicIP}},
				Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{override}},
			})
			if err != nil {
				return err
			}
			if len(out.Tasks) == 0 {
				return fmt.Errorf("run failed: %v", out.Failures)
			}
			arn := aws.ToString(out.Tasks[0].TaskArn)
			id := arn[strings.LastIndexByte(arn, '/')+1:]
			fmt.Println(id)
			if !wait {
				return nil
			}
			t, err := waitStopped(ctx, c, cluster, arn)
			if err != nil {
				return err
			}
			for _, ct := range t.Containers {
				if aws.ToString(ct.Name) == "main" {
					if ct.ExitCode == nil {
						fmt.Fprintf(os.Stderr, "task stopped: %s\n", aws.ToString(t.StoppedReason))
						return exitError{code: 125}
					}
					return exitError{code: int(*ct.ExitCode)}
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&cpu, "cpu", 256, "task CPU units (1024 = 1 vCPU)")
	cmd.Flags().IntVar(&memory, "memory", 512, "task memory in MiB")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the task to stop and exit with its exit code")
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "environment variable NAME=VALUE")
	cmd.Flags().StringSliceVar(&subnets, "subnet", nil, "subnet ids (default: the default VPC's subnets, one per zone)")
	cmd.Flags().StringSliceVar(&groups, "security-group", nil, "security group ids (default: the VPC's default group)")
	cmd.Flags().BoolVar(&public, "public-ip", false, "give the task a public IP (in dev a loopback address the host can reach)")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// ensureTaskDef reuses the latest revision of the image's family when it
// matches, and registers a new one otherwise.
func ensureTaskDef(ctx context.Context, c *ecs.Client, image string, cpu, memory int) (string, error) {
	family := "berth-run-" + strings.Trim(nonFamily.ReplaceAllString(image, "-"), "-")
	if len(family) > 255 {
		family = family[:255]
	}
	if d, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)}); err == nil {
		td := d.TaskDefinition
		if aws.ToString(td.Cpu) == strconv.Itoa(cpu) && aws.ToString(td.Memory) == strconv.Itoa(memory) &&
			len(td.ContainerDefinitions) == 1 && aws.ToString(td.ContainerDefinitions[0].Image) == image {
			return aws.ToString(td.TaskDefinitionArn), nil
		}
	}
	out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String(strconv.Itoa(cpu)), Memory: aws.String(strconv.Itoa(memory)),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(image), Essential: aws.Bool(true)}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

func waitStopped(ctx context.Context, c *ecs.Client, cluster, arn string) (*types.Task, error) {
	for {
		out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
		if err != nil {
			return nil, err
		}
		if len(out.Tasks) == 1 && aws.ToString(out.Tasks[0].LastStatus) == "STOPPED" {
			return &out.Tasks[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newPsCmd(g *globalFlags) *cobra.Command {
	var all bool
	var cluster string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List tasks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c := g.ecs()
			var arns []string
			statuses := []types.DesiredStatus{types.DesiredStatusRunning}
			if all {
				statuses = append(statuses, types.DesiredStatusStopped)
			}
			for _, st := range statuses {
				p := ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: st})
				for p.HasMorePages() {
					out, err := p.NextPage(ctx)
					if err != nil {
						return err
					}
					arns = append(arns, out.TaskArns...)
				}
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TASK ID\tTASK DEFINITION\tSTATUS\tCPU\tMEMORY\tZONE\tCREATED\tEXIT")
			for len(arns) > 0 {
				n := min(100, len(arns))
				out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[:n]})
				if err != nil {
					return err
				}
				arns = arns[n:]
				for _, t := range out.Tasks {
					arn := aws.ToString(t.TaskArn)
					td := aws.ToString(t.TaskDefinitionArn)
					exit := ""
					for _, ct := range t.Containers {
						if ct.ExitCode != nil {
							exit += fmt.Sprintf("%s=%d ", aws.ToString(ct.Name), *ct.ExitCode)
						}
					}
					created := ""
					if t.CreatedAt != nil {
						created = time.Since(*t.CreatedAt).Round(time.Second).String() + " ago"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", arn[strings.LastIndexByte(arn, '/')+1:],
						td[strings.LastIndexByte(td, '/')+1:], aws.ToString(t.LastStatus), aws.ToString(t.Cpu),
						aws.ToString(t.Memory), aws.ToString(t.AvailabilityZone), created, strings.TrimSpace(exit))
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include stopped tasks")
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	return cmd
}

func newStopCmd(g *globalFlags) *cobra.Command {
	var cluster, reason string
	cmd := &cobra.Command{
		Use:   "stop TASK...",
		Short: "Stop tasks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.ecs()
			for _, t := range args {
				in := &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(t)}
				if reason != "" {
					in.Reason = aws.String(reason)
				}
				if _, err := c.StopTask(cmd.Context(), in); err != nil {
					return err
				}
				fmt.Println(t)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	cmd.Flags().StringVar(&reason, "reason", "", "stop reason")
	return cmd
}

// defaultSubnets are the default VPC's subnets, one per availability zone,
// as the ECS console offers them.
func defaultSubnets(ctx context.Context, c *ec2.Client) ([]string, error) {
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return nil, fmt.Errorf("find the default subnets: %w", err)
	}
	var ids []string
	for _, s := range out.Subnets {
		ids = append(ids, aws.ToString(s.SubnetId))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no default subnets: name one with --subnet")
	}
	return ids, nil
}
