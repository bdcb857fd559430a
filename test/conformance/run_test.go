package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goCommand runs the go command for the harness's own fetches and builds:
// module mode without a workspace, go.mod and go.sum read-only, no VCS
// stamping and no toolchain switch, whatever the caller's environment says.
func goCommand(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), "GOFLAGS=", "GOWORK=", "GOTOOLCHAIN=", "GO111MODULE="),
		"GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local", "GO111MODULE=on")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// withoutEnv drops the variables that begin with any of prefixes.
func withoutEnv(env []string, prefixes ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		drop := false
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// fetchSuite downloads the suite's module into the module cache (through the
// module proxy, checked against the checksum database) and returns its
// directory there, after checking its hash against the pinned one.
func fetchSuite(ctx context.Context, work string, s suite) (string, error) {
	var stderr bytes.Buffer
	cmd := goCommand(ctx, work, "mod", "download", "-json", s.module())
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var info struct {
		Dir, Sum, Error string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %v: %s%s", s.module(), runErr, out, stderr.String())
	}
	if info.Error != "" || runErr != nil {
		return "", fmt.Errorf("go mod download %s: %v %s %s", s.module(), runErr, info.Error, stderr.String())
	}
	if info.Sum != s.Sum {
		return "", fmt.Errorf("go mod download %s: hash %s, pinned %s", s.module(), info.Sum, s.Sum)
	}
	return info.Dir, nil
}

// buildSuite fetches and builds the suite into work and returns the binary.
// The build happens in the module cache directory, read-only, with the
// suite's own go.mod and go.sum.
func buildSuite(ctx context.Context, work string, s suite) (string, error) {
	dir, err := fetchSuite(ctx, work, s)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(work, s.Name+".bin")
	var args []string
	switch s.Kind {
	case ginkgoTest:
		args = []string{"test", "-c", "-vet=off", "-o", bin, "."}
	case mainProgram:
		args = []string{"build", "-ldflags", "-X main.Version=" + s.Version, "-o", bin, "."}
	default:
		return "", fmt.Errorf("suite %s: unknown build kind %d", s.Name, s.Kind)
	}
	if out, err := goCommand(ctx, dir, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: go %s: %w\n%s", s.module(), strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// runResult is one run of a suite binary.
type runResult struct {
	ExitCode int
	Output   string // the path of its stdout and stderr
	Elapsed  time.Duration
}

// runSuite runs the suite binary against tgt with its reports in
// reportDir. Only the suite's own OCI_* variables reach it. A non-zero exit
// is not an error: the JUnit report says what failed.
func runSuite(ctx context.Context, bin string, s suite, tgt target, reportDir string) (runResult, error) {
	res := runResult{Output: filepath.Join(reportDir, "output.txt")}
	out, err := os.Create(res.Output)
	if err != nil {
		return res, fmt.Errorf("suite output: %w", err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, bin, s.Args...)
	cmd.Dir = reportDir
	cmd.Env = append(withoutEnv(os.Environ(), "OCI_"), s.Env(tgt, reportDir)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	res.Elapsed = time.Since(start)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("suite %s: stopped after %s: %w", s.Name, res.Elapsed.Round(time.Millisecond), ctx.Err())
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return res, fmt.Errorf("run suite %s: %w", s.Name, err)
	}
	return res, nil
}

// tail returns the last n bytes of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	if len(b) > n {
		b = append([]byte("…"), b[len(b)-n:]...)
	}
	return string(b)
}
