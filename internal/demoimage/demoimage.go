// Package demoimage builds berth's first image with no internet: a small OCI
// image made from the host's Debian busybox-static binary, pushed to berth's
// registry so that a fresh install has something to run.
//
// Layout of the image's single layer (all entries root:root, mtime 0):
//
//	bin/busybox          the static busybox binary (0755)
//	bin/<applet>         -> busybox, for every applet `busybox --list` prints
//	etc/passwd           root (0) and nobody (65534)
//	etc/group            root (0) and nobody (65534)
//	root/                0700
//	tmp/                 1777
//	www/index.html       "hello from berth"
//
// The image is deterministic: the same busybox binary gives the same digest
// (fixed timestamps, sorted entries, fixed gzip header; built by the same Go
// release, since the digest covers compress/flate's output).
package demoimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultBusyboxPath is where Debian's busybox-static installs busybox.
const DefaultBusyboxPath = "/bin/busybox"

// Image metadata.
const (
	Title     = "berth-demo"
	IndexHTML = "hello from berth\n"
	Path      = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// epoch is every timestamp in the image.
var epoch = time.Unix(0, 0).UTC()

// Options tune the build.
type Options struct {
	// BusyboxPath is the static busybox binary; "" means DefaultBusyboxPath.
	BusyboxPath string
	// Auth authenticates the push; nil means anonymous.
	Auth authn.Authenticator
}

// Build builds the image and pushes it to registryHost (e.g.
// "127.0.0.1:4566") as repo:tag over plain HTTP. It returns the pushed
// image's digest reference, "registryHost/repo@sha256:…".
func Build(ctx context.Context, registryHost, repo, tag string, opts Options) (string, error) {
	target := registryHost + "/" + repo + ":" + tag
	ref, err := name.NewTag(target, name.Insecure, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("demo image: reference %q: %w", target, err)
	}
	img, err := build(ctx, opts)
	if err != nil {
		return "", err
	}
	auth := opts.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return "", fmt.Errorf("demo image: push %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("demo image: digest: %w", err)
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

// Image returns the image without pushing it.
func Image(opts Options) (v1.Image, error) {
	return build(context.Background(), opts)
}

func build(ctx context.Context, opts Options) (v1.Image, error) {
	path := opts.BusyboxPath
	if path == "" {
		path = DefaultBusyboxPath
	}
	bin, arch, err := readBusybox(path)
	if err != nil {
		return nil, fmt.Errorf("demo image: %w", err)
	}
	applets, err := listApplets(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("demo image: %w", err)
	}
	layerBytes, err := layerTarGz(bin, applets)
	if err != nil {
		return nil, fmt.Errorf("demo image: layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("demo image: layer: %w", err)
	}

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "berth demoimage: busybox-static with " + fmt.Sprint(len(applets)) + " applets",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("demo image: append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("demo image: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = []string{"PATH=" + Path}
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": Title}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("demo image: config: %w", err)
	}
	return img, nil
}

// readBusybox reads the binary and checks it can run alone in an image:
// a static ELF executable. It returns the bytes and the GOARCH it runs on.
func readBusybox(path string) ([]byte, string, error) {
	bin, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("busybox-static is not installed (%s is missing): apt-get install busybox-static", path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read busybox: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, "", fmt.Errorf("busybox %s is not an ELF executable: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, "", fmt.Errorf("busybox %s is dynamically linked and cannot run alone in an image: apt-get install busybox-static", path)
		}
	}
	arch, ok := goarch[f.Machine]
	if !ok {
		arch = runtime.GOARCH
	}
	return bin, arch, nil
}

// goarch maps ELF machines to image architectures.
var goarch = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_386:     "386",
	elf.EM_ARM:     "arm",
	elf.EM_PPC64:   "ppc64le",
	elf.EM_S390:    "s390x",
	elf.EM_RISCV:   "riscv64",
}

// listApplets runs `busybox --list`: the sorted, distinct applet names.
func listApplets(ctx context.Context, path string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.ContainsAny(a, "/\x00") || a == "." || a == ".." {
			continue
		}
		applets = append(applets, a)
	}
	slices.Sort(applets)
	applets = slices.Compact(applets)
	if !slices.Contains(applets, "sh") {
		return nil, fmt.Errorf("%s --list has no sh applet (%d applets)", path, len(applets))
	}
	return applets, nil
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group  = "root:x:0:\nnobody:x:65534:\n"
)

// entry is one file in the layer.
type entry struct {
	name     string
	typ      byte
	mode     int64
	body     []byte
	linkname string
}

// layerTarGz writes the layer (see the package doc) as a gzipped tar.
func layerTarGz(busybox []byte, applets []string) ([]byte, error) {
	entries := []entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, body: busybox},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, body: []byte(passwd)},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "www/", typ: tar.TypeDir, mode: 0o755},
		{name: "www/index.html", typ: tar.TypeReg, mode: 0o644, body: []byte(IndexHTML)},
	}
	for _, a := range applets {
		entries = append(entries, entry{name: "bin/" + a, typ: tar.TypeSymlink, mode: 0o777, linkname: "busybox"})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.linkname,
			Mode:     e.mode,
			Size:     int64(len(e.body)),
			ModTime:  epoch,
			Uname:    "root",
			Gname:    "root",
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close gzip: %w", err)
	}
	return buf.Bytes(), nil
}
