package runtime

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
)

// ImageConfig is the part of an image's configuration that decides how its
// containers run.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	StopSignal           string
}

// Image is an image present and unpacked in containerd.
type Image struct {
	Ref    string // normalized, e.g. docker.io/library/busybox:latest
	Digest string // digest of the image's manifest (or index)
	Size   int64  // bytes of content (compressed layers, manifest, config)
	Config ImageConfig
	Cached bool // it was already present: nothing was fetched
}

// NormalizeRef turns a docker-style reference into a fully qualified one:
// "busybox" -> "docker.io/library/busybox:latest".
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	return named.String(), nil
}

// Pull makes ref present and unpacked in the overlayfs snapshotter, as
// Fargate does: a tag is resolved at its registry every time, so a pushed
// new image behind the same tag is used, and only what is missing is
// fetched. An image named by digest that is present is not looked up, and
// neither is a tag whose registry cannot be reached but which is present
// (the ECS agent's fallback to the cached image). Registries on loopback
// addresses (127.0.0.0/8, localhost, [::1]) are spoken to over plain HTTP,
// all others over HTTPS.
func (r *Runtime) Pull(ctx context.Context, ref string, opts ...PullOption) (Image, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("pull: %w", err)
	}
	var po pullOptions
	for _, o := range opts {
		o(&po)
	}
	hostOpts := []docker.RegistryOpt{docker.WithPlainHTTP(isLoopbackHost)}
	if po.creds != nil {
		hostOpts = append(hostOpts, docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(po.creds))))
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(hostOpts...)})
	img, err := r.client.GetImage(ctx, name)
	switch {
	case err == nil:
		current := true
		if !strings.Contains(name, "@") {
			if _, desc, rerr := resolver.Resolve(ctx, name); rerr == nil {
				current = desc.Digest == img.Target().Digest
			} else {
				r.log.DebugContext(ctx, "registry unreachable; using the image on this host", "ref", name, "err", rerr)
			}
		}
		if current {
			out, err := r.present(ctx, img)
			if err != nil {
				return Image{}, fmt.Errorf("pull %s: %w", name, err)
			}
			out.Cached = true
			return out, nil
		}
	case !errdefs.IsNotFound(err):
		return Image{}, fmt.Errorf("pull %s: look up image: %w", name, err)
	}
	r.log.InfoContext(ctx, "pulling image", "ref", name)
	img, err = r.client.Pull(ctx, name,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter),
	)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	out, err := describeImage(ctx, img)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	return out, nil
}

// PullOption changes how Pull talks to registries.
type PullOption func(*pullOptions)

type pullOptions struct {
	creds func(host string) (string, string, error)
}

// WithCredentials gives Pull HTTP Basic credentials for one registry host
// (host:port); no other host is ever sent them.
func WithCredentials(host, username, password string) PullOption {
	return func(o *pullOptions) {
		o.creds = func(h string) (string, string, error) {
			if h == host {
				return username, password, nil
			}
			return "", "", nil
		}
	}
}

// present describes an image that is on the host, unpacking it if needed.
// What it learnt is kept by digest, so the next task of the same image
// costs no lookups.
func (r *Runtime) present(ctx context.Context, img containerd.Image) (Image, error) {
	digest := img.Target().Digest.String()
	r.imagesMu.Lock()
	known, ok := r.images[digest]
	r.imagesMu.Unlock()
	if ok {
		known.Ref = img.Name()
		return known, nil
	}
	unpacked, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return Image{}, fmt.Errorf("check unpacked: %w", err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return Image{}, fmt.Errorf("unpack: %w", err)
		}
	}
	out, err := describeImage(ctx, img)
	if err != nil {
		return Image{}, err
	}
	r.imagesMu.Lock()
	if r.images == nil {
		r.images = map[string]Image{}
	}
	r.images[digest] = out
	r.imagesMu.Unlock()
	return out, nil
}

// GetImage describes an image already present, by reference. The error
// wraps errdefs.ErrNotFound if it is not.
func (r *Runtime) GetImage(ctx context.Context, ref string) (Image, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return Image{}, fmt.Errorf("get image %s: %w", name, err)
	}
	out, err := describeImage(ctx, img)
	if err != nil {
		return Image{}, fmt.Errorf("get image %s: %w", name, err)
	}
	out.Cached = true
	return out, nil
}

func describeImage(ctx context.Context, img containerd.Image) (Image, error) {
	spec, err := img.Spec(ctx)
	if err != nil {
		return Image{}, err
	}
	size, err := img.Size(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("image size: %w", err)
	}
	c := spec.Config
	return Image{
		Ref:    img.Name(),
		Digest: img.Target().Digest.String(),
		Size:   size,
		Config: ImageConfig{
			Entrypoint: c.Entrypoint,
			Cmd:        c.Cmd,
			Env:        c.Env,
			WorkingDir: c.WorkingDir,
			User:       c.User,
			StopSignal: c.StopSignal,
		},
	}, nil
}

// isLoopbackHost reports whether a registry host[:port] is on this
// machine, to be spoken to over plain HTTP.
func isLoopbackHost(host string) (bool, error) {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback(), nil
}

// RegistryHost is the registry host (host:port) a reference names.
func RegistryHost(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	return reference.Domain(named), nil
}
