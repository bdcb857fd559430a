package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/registrylogin"
)

// newImagePushCmd is `berth image push SOURCE NAME:TAG`.
func newImagePushCmd(g *globalFlags) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push LOCAL-OCI-LAYOUT-OR-TARBALL NAME:TAG",
		Short: "Push an OCI image layout directory or a docker/OCI tarball to berth's registry",
		Long: "Push an image to berth's registry. The source is an OCI image layout directory (`skopeo copy ... oci:DIR`, " +
			"`crane pull --format oci`), a `docker save` tarball, or an OCI archive (a tar of an OCI layout, `skopeo copy ... oci-archive:FILE`). " +
			"A layout or archive must hold one image or one multi-platform index.\n" +
			"The repository is created if it does not exist, and the push uses a token from ECR's GetAuthorizationToken.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg := g.awsConfig()
			u, err := url.Parse(*cfg.BaseEndpoint)
			if err != nil || u.Host == "" {
				return fmt.Errorf("endpoint %q: not a URL", *cfg.BaseEndpoint)
			}
			repo, tag := splitNameTag(registryRepo(g, args[1]))
			target := u.Host + "/" + repo + ":" + tag
			ref, err := name.NewTag(target, name.Insecure, name.StrictValidation)
			if err != nil {
				return fmt.Errorf("image name %q: %w", args[1], err)
			}
			src, cleanup, err := openImageSource(args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			auth, err := registrylogin.Login(ctx, ecr.NewFromConfig(cfg), repo)
			if err != nil {
				return err
			}
			digest, err := pushImage(ctx, ref, src, auth, !quiet)
			if err != nil {
				return fmt.Errorf("push %s to %s: %w", args[0], ref, err)
			}
			fmt.Println(ref.Context().Digest(digest.String()).String())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// imageSource is what a push sends: an image, or an index of images.
type imageSource struct {
	img   v1.Image
	index v1.ImageIndex
}

// openImageSource reads an OCI layout directory, a docker tarball or an OCI
// archive. cleanup removes what it unpacked.
func openImageSource(path string) (imageSource, func(), error) {
	noop := func() {}
	fi, err := os.Stat(path)
	if err != nil {
		return imageSource{}, noop, fmt.Errorf("image source: %w", err)
	}
	if fi.IsDir() {
		src, err := fromLayout(path)
		return src, noop, err
	}
	kind, err := tarKind(path)
	if err != nil {
		return imageSource{}, noop, err
	}
	switch kind {
	case "docker":
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return imageSource{}, noop, fmt.Errorf("read tarball %s: %w", path, err)
		}
		return imageSource{img: img}, noop, nil
	default: // "oci"
		dir, err := os.MkdirTemp("", "berth-push-")
		if err != nil {
			return imageSource{}, noop, fmt.Errorf("unpack %s: %w", path, err)
		}
		cleanup := func() { _ = os.RemoveAll(dir) }
		if err := untar(path, dir); err != nil {
			cleanup()
			return imageSource{}, noop, err
		}
		src, err := fromLayout(dir)
		if err != nil {
			cleanup()
			return imageSource{}, noop, fmt.Errorf("%s: %w", path, err)
		}
		return src, cleanup, nil
	}
}

// fromLayout reads an OCI layout with one image or one index.
func fromLayout(dir string) (imageSource, error) {
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return imageSource{}, fmt.Errorf("read OCI layout %s: %w (want a directory with oci-layout and index.json)", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return imageSource{}, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return imageSource{}, fmt.Errorf("OCI layout %s holds %d manifests; push wants exactly one image or index", dir, len(im.Manifests))
	}
	desc := im.Manifests[0]
	switch {
	case desc.MediaType.IsImage():
		img, err := ii.Image(desc.Digest)
		if err != nil {
			return imageSource{}, fmt.Errorf("read image %s from %s: %w", desc.Digest, dir, err)
		}
		return imageSource{img: img}, nil
	case desc.MediaType.IsIndex():
		idx, err := ii.ImageIndex(desc.Digest)
		if err != nil {
			return imageSource{}, fmt.Errorf("read index %s from %s: %w", desc.Digest, dir, err)
		}
		return imageSource{index: idx}, nil
	default:
		return imageSource{}, fmt.Errorf("OCI layout %s: manifest %s has media type %q, neither an image nor an index", dir, desc.Digest, desc.MediaType)
	}
}

// tarKind tells a docker tarball (manifest.json) from an OCI archive
// (oci-layout and index.json).
func tarKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image source: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("image source %s: not an OCI layout directory nor a tarball: %w", path, err)
		}
		switch filepath.Clean(h.Name) {
		case "manifest.json":
			return "docker", nil
		case "oci-layout":
			oci = true
		}
	}
	if !oci {
		return "", fmt.Errorf("image source %s: a tarball with neither manifest.json (docker save) nor oci-layout (OCI archive)", path)
	}
	return "oci", nil
}

// untar unpacks the regular files and directories of an OCI archive into
// dir, refusing names that leave it.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", path, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", path, err)
		}
		rel := filepath.Clean(h.Name)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("unpack %s: entry %q leaves the archive", path, h.Name)
		}
		dst := filepath.Join(dir, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", path, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", path, err)
			}
			out, err := os.Create(dst)
			if err != nil {
				return fmt.Errorf("unpack %s: %w", path, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack %s: %s: %w", path, h.Name, err)
			}
		}
	}
}

// pushImage writes the image or index, with a progress bar on stderr when
// progress is set, and returns the pushed manifest's digest.
func pushImage(ctx context.Context, ref name.Tag, src imageSource, auth authn.Authenticator, progress bool) (v1.Hash, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	var done chan struct{}
	if progress {
		updates := make(chan v1.Update, 16)
		done = make(chan struct{})
		bar := newProgressBar(os.Stderr)
		go func() {
			defer close(done)
			for u := range updates {
				bar.update(u)
			}
			bar.finish()
		}()
		opts = append(opts, remote.WithProgress(updates))
	}
	var (
		digest v1.Hash
		err    error
	)
	if src.index != nil {
		if digest, err = src.index.Digest(); err == nil {
			err = remote.WriteIndex(ref, src.index, opts...)
		}
	} else {
		if digest, err = src.img.Digest(); err == nil {
			err = remote.Write(ref, src.img, opts...)
		}
	}
	if done != nil {
		<-done // remote closes the updates channel when it returns
	}
	return digest, err
}

// progressBar draws "[=====>    ]  12.3 / 45.6 MB  27%" on a terminal,
// redrawn at most ten times a second; on anything else it prints one line
// per 25%.
type progressBar struct {
	w        io.Writer
	tty      bool
	last     time.Time
	quarter  int64
	total    int64
	complete int64
	drawn    bool
	drawnAt  int64 // complete when last drawn
}

func newProgressBar(f *os.File) *progressBar {
	fi, err := f.Stat()
	return &progressBar{w: f, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progressBar) update(u v1.Update) {
	if u.Error != nil {
		return
	}
	p.total, p.complete = u.Total, u.Complete
	if p.tty {
		changed := u.Complete != p.drawnAt
		if changed && (time.Since(p.last) >= 100*time.Millisecond || u.Complete == u.Total) {
			p.last, p.drawnAt = time.Now(), u.Complete
			fmt.Fprintf(p.w, "\r%s", p.line())
			p.drawn = true
		}
		return
	}
	if u.Total > 0 {
		if q := u.Complete * 4 / u.Total; q > p.quarter {
			p.quarter = q
			fmt.Fprintln(p.w, p.line())
			p.drawn = true
		}
	}
}

func (p *progressBar) finish() {
	if p.tty && p.drawn {
		fmt.Fprintf(p.w, "\r%s\n", p.line())
	}
}

// line renders the bar.
func (p *progressBar) line() string {
	const width = 30
	frac := 0.0
	if p.total > 0 {
		frac = min(1, float64(p.complete)/float64(p.total))
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %s / %s %3.0f%%", bar, humanSize(p.complete), humanSize(p.total), frac*100)
}
