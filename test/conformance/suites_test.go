package conformance

import (
	"fmt"
	"strings"
)

// suiteModule is the Go module of the OCI Distribution conformance suite. It
// is not a requirement of berth's go.mod: the harness fetches a pinned
// version into the module cache (`go mod download`, checked against the
// pinned go.sum hash) and builds it there, so its source never enters this
// repository and its dependencies never enter berth's build.
const suiteModule = "github.com/opencontainers/distribution-spec/conformance"

// buildKind says how a suite version is built and run.
type buildKind int

const (
	// ginkgoTest is the Ginkgo suite of spec v1.1: a test package, built
	// with `go test -c` and run as a test binary.
	ginkgoTest buildKind = iota
	// mainProgram is the rewritten suite: a program, built with `go build`.
	mainProgram
)

// target is the registry under test as the suites see it.
type target struct {
	URL      string // http://host:port
	Host     string // host:port
	Username string // "" runs anonymously
	Password string
	Debug    bool // ask the suite for request/response logs
}

// expectedFailure names specs the registry is known to fail, with the
// reason. The harness fails when one of them passes, so the list cannot
// outlive the gap it describes.
type expectedFailure struct {
	// Spec is a spec name as the harness prints it (the suite's
	// SpecPrefix trimmed); with Prefix it matches every name it begins.
	Spec   string
	Prefix bool
	// Why says what the registry lacks and what would fix it.
	Why string
}

// matches reports whether the expectation covers spec name.
func (e expectedFailure) matches(name string) bool {
	if e.Prefix {
		return strings.HasPrefix(name, e.Spec)
	}
	return name == e.Spec
}

// suite is one pinned version of the conformance suite and how to run it.
type suite struct {
	// Name is the subtest name.
	Name string
	// About says what the suite covers, for the log.
	About string
	// Version and Sum pin the module: Sum is its go.sum "h1:" hash.
	Version, Sum string
	Kind         buildKind
	// Repo1 and Repo2 are the repositories the suite pushes to (Repo2
	// receives cross-repository mounts). With ECR auth they are created
	// through the ECR API first: ECR does not create repositories on push.
	Repo1, Repo2 string
	// Env is the suite's environment, in its documented variables.
	Env func(t target, reportDir string) []string
	// Args are the binary's arguments.
	Args []string
	// JUnit is where the suite writes its JUnit report, under reportDir.
	JUnit string
	// SpecPrefix is trimmed from JUnit test case names.
	SpecPrefix string
	// Group names the part of the suite a spec belongs to, for the summary.
	Group func(spec string) string
	// Expected lists the specs the registry is known to fail.
	Expected []expectedFailure
}

// workflowsSuite is the Ginkgo suite whose four workflows — pull, push,
// content discovery, content management — issue 3's acceptance names. It is
// the only Ginkgo-based version the module proxy serves (commit f2182352d4cc,
// 2023-11-01): it tests spec v1.1 as released in February 2024, referrers API
// included, which is the spec Distribution v3.1.2 implements.
var workflowsSuite = suite{
	Name:    "workflows",
	About:   "OCI distribution-spec v1.1 conformance (Ginkgo): pull, push, content discovery, content management",
	Version: "v0.0.0-20231101194043-f2182352d4cc",
	Sum:     "h1:jL+CgYEEZluGb08ZcLpEyhn389kNMlwrWOHaIqXazq0=",
	Kind:    ginkgoTest,
	Repo1:   "conformance/workflows",
	Repo2:   "conformance/workflows-mount",
	Env: func(t target, reportDir string) []string {
		return []string{
			"OCI_ROOT_URL=" + t.URL,
			"OCI_NAMESPACE=conformance/workflows",
			"OCI_CROSSMOUNT_NAMESPACE=conformance/workflows-mount",
			"OCI_USERNAME=" + t.Username,
			"OCI_PASSWORD=" + t.Password,
			"OCI_TEST_PULL=1",
			"OCI_TEST_PUSH=1",
			"OCI_TEST_CONTENT_DISCOVERY=1",
			"OCI_TEST_CONTENT_MANAGEMENT=1",
			"OCI_HIDE_SKIPPED_WORKFLOWS=0",
			"OCI_DEBUG=" + boolEnv(t.Debug),
			// Manifests before blobs, the order in which a registry that
			// refuses to delete a referenced blob still cleans up.
			"OCI_DELETE_MANIFEST_BEFORE_BLOBS=1",
			// ECR, like Distribution, mounts only from a named repository:
			// a mount without from= must start an upload (202).
			"OCI_AUTOMATIC_CROSSMOUNT=0",
			"OCI_REPORT_DIR=" + reportDir,
		}
	},
	Args:       []string{"-ginkgo.no-color", "-test.timeout=2m"},
	JUnit:      "junit.xml",
	SpecPrefix: "[It] OCI Distribution Conformance Tests ",
	Group: func(spec string) string {
		for _, w := range []string{"Pull", "Push", "Content Discovery", "Content Management"} {
			if strings.HasPrefix(spec, w+" ") {
				return w
			}
		}
		return "other"
	},
	// Every workflow passes: berth adds the referrers API and OCI-Subject
	// that Distribution v3.1.2 lacks (internal/ecr/referrers.go).
	Expected: nil,
}

// fullSuite is the current, rewritten suite with OCI_VERSION=1.1: beyond the
// four workflows it pushes many kinds of content (sha512 digests, artifacts,
// subjects, nested indexes, data fields, non-distributable layers) and tests
// range requests and out-of-order chunks. It is a regression guard beside the
// acceptance suite; its expected failures are the gaps of Distribution
// v3.1.2 as berth configures it.
var fullSuite = suite{
	Name:    "full",
	About:   "OCI distribution-spec conformance (current suite, OCI_VERSION=1.1): every API and data type",
	Version: "v0.0.0-20260831232431-97274622c111",
	Sum:     "h1:ppZPU0CrEPzyJhVggYwUIZrqh0w2lIT0esw+9ABNPA4=",
	Kind:    mainProgram,
	Repo1:   "conformance/full",
	Repo2:   "conformance/full-mount",
	Env: func(t target, reportDir string) []string {
		log := "warn"
		if t.Debug {
			log = "debug"
		}
		return []string{
			"OCI_VERSION=1.1",
			"OCI_REGISTRY=" + t.Host,
			"OCI_TLS=disabled",
			"OCI_REPO1=conformance/full",
			"OCI_REPO2=conformance/full-mount",
			"OCI_USERNAME=" + t.Username,
			"OCI_PASSWORD=" + t.Password,
			"OCI_LOG=" + log,
			"OCI_RESULTS_DIR=" + reportDir,
		}
	},
	JUnit:      "junit.xml",
	SpecPrefix: "OCI Conformance Test/",
	Group: func(spec string) string {
		g, _, _ := strings.Cut(spec, "/")
		return g
	},
	Expected: []expectedFailure{
		// "sha512" and "sha512 blobs": the sha512 digest algorithm, which
		// spec v1.1 leaves optional.
		{Spec: "sha512", Prefix: true,
			Why: "Distribution v3.1.2 keeps blobs by their sha256 digest: it answers Docker-Content-Digest with sha256 for content pushed as sha512, fails mounts of it, and refuses manifests pushed by a sha512 digest"},
	},
}

// suites run in this order against one berth dev.
var suites = []suite{workflowsSuite, fullSuite}

// boolEnv spells a flag as the suites parse it.
func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// module is the suite's module@version.
func (s suite) module() string { return fmt.Sprintf("%s@%s", suiteModule, s.Version) }
