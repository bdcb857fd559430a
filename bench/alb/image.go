package alb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/berthdev/berth/internal/demoimage"
)

// serverPkg is the backend's package, built for the image.
const serverPkg = "github.com/berthdev/berth/bench/alb/benchhttp"

// buildServer compiles the static backend (CGO_ENABLED=0) into dir. It
// runs the go command of the toolchain that built this program, from the
// working directory, which must be inside berth's module (as `make bench`
// and `go run ./bench/cmd/berthbench` are).
func buildServer(ctx context.Context, dir string) (string, error) {
	goBin := "go" // from PATH, as `make bench` has it
	out := filepath.Join(dir, "benchhttp")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, serverPkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the backend (%s build %s; run from berth's module): %w\n%s", goBin, serverPkg, err, b)
	}
	return out, nil
}

// pushServerImage pushes the binary at bin as a one-layer image (/benchhttp,
// its entrypoint) anonymously over plain HTTP to registryHost as
// repo:latest. It returns the tag reference.
func pushServerImage(ctx context.Context, registryHost, repo, bin string) (string, error) {
	return demoimage.PushBinary(ctx, registryHost, repo, bin, "benchhttp", "berth bench/alb: static benchhttp")
}
