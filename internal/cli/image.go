package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/demoimage"
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
			auth, err := ecrLogin(cmd.Context(), ecr.NewFromConfig(cfg), repo)
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

// ecrLogin makes sure the repository exists (ECR does not create one on
// push) and returns the registry credentials GetAuthorizationToken gives.
func ecrLogin(ctx context.Context, c *ecr.Client, repo string) (authn.Authenticator, error) {
	_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	var exists *ecrtypes.RepositoryAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return nil, fmt.Errorf("create repository %s: %w", repo, err)
	}
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("get registry token: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("get registry token: no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("decode registry token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("decode registry token: not user:password")
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}
