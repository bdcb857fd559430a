package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
)

// junitReport is the part of a JUnit report that both suites write: Ginkgo's
// (status passed/skipped/pending/failed/panicked/…) and the rewritten
// suite's (status passed/skipped/failure/error).
type junitReport struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
	Skipped *junitMessage `xml:"skipped"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// outcome is what became of one spec.
type outcome int

const (
	passed outcome = iota
	skipped
	failed
)

// spec is one test case of a suite's report.
type spec struct {
	Name    string // the suite's SpecPrefix trimmed
	Group   string
	Outcome outcome
	Message string // the failure, on one line
}

// parseJUnit reads a suite's JUnit report.
func parseJUnit(r io.Reader, s suite) ([]spec, error) {
	var rep junitReport
	if err := xml.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("parse JUnit report: %w", err)
	}
	var specs []spec
	for _, ts := range rep.Suites {
		for _, c := range ts.Cases {
			sp := spec{Name: strings.TrimPrefix(c.Name, s.SpecPrefix)}
			sp.Group = s.Group(sp.Name)
			sp.Outcome, sp.Message = classify(c)
			specs = append(specs, sp)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("parse JUnit report: no test cases")
	}
	return specs, nil
}

// classify maps a test case to an outcome. Any status that is not a pass or
// a skip counts as a failure, so a panic or a timeout is never lost.
func classify(c junitCase) (outcome, string) {
	for _, m := range []*junitMessage{c.Failure, c.Error} {
		if m != nil {
			return failed, oneLine(m.Message, m.Text)
		}
	}
	switch strings.ToLower(c.Status) {
	case "", "passed":
		if c.Skipped != nil {
			return skipped, ""
		}
		return passed, ""
	case "skipped", "pending", "disabled":
		return skipped, ""
	default:
		return failed, "status " + c.Status
	}
}

// oneLine folds the first non-empty of texts onto one line of at most 300
// bytes.
func oneLine(texts ...string) string {
	for _, t := range texts {
		if f := strings.Join(strings.Fields(t), " "); f != "" {
			if len(f) > 300 {
				f = f[:300] + "…"
			}
			return f
		}
	}
	return "(no message)"
}

// verdict is a suite's report held against its expected failures.
type verdict struct {
	Passed, Skipped int
	Unexpected      []spec            // failed, not expected: the harness fails
	Known           []spec            // failed as expected
	Stale           []expectedFailure // expected to fail, did not: the harness fails
	Groups          []groupCount      // in the order the report first names them
}

// groupCount counts the outcomes of one part of a suite.
type groupCount struct {
	Name                    string
	Passed, Skipped, Failed int
	Known                   int // of Failed
}

// evaluate holds specs against expected. An expectation is stale when no
// failed spec matches it: the gap it names has closed (or the spec is gone).
func evaluate(specs []spec, expected []expectedFailure) verdict {
	var v verdict
	used := make([]bool, len(expected))
	idx := map[string]int{}
	for _, sp := range specs {
		gi, ok := idx[sp.Group]
		if !ok {
			gi = len(v.Groups)
			idx[sp.Group] = gi
			v.Groups = append(v.Groups, groupCount{Name: sp.Group})
		}
		g := &v.Groups[gi]
		switch sp.Outcome {
		case passed:
			v.Passed++
			g.Passed++
		case skipped:
			v.Skipped++
			g.Skipped++
		case failed:
			g.Failed++
			known := false
			for i, e := range expected {
				if e.matches(sp.Name) {
					used[i], known = true, true
				}
			}
			if known {
				g.Known++
				v.Known = append(v.Known, sp)
			} else {
				v.Unexpected = append(v.Unexpected, sp)
			}
		}
	}
	for i, e := range expected {
		if !used[i] {
			v.Stale = append(v.Stale, e)
		}
	}
	return v
}

// Failed reports whether the suite fails the Go test.
func (v verdict) Failed() bool { return len(v.Unexpected) > 0 || len(v.Stale) > 0 }

// Summary is the verdict in one line, then one line per group.
func (v verdict) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d passed, %d failed (%d expected), %d skipped",
		v.Passed, len(v.Unexpected)+len(v.Known), len(v.Known), v.Skipped)
	for _, g := range v.Groups {
		fmt.Fprintf(&b, "\n  %-26s %3d passed", g.Name+":", g.Passed)
		if g.Failed > 0 {
			fmt.Fprintf(&b, ", %d failed", g.Failed)
			if g.Known > 0 {
				fmt.Fprintf(&b, " (%d expected)", g.Known)
			}
		}
		if g.Skipped > 0 {
			fmt.Fprintf(&b, ", %d skipped", g.Skipped)
		}
	}
	return b.String()
}

// Problems lists what fails the test, readably, or "" if nothing does.
func (v verdict) Problems() string {
	var b strings.Builder
	if len(v.Unexpected) > 0 {
		lines := dedupe(v.Unexpected, func(sp spec) string { return sp.Name + ": " + sp.Message })
		fmt.Fprintf(&b, "%d failed specs:\n", len(v.Unexpected))
		for _, l := range lines {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	if len(v.Stale) > 0 {
		fmt.Fprintf(&b, "%d expected failures no longer fail; remove them from suites_test.go:\n", len(v.Stale))
		for _, e := range v.Stale {
			fmt.Fprintf(&b, "  - %s (%s)\n", e.Spec, e.Why)
		}
	}
	return b.String()
}

// KnownList lists the expected failures that happened: one line per
// expectation, with how many specs it covered and why they fail.
func (v verdict) KnownList(expected []expectedFailure) string {
	var b strings.Builder
	for _, e := range expected {
		n := 0
		for _, sp := range v.Known {
			if e.matches(sp.Name) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		name := e.Spec
		if e.Prefix {
			name += "…"
		}
		fmt.Fprintf(&b, "  - %s (%d): %s\n", name, n, e.Why)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// dedupe renders specs with line, folding repeats (Ginkgo names some specs
// alike; the rewritten suite repeats one per manifest) into "(×N)".
func dedupe(specs []spec, line func(spec) string) []string {
	count := map[string]int{}
	var order []string
	for _, sp := range specs {
		l := line(sp)
		if count[l] == 0 {
			order = append(order, l)
		}
		count[l]++
	}
	out := make([]string, 0, len(order))
	for _, l := range order {
		if n := count[l]; n > 1 {
			l = fmt.Sprintf("%s (×%d)", l, n)
		}
		out = append(out, l)
	}
	return out
}

// TestEvaluate checks the report parsing and the bookkeeping of expected
// failures on a report in Ginkgo's shape. It needs no registry.
func TestEvaluate(t *testing.T) {
	const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" failures="3">
  <testsuite name="conformance tests" tests="6" failures="3">
    <testcase name="[It] OCI Distribution Conformance Tests Pull Pull blobs HEAD request to existing blob should yield 200" status="passed"></testcase>
    <testcase name="[It] OCI Distribution Conformance Tests Push Blob Upload Chunked PUT request with digest should return 201" status="failed">
      <failure message="Expected&#xA;    &lt;int&gt;: 404&#xA;to equal&#xA;    &lt;int&gt;: 201" type="failed">details</failure>
    </testcase>
    <testcase name="[It] OCI Distribution Conformance Tests Content Discovery Test content discovery endpoints (listing references) GET request to existing blob should yield 200" status="failed">
      <failure message="Expected 404 to equal 200" type="failed"></failure>
    </testcase>
    <testcase name="[It] OCI Distribution Conformance Tests Content Management Blob delete GET request to deleted blob URL should yield 404 response" status="panicked"></testcase>
    <testcase name="[It] OCI Distribution Conformance Tests Pull Setup Get tag name from environment" status="skipped"></testcase>
    <testcase name="[ReportAfterSuite] html custom reporter" status="passed"></testcase>
  </testsuite>
</testsuites>`
	specs, err := parseJUnit(strings.NewReader(report), workflowsSuite)
	if err != nil {
		t.Fatal(err)
	}
	expected := []expectedFailure{
		{Spec: "Content Discovery Test content discovery endpoints (listing references)", Prefix: true, Why: "no referrers API"},
		{Spec: "Content Management Manifest delete", Prefix: true, Why: "stale on purpose"},
	}
	v := evaluate(specs, expected)
	if v.Passed != 2 || v.Skipped != 1 || len(v.Known) != 1 || len(v.Unexpected) != 2 {
		t.Fatalf("verdict %+v", v)
	}
	if len(v.Stale) != 1 || v.Stale[0].Why != "stale on purpose" {
		t.Fatalf("stale %+v", v.Stale)
	}
	if !v.Failed() {
		t.Fatal("verdict with unexpected failures passes")
	}
	problems := v.Problems()
	for _, want := range []string{
		"Push Blob Upload Chunked PUT request with digest should return 201: Expected <int>: 404 to equal <int>: 201",
		"Content Management Blob delete GET request to deleted blob URL should yield 404 response: status panicked",
		"remove them from suites_test.go",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	groups := map[string]groupCount{}
	for _, g := range v.Groups {
		groups[g.Name] = g
	}
	if g := groups["Content Discovery"]; g.Failed != 1 || g.Known != 1 {
		t.Errorf("content discovery %+v", g)
	}
	if g := groups["Pull"]; g.Passed != 1 || g.Skipped != 1 {
		t.Errorf("pull %+v", g)
	}
}

// TestExpectedFailuresExplained keeps every expected failure justified: the
// acceptance suite may only expect failures the registry's Distribution
// itself has, each with its reason.
func TestExpectedFailuresExplained(t *testing.T) {
	for _, s := range suites {
		seen := map[string]bool{}
		for _, e := range s.Expected {
			if strings.TrimSpace(e.Why) == "" {
				t.Errorf("%s: expected failure %q has no reason", s.Name, e.Spec)
			}
			if seen[e.Spec] {
				t.Errorf("%s: expected failure %q listed twice", s.Name, e.Spec)
			}
			seen[e.Spec] = true
		}
	}
}
