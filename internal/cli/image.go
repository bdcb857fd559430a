package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/demoimage"
)

func newImageCmd(g *globalFlags) *cobra.Command {
	img := &cobra.Command{Use: "image", Short: "Images in berth's registry"}
	var name, busybox string
	build := &cobra.Command{
		Use:   "build-demo",
		Short: "Build a small busybox image from Debian's busybox-static and push it to berth's registry (no internet needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := g.awsConfig()
			u, err := url.Parse(*cfg.BaseEndpoint)
			if err != nil {
				return fmt.Errorf("endpoint: %w", err)
			}
			repo, tag := name, "latest"
			for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
				if name[i] == ':' {
					repo, tag = name[:i], name[i+1:]
					break
				}
			}
			ref, err := demoimage.Build(cmd.Context(), u.Host, repo, tag, demoimage.Options{BusyboxPath: busybox})
			if err != nil {
				return err
			}
			fmt.Println(ref)
			return nil
		},
	}
	build.Flags().StringVar(&name, "name", "busybox:latest", "repository and tag to push")
	build.Flags().StringVar(&busybox, "busybox", "/bin/busybox", "busybox-static binary")
	img.AddCommand(build)
	return img
}
