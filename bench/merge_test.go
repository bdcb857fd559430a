package bench

import (
	"strings"
	"testing"
	"time"
)

func TestMergeMarkdown(t *testing.T) {
	fig := func(name string, ms int) Figure {
		return Figure{Name: name, Value: Seconds(time.Duration(ms) * time.Millisecond)}
	}
	old := Report{Date: time.Unix(0, 0), Machine: Machine{Cores: 2}, Outcomes: []Outcome{
		{Bench: fakeBench{"a"}, Result: &Result{Figures: []Figure{fig("a p50", 1)}, Details: "old a"}},
		{Bench: fakeBench{"b"}, Result: &Result{Figures: []Figure{fig("b p50", 2), fig("b p99", 3)}, Details: "old b"}},
	}}.Markdown()
	fresh := Report{Date: time.Unix(3600, 0), Machine: Machine{Cores: 2}, Outcomes: []Outcome{
		{Bench: fakeBench{"b"}, Result: &Result{Figures: []Figure{fig("b p50", 20), fig("b p99", 30)}, Details: "new b"}},
		{Bench: fakeBench{"c"}, Result: &Result{Figures: []Figure{fig("c p50", 4)}, Details: "new c"}},
	}}
	md := MergeMarkdown(old, fresh)
	for _, want := range []string{"1970-01-01 00:00", "| a p50 | 1.0 ms |", "old a", "| b p50 | 20.0 ms |", "| b p99 | 30.0 ms |",
		"new b", "| c p50 | 4.0 ms |", "new c"} {
		if !strings.Contains(md, want) {
			t.Errorf("merged report lacks %q:\n%s", want, md)
		}
	}
	for _, gone := range []string{"old b", "| b p50 | 2.0 ms |", "3.0 ms", "01:00 UTC"} {
		if strings.Contains(md, gone) {
			t.Errorf("merged report still has %q:\n%s", gone, md)
		}
	}
	if strings.Count(md, "## Fake b") != 1 || strings.Count(md, "## How to reproduce everything") != 1 {
		t.Errorf("sections doubled:\n%s", md)
	}
	if i, j := strings.Index(md, "## Fake c"), strings.Index(md, "## How to reproduce everything"); i < 0 || i > j {
		t.Errorf("new section not before the reproduce section:\n%s", md)
	}
	// The summary table stays one table: no blank line inside it.
	sum := md[strings.Index(md, "| figure |"):]
	sum = sum[:strings.Index(sum, "\n\n")]
	if strings.Count(sum, "\n")+1 != 2+4 {
		t.Errorf("summary table:\n%s", sum)
	}
}
