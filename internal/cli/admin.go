package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/agentapi"
)

// newAdminCmd is the operator's verbs: they act on berth's own capacity
// with the join token ($BERTH_AGENT_TOKEN, or the dev data dir's env file),
// not as an account.
func newAdminCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Operate berth's own capacity (needs the join token)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "spot-interrupt [HOST]",
		Short: "Reclaim a host's FARGATE_SPOT capacity: its Spot tasks stop with stopCode SpotInterruption",
		Long: `Reclaim a host's FARGATE_SPOT capacity, as AWS reclaims Spot capacity: every
running FARGATE_SPOT task on HOST gets SIGTERM and its stopTimeout (up to the
two minutes Fargate Spot allows) and stops with stopCode SpotInterruption;
services replace them per their capacity provider strategy. HOST defaults to
berth dev's own host.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := ""
			if len(args) == 1 {
				host = args[0]
			} else if b, err := os.ReadFile(filepath.Join(g.dataDir, "agent", "node-id")); err == nil {
				host = strings.TrimSpace(string(b))
			}
			if host == "" {
				return fmt.Errorf("name the host (its node id), or run this next to berth dev's --data-dir")
			}
			c, err := g.adminClient()
			if err != nil {
				return err
			}
			out, err := c.SpotInterrupt(cmd.Context(), host)
			if err != nil {
				return err
			}
			for _, arn := range out.TaskArns {
				fmt.Fprintln(cmd.OutOrStdout(), arn)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d Spot task(s) interrupted on %s\n", len(out.TaskArns), host)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "create-account",
		Short: "Create an account and its first access key (printed as shell exports)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient()
			if err != nil {
				return err
			}
			a, err := c.CreateAccount(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# account %s\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", a.AccountID, a.AccessKeyID, a.SecretAccessKey)
			return nil
		},
	})
	return cmd
}

// adminClient is an agent-protocol client with the join token.
func (g *globalFlags) adminClient() (*agentapi.Client, error) {
	token := os.Getenv("BERTH_AGENT_TOKEN")
	if token == "" {
		token = readEnvFile(filepath.Join(g.dataDir, "env"))["BERTH_AGENT_TOKEN"]
	}
	if token == "" {
		return nil, fmt.Errorf("the operator's verbs need the join token: set BERTH_AGENT_TOKEN (berth server prints it)")
	}
	return &agentapi.Client{BaseURL: aws.ToString(g.awsConfig().BaseEndpoint), Token: token}, nil
}
