package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/spf13/cobra"

	becs "github.com/berthdev/berth/internal/ecs"
)

func newLogsCmd(g *globalFlags) *cobra.Command {
	var follow bool
	var cluster, container string
	cmd := &cobra.Command{
		Use:   "logs [-f] TASK",
		Short: "Print a task's container logs (stdout and stderr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg := g.awsConfig()
			names := []string{container}
			if container == "" {
				out, err := ecs.NewFromConfig(cfg).DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{args[0]}})
				if err != nil {
					return err
				}
				if len(out.Tasks) == 0 {
					return fmt.Errorf("task %s not found in cluster %s", args[0], cluster)
				}
				names = names[:0]
				for _, c := range out.Tasks[0].Containers {
					names = append(names, aws.ToString(c.Name))
				}
			}
			offsets := make([]int64, len(names))
			for {
				stopped := true
				for i, name := range names {
					var out becs.ContainerLogsOutput
					in := becs.ContainerLogsInput{Cluster: cluster, Task: args[0], Container: name, Offset: offsets[i]}
					if err := callBerth(ctx, cfg, "GetContainerLogs", in, &out); err != nil {
						return err
					}
					offsets[i] = out.NextOffset
					stopped = stopped && out.TaskStopped
					writePrefixed(os.Stdout, out.Data, name, len(names) > 1)
				}
				if !follow || stopped {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(300 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the task stops")
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster")
	cmd.Flags().StringVar(&container, "container", "", "only this container (default: all)")
	return cmd
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
