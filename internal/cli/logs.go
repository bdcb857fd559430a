package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newLogsCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logs [-f] TASK",
		Short: "Print a task's container logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("not wired yet")
		},
	}
}
