package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
)

func newLogsCmd(g *globalFlags) *cobra.Command {
	var follow bool
	var cluster, container string
	cmd := &cobra.Command{
		Use:   "logs [-f] TASK",
		Short: "Print a task's container logs (stdout and stderr)",
		Long: "Print a task's container logs. Containers using the awslogs log driver are read from\n" +
			"CloudWatch Logs (GetLogEvents on their stream); the others from their host.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg := g.awsConfig()
			srcs, err := logSources(ctx, cfg, cluster, args[0], container)
			if err != nil {
				return err
			}
			for {
				stopped := true
				if anyAWSLogs(srcs) { // read what a stopped task wrote last
					if stopped, err = taskStopped(ctx, cfg, cluster, args[0]); err != nil {
						return err
					}
				}
				for _, src := range srcs {
					data, taskStopped, err := src.read(ctx, cfg, cluster, args[0])
					if err != nil {
						return err
					}
					if src.awslogs == nil {
						stopped = stopped && taskStopped
					}
					writePrefixed(os.Stdout, data, src.name, len(srcs) > 1)
				}
				if !follow || stopped {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the task stops")
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	cmd.Flags().StringVar(&container, "container", "", "only this container (default: all)")
	return cmd
}

// logSource is where one container's output is read from.
type logSource struct {
	name    string
	offset  int64          // the host's log file (GetContainerLogs)
	awslogs *awslogsStream // or its CloudWatch Logs stream
}

func (s *logSource) read(ctx context.Context, cfg aws.Config, cluster, task string) (string, bool, error) {
	if s.awslogs != nil {
		data, err := s.awslogs.read(ctx, cfg)
		return data, true, err
	}
	var out becs.ContainerLogsOutput
	in := becs.ContainerLogsInput{Cluster: cluster, Task: task, Container: s.name, Offset: s.offset}
	if err := callBerth(ctx, cfg, "GetContainerLogs", in, &out); err != nil {
		return "", false, err
	}
	s.offset = out.NextOffset
	return out.Data, out.TaskStopped, nil
}

func anyAWSLogs(srcs []*logSource) bool {
	for _, s := range srcs {
		if s.awslogs != nil {
			return true
		}
	}
	return false
}

// logSources finds the task's containers (or the one named) and how each logs.
func logSources(ctx context.Context, cfg aws.Config, cluster, task, only string) ([]*logSource, error) {
	client := ecs.NewFromConfig(cfg)
	out, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task}})
	if err != nil {
		return nil, err
	}
	if len(out.Tasks) == 0 {
		return nil, fmt.Errorf("task %s not found in cluster %s", task, cluster)
	}
	t := out.Tasks[0]
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: t.TaskDefinitionArn})
	if err != nil {
		return nil, err
	}
	taskID := aws.ToString(t.TaskArn)
	taskID = taskID[strings.LastIndex(taskID, "/")+1:]
	var srcs []*logSource
	for _, c := range t.Containers {
		name := aws.ToString(c.Name)
		if only != "" && name != only {
			continue
		}
		src := &logSource{name: name}
		for _, cd := range td.TaskDefinition.ContainerDefinitions {
			if lc := cd.LogConfiguration; aws.ToString(cd.Name) == name && lc != nil && lc.LogDriver == "awslogs" {
				src.awslogs = &awslogsStream{group: lc.Options["awslogs-group"], region: lc.Options["awslogs-region"],
					stream: agentapi.AWSLogsStream(lc.Options["awslogs-stream-prefix"], name, taskID)}
			}
		}
		srcs = append(srcs, src)
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("task %s has no container %s", task, only)
	}
	return srcs, nil
}

func taskStopped(ctx context.Context, cfg aws.Config, cluster, task string) (bool, error) {
	out, err := ecs.NewFromConfig(cfg).DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task}})
	if err != nil {
		return false, err
	}
	return len(out.Tasks) == 0 || aws.ToString(out.Tasks[0].LastStatus) == "STOPPED", nil
}

// awslogsStream reads a CloudWatch Logs stream from its head with
// GetLogEvents, page after page.
type awslogsStream struct {
	group, region, stream string
	token                 string
}

func (s *awslogsStream) read(ctx context.Context, cfg aws.Config) (string, error) {
	client := cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		if s.region != "" {
			o.Region = s.region
		}
	})
	var b strings.Builder
	for {
		in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(s.group), LogStreamName: aws.String(s.stream),
			StartFromHead: aws.Bool(true)}
		if s.token != "" {
			in.NextToken = aws.String(s.token)
		}
		out, err := client.GetLogEvents(ctx, in)
		var nf *cwltypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return b.String(), nil // the stream appears when the container starts
		}
		if err != nil {
			return b.String(), fmt.Errorf("read log stream %s of group %s: %w", s.stream, s.group, err)
		}
		for _, e := range out.Events {
			b.WriteString(aws.ToString(e.Message))
			b.WriteByte('\n')
		}
		next := aws.ToString(out.NextForwardToken)
		if next == s.token || len(out.Events) == 0 {
			s.token = next
			return b.String(), nil
		}
		s.token = next
	}
}

func writePrefixed(w io.Writer, data, name string, prefix bool) {
	if !prefix || data == "" {
		_, _ = io.WriteString(w, data)
		return
	}
	for _, line := range strings.SplitAfter(data, "\n") {
		if line != "" {
			fmt.Fprintf(w, "%s | %s", name, line)
		}
	}
}

// callBerth makes a SigV4-signed awsJson call to one of berth's own operations.
func callBerth(ctx context.Context, cfg aws.Config, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, aws.ToString(cfg.BaseEndpoint)+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", becs.BerthTargetPrefix+"."+op)
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ecs", cfg.Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%s: %s", e.Type, e.Message)
	}
	return json.Unmarshal(b, out)
}
