// Package cli is berth's command line: the role subcommands (dev, server,
// agent) and the human verbs (run, ps, stop, logs, image, service, deploy),
// one file per noun. The verbs talk to berth through aws-sdk-go-v2, the wire
// protocol every user's tools use.
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "berth:", err)
		return 1
	}
}

type globalFlags struct {
	dataDir  string
	endpoint string
	region   string
	verbose  bool
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".berth"
	}
	return filepath.Join(home, ".berth")
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Serverless containers you run yourself (ECS/Fargate-compatible)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", defaultDataDir(), "where berth keeps its state")
	root.PersistentFlags().StringVar(&g.endpoint, "endpoint", "", "berth endpoint (default $AWS_ENDPOINT_URL or http://127.0.0.1:4566)")
	root.PersistentFlags().StringVar(&g.region, "region", "", "region (default $AWS_REGION or us-east-1)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	root.AddCommand(newDevCmd(g), newServerCmd(g), newAgentCmd(g), newRunCmd(g), newPsCmd(g), newStopCmd(g), newLogsCmd(g), newImageCmd(g), newServiceCmd(g), newDeployCmd(g), newBillCmd(g), newAdminCmd(g))
	return root
}

func (g *globalFlags) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
