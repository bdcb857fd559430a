package cli

import (
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/demoimage"
	"github.com/berthdev/berth/internal/registrylogin"
)

func newImageCmd(g *globalFlags) *cobra.Command {
	img := &cobra.Command{Use: "image", Short: "Images in berth's registry"}
	var name, busybox string
	build := &cobra.Command{
		Use:   "build-demo",
		Short: "Build a small busybox image from Debian's busybox-static and push it to berth's registry (no internet needed)",
		Long: "Build a small busybox image from Debian's busybox-static and push it to berth's registry (no internet needed).\n" +
			"The repository is created if it does not exist, and the push uses a token from ECR's GetAuthorizationToken, as `docker login` would.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := g.awsConfig()
			u, err := url.Parse(*cfg.BaseEndpoint)
			if err != nil {
				return fmt.Errorf("endpoint: %w", err)
			}
			repo, tag := splitNameTag(name)
			auth, err := registrylogin.Login(cmd.Context(), ecr.NewFromConfig(cfg), repo)
			if err != nil {
				return err
			}
			ref, err := demoimage.Build(cmd.Context(), u.Host, repo, tag, demoimage.Options{BusyboxPath: busybox, Auth: auth})
			if err != nil {
				return err
			}
			fmt.Println(ref)
			return nil
		},
	}
	build.Flags().StringVar(&name, "name", "busybox:latest", "repository and tag to push")
	build.Flags().StringVar(&busybox, "busybox", "/bin/busybox", "busybox-static binary")
	img.AddCommand(build, newImageLsCmd(g), newImagePushCmd(g), newImageRmCmd(g))
	return img
}
