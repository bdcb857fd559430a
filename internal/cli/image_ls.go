package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/spf13/cobra"
)

// newImageLsCmd is `berth image ls [REPOSITORY]`: the images of one
// repository, or of every repository of the account, through the ECR API.
func newImageLsCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [REPOSITORY]",
		Short: "List the images in berth's registry (all repositories, or one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := ecr.NewFromConfig(g.awsConfig())
			var repos []string
			if len(args) == 1 {
				repos = []string{registryRepo(g, args[0])}
			} else {
				p := ecr.NewDescribeRepositoriesPaginator(c, &ecr.DescribeRepositoriesInput{})
				for p.HasMorePages() {
					out, err := p.NextPage(ctx)
					if err != nil {
						return fmt.Errorf("list repositories: %w", err)
					}
					for _, r := range out.Repositories {
						repos = append(repos, aws.ToString(r.RepositoryName))
					}
				}
				slices.Sort(repos)
			}
			var images []ecrtypes.ImageDetail
			for _, repo := range repos {
				p := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
				var these []ecrtypes.ImageDetail
				for p.HasMorePages() {
					out, err := p.NextPage(ctx)
					var nf *ecrtypes.RepositoryNotFoundException
					if errors.As(err, &nf) {
						return fmt.Errorf("repository %q does not exist (`berth image ls` lists every repository's images)", repo)
					}
					if err != nil {
						return fmt.Errorf("list images of %s: %w", repo, err)
					}
					these = append(these, out.ImageDetails...)
				}
				// Newest first within a repository, as `docker images` does.
				slices.SortStableFunc(these, func(a, b ecrtypes.ImageDetail) int {
					return aws.ToTime(b.ImagePushedAt).Compare(aws.ToTime(a.ImagePushedAt))
				})
				images = append(images, these...)
			}
			return writeImageTable(os.Stdout, images, time.Now())
		},
	}
}

// writeImageTable prints one row per tag (untagged images get one row with
// tag <none>).
func writeImageTable(out io.Writer, images []ecrtypes.ImageDetail, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REPOSITORY\tTAG\tDIGEST\tSIZE\tPUSHED")
	for _, im := range images {
		tags := slices.Clone(im.ImageTags)
		slices.Sort(tags)
		if len(tags) == 0 {
			tags = []string{"<none>"}
		}
		pushed := "-"
		if im.ImagePushedAt != nil {
			pushed = humanAgo(now.Sub(*im.ImagePushedAt))
		}
		for _, tag := range tags {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(im.RepositoryName), tag, shortDigest(aws.ToString(im.ImageDigest)),
				humanSize(aws.ToInt64(im.ImageSizeInBytes)), pushed)
		}
	}
	return w.Flush()
}

// shortDigest is "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

// humanSize prints a byte count in B, kB, MB or GB (powers of 1000, as
// `docker images` does).
func humanSize(n int64) string {
	f := float64(n)
	for _, unit := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 || unit == "GB" {
			if unit == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.3g %s", f, unit)
		}
		f /= 1000
	}
	return fmt.Sprintf("%d B", n) // not reached
}

// humanAgo prints a duration like "5 seconds ago" or "3 days ago".
func humanAgo(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/(24*time.Hour)), "day")
	}
}

// newImageRmCmd is `berth image rm NAME:TAG|NAME@DIGEST...` (ECR's
// BatchDeleteImage). Removing a tag removes the image when it was its last
// tag, as in ECR; removing a digest removes the image and all its tags.
func newImageRmCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME:TAG|NAME@DIGEST...",
		Short: "Remove images (by tag or digest) from berth's registry",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := ecr.NewFromConfig(g.awsConfig())
			var failed []string
			for _, arg := range args {
				repo, id, err := parseImageRef(registryRepo(g, arg))
				if err != nil {
					return err
				}
				out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{id}})
				var nf *ecrtypes.RepositoryNotFoundException
				if errors.As(err, &nf) {
					failed = append(failed, fmt.Sprintf("%s: repository %q does not exist", arg, repo))
					continue
				}
				if err != nil {
					return fmt.Errorf("remove %s: %w", arg, err)
				}
				for _, f := range out.Failures {
					failed = append(failed, fmt.Sprintf("%s: %s: %s", arg, f.FailureCode, aws.ToString(f.FailureReason)))
				}
				for _, d := range out.ImageIds {
					// By tag, ECR removes the tag, and the image with its
					// last tag; by digest, the image and all its tags.
					if t := aws.ToString(d.ImageTag); id.ImageTag != nil && t != "" {
						fmt.Printf("Untagged: %s:%s (%s)\n", repo, t, aws.ToString(d.ImageDigest))
					} else {
						fmt.Printf("Deleted: %s@%s\n", repo, aws.ToString(d.ImageDigest))
					}
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("not removed:\n  %s", strings.Join(failed, "\n  "))
			}
			return nil
		},
	}
}

// parseImageRef splits NAME:TAG or NAME@DIGEST. A bare NAME means
// NAME:latest.
func parseImageRef(ref string) (string, ecrtypes.ImageIdentifier, error) {
	if name, dg, ok := strings.Cut(ref, "@"); ok {
		if name == "" || !strings.HasPrefix(dg, "sha256:") || len(dg) != len("sha256:")+64 {
			return "", ecrtypes.ImageIdentifier{}, fmt.Errorf("image %q: want NAME@sha256:<64 hex digits>", ref)
		}
		return name, ecrtypes.ImageIdentifier{ImageDigest: aws.String(dg)}, nil
	}
	name, tag := splitNameTag(ref)
	if name == "" || tag == "" {
		return "", ecrtypes.ImageIdentifier{}, fmt.Errorf("image %q: want NAME:TAG or NAME@DIGEST", ref)
	}
	return name, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)}, nil
}

// splitNameTag splits NAME[:TAG]; the tag defaults to "latest". A colon
// before the last slash belongs to a host:port, not a tag.
func splitNameTag(ref string) (string, string) {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return ref[:i], ref[i+1:]
		}
	}
	return ref, "latest"
}

// registryRepo strips this berth's registry host (as in HOST/NAME:TAG,
// what repositoryUri and `berth image push` print) from an image name, so
// that both the short and the full name work.
func registryRepo(g *globalFlags, ref string) string {
	cfg := g.awsConfig()
	u, err := url.Parse(aws.ToString(cfg.BaseEndpoint))
	if err != nil || u.Host == "" {
		return ref
	}
	return strings.TrimPrefix(ref, u.Host+"/")
}
