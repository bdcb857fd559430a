// Package conformance runs the OCI Distribution conformance suite — the Go
// module github.com/opencontainers/distribution-spec/conformance, with its
// documented environment variables — against the registry of a real
// `berth server` with auth on, and fails with the list of failed specs.
//
// Two pinned versions of the suite run (suites_test.go): "workflows", the
// Ginkgo suite of spec v1.1 whose pull, push, content discovery and content
// management workflows issue 3's acceptance names, and "full", the current
// rewritten suite with OCI_VERSION=1.1, as a regression guard. Neither is a
// requirement in go.mod: each is fetched into the module cache by its pinned
// version and hash and built there with its own go.sum.
//
// Auth: the server runs as `berth server` does by default, its registry
// demanding ECR credentials (HTTP Basic AWS:<token>). The suites get a token
// from the server's ECR GetAuthorizationToken, or $BERTH_CONFORMANCE_CREDS
// (USER:PASSWORD) if set, and their repositories are created through
// CreateRepository first, as ECR does not create them on push. The test
// fails if the registry answers anonymous requests, or if the server cannot
// hand out credentials. BERTH_CONFORMANCE_CREDS=none runs the registry with
// --allow-anonymous-registry instead, and the suites anonymously.
//
// Other knobs: BERTH_CONFORMANCE_STRICT=1 ignores the expected failures
// (the acceptance check proper); BERTH_CONFORMANCE_REPORT_DIR=DIR keeps each
// suite's junit.xml, report.html and output in DIR/<suite>;
// BERTH_CONFORMANCE_DEBUG=1 has the suites log every request;
// BERTH_CONFORMANCE_BIN=PATH tests that berth binary instead of building one.
//
// The server needs neither root nor containerd; the test skips under -short.
package conformance

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Environment variables that steer the run (see the package doc).
const (
	envStrict    = "BERTH_CONFORMANCE_STRICT"
	envReportDir = "BERTH_CONFORMANCE_REPORT_DIR"
	envDebug     = "BERTH_CONFORMANCE_DEBUG"
	envBin       = "BERTH_CONFORMANCE_BIN"
)

// region is the region the harness signs ECR calls for.
const region = "us-east-1"

// Time bounds. Warm caches bring the whole test to about 20 s; the bounds
// leave room for a cold module cache and build cache.
const (
	harnessTimeout    = 4 * time.Minute
	serverReadyWithin = 30 * time.Second
	suiteTimeout      = 90 * time.Second
)

// TestOCIConformance builds berth and the suites, starts berth server, and
// runs each suite against its registry.
func TestOCIConformance(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), harnessTimeout)
	defer cancel()
	work := t.TempDir()

	start := time.Now()
	berth := buildBerth(t, ctx, work)
	bins := map[string]string{}
	for _, s := range suites {
		bin, err := buildSuite(ctx, work, s)
		if err != nil {
			t.Fatal(err)
		}
		bins[s.Name] = bin
	}
	t.Logf("built berth and %d conformance suites in %s", len(suites), time.Since(start).Round(time.Millisecond))

	srv, auth := startRegistry(t, ctx, berth)
	tgt := target{URL: srv.URL, Host: srv.Addr, Username: auth.Username, Password: auth.Password, Debug: envBool(envDebug)}

	for _, s := range suites {
		t.Run(s.Name, func(t *testing.T) {
			if auth.ECR != nil {
				for _, repo := range []string{s.Repo1, s.Repo2} {
					if err := auth.ECR.createRepository(ctx, repo); err != nil {
						t.Fatalf("create repository %s: %v", repo, err)
					}
				}
			}
			runAndJudge(t, ctx, s, bins[s.Name], tgt)
		})
	}
}

// runAndJudge runs one suite and fails t with the specs that failed
// unexpectedly and the expected failures that passed.
func runAndJudge(t *testing.T, ctx context.Context, s suite, bin string, tgt target) {
	t.Helper()
	dir := reportDir(t, s)
	runCtx, cancel := context.WithTimeout(ctx, suiteTimeout)
	defer cancel()
	res, err := runSuite(runCtx, bin, s, tgt, dir)
	if err != nil {
		t.Fatalf("%v\noutput:\n%s", err, tail(res.Output, 4000))
	}
	f, err := os.Open(filepath.Join(dir, s.JUnit))
	if err != nil {
		t.Fatalf("suite %s exited %d without a JUnit report: %v\noutput:\n%s", s.Name, res.ExitCode, err, tail(res.Output, 4000))
	}
	specs, err := parseJUnit(f, s)
	f.Close()
	if err != nil {
		t.Fatalf("suite %s exited %d: %v\noutput:\n%s", s.Name, res.ExitCode, err, tail(res.Output, 4000))
	}
	expected := s.Expected
	if envBool(envStrict) {
		expected = nil
	}
	v := evaluate(specs, expected)
	t.Logf("%s\n%s @ %s\n%s\nin %s", s.About, suiteModule, s.Version, v.Summary(), res.Elapsed.Round(time.Millisecond))
	if len(v.Known) > 0 {
		t.Logf("expected failures (gaps of the registry, each with its reason):\n%s", v.KnownList(expected))
		if s.Name == workflowsSuite.Name {
			t.Logf("NOTE: issue 3's acceptance (all four workflows pass) is not met while the workflows suite has expected failures")
		}
	}
	where := "set " + envReportDir + " to keep the suite's junit.xml, report.html and output"
	if os.Getenv(envReportDir) != "" {
		where = "reports in " + dir
	}
	if v.Failed() {
		t.Errorf("suite %s (%s):\n%s%s", s.Name, s.Version, v.Problems(), where)
	}
	if res.ExitCode != 0 && len(v.Unexpected)+len(v.Known) == 0 {
		t.Errorf("suite %s exited %d with no failed spec in its report; output:\n%s", s.Name, res.ExitCode, tail(res.Output, 4000))
	}
}

// requireHost skips where the harness cannot run.
func requireHost(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("conformance test: builds and runs berth server and the suites (skipped with -short)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("conformance test: needs the go command to build the suites")
	}
}

// startRegistry starts berth server with registry auth on and finds the
// suites' credentials; with BERTH_CONFORMANCE_CREDS=none it runs the
// registry anonymously instead.
func startRegistry(t *testing.T, ctx context.Context, berth string) (*berthServer, registryAuth) {
	t.Helper()
	if os.Getenv(envCreds) == "none" {
		srv := startServer(t, ctx, berth, true)
		auth := registryAuth{Source: "none ($" + envCreds + "=none: berth server --allow-anonymous-registry)"}
		checkAuth(t, ctx, srv.URL, auth, false)
		return srv, auth
	}
	srv := startServer(t, ctx, berth, false)
	auth, err := discoverAuth(ctx, newECRAPI(srv.URL, srv.Keys, region))
	if errors.Is(err, errNoECRAPI) {
		t.Fatalf("registry credentials: %v; set %s=USER:PASSWORD, or %s=none to test the registry anonymously", err, envCreds, envCreds)
	}
	if err != nil {
		t.Fatalf("registry credentials: %v", err)
	}
	checkAuth(t, ctx, srv.URL, auth, true)
	return srv, auth
}

// buildBerth builds berth into work, or returns $BERTH_CONFORMANCE_BIN.
func buildBerth(t *testing.T, ctx context.Context, work string) string {
	t.Helper()
	if bin := os.Getenv(envBin); bin != "" {
		return bin
	}
	bin := filepath.Join(work, "berth")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/berthdev/berth/cmd/berth")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	return bin
}

// checkAuth logs whether the registry demands credentials and fails if the
// credentials are refused, or if auth should be on and is not.
func checkAuth(t *testing.T, ctx context.Context, registryURL string, auth registryAuth, wantOn bool) {
	t.Helper()
	anon, err := probeV2(ctx, registryURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	state := "on (an anonymous GET /v2/ is 401)"
	if anon != http.StatusUnauthorized {
		state = "off (an anonymous GET /v2/ is " + strconv.Itoa(anon) + ")"
	}
	if auth.Username != "" {
		code, err := probeV2(ctx, registryURL, auth.Username, auth.Password)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusOK {
			t.Fatalf("the registry refuses the credentials from %s: GET /v2/ is %d", auth.Source, code)
		}
	}
	t.Logf("registry auth %s; credentials: %s", state, auth.Source)
	if wantOn && anon != http.StatusUnauthorized {
		t.Fatalf("berth server's registry should demand credentials, but auth is %s", state)
	}
}

// reportDir is where a suite writes its reports: DIR/<suite> under
// $BERTH_CONFORMANCE_REPORT_DIR, emptied first, or a temporary directory.
func reportDir(t *testing.T, s suite) string {
	t.Helper()
	root := os.Getenv(envReportDir)
	if root == "" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(root, s.Name))
	if err == nil {
		err = os.RemoveAll(dir)
	}
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("report dir: %v", err)
	}
	return dir
}

// envBool reads a boolean environment variable; unset or unparsable is
// false.
func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}
