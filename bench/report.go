package bench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Value is a measured quantity. Durations are kept in seconds (Unit "s")
// and printed in ms or s as fits.
type Value struct {
	Num  float64
	Unit string // "s", or anything else printed after the number: "tasks/s", "MiB"
}

// Seconds is a duration as a Value.
func Seconds(d time.Duration) Value { return Value{Num: d.Seconds(), Unit: "s"} }

// String formats v: durations under a second in ms.
func (v Value) String() string {
	if v.Unit == "s" {
		return FormatDuration(time.Duration(v.Num * float64(time.Second)))
	}
	n := v.Num
	if math.Abs(n) >= 100 {
		n = math.Round(n) // 574.6 tasks/s → 575: the digits past are noise
	} else {
		n = math.Round(n*100) / 100
	}
	return strconv.FormatFloat(n, 'f', -1, 64) + " " + v.Unit
}

// FormatDuration prints d in ms with one decimal below 10 s, else in s.
func FormatDuration(d time.Duration) string {
	if d < 10*time.Second && d > -10*time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// Anchor is what a figure is compared with.
type Anchor struct {
	Name  string // e.g. "bare containerd start, p50"
	Value Value
	// Measured is true when the anchor ran in this same run on this
	// machine; false when it is a published figure, quoted.
	Measured bool
	Source   string // where a quoted figure comes from, or how it was measured
}

// Figure is one headline number.
type Figure struct {
	Name   string
	Value  Value
	Anchor *Anchor // nil when there is none
	// Target says what berth aims for, e.g. "≤ 2 × floor"; Met whether
	// this run meets it (nil: no target).
	Target string
	Met    *bool
}

// Ratio is Value / Anchor.Value, or 0 when there is no comparable anchor.
func (f Figure) Ratio() float64 {
	if f.Anchor == nil || f.Anchor.Value.Unit != f.Value.Unit || f.Anchor.Value.Num == 0 {
		return 0
	}
	return f.Value.Num / f.Anchor.Value.Num
}

// Met returns a pointer to ok, for Figure.Met.
func Met(ok bool) *bool { return &ok }

// Machine describes the host the benchmarks ran on.
type Machine struct {
	Cores      int
	CPUModel   string
	MemoryGiB  float64
	Kernel     string // uname: sysname release machine
	Go         string
	Containerd string
	Runc       string
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures when the run
	// started: other work on the machine skews the numbers.
	LoadAvg string
}

// DescribeMachine reads /proc, uname and the tools' versions.
func DescribeMachine() Machine {
	m := Machine{Cores: goruntime.NumCPU(), Go: goruntime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		cores := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch strings.TrimSpace(k) {
			case "processor":
				cores++
			case "model name":
				if m.CPUModel == "" {
					m.CPUModel = strings.TrimSpace(v)
				}
			}
		}
		f.Close()
		if cores > 0 {
			m.Cores = cores
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	m.Containerd = firstLine("containerd", "--version")
	m.Runc = firstLine("runc", "--version")
	return m
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "not found"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// Report is the content of BENCHMARKS.md.
type Report struct {
	Machine  Machine
	Date     time.Time
	Took     time.Duration
	Args     []string
	Outcomes []Outcome
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (bench/cmd/berthbench) on %s; the run took %s. "+
		"Do not edit by hand: run `make bench` again (as root, after `bash scripts/setup.sh`).\n\n",
		r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second))
	if len(r.Args) > 0 {
		w("Command: `%s`\n\n", strings.Join(r.Args, " "))
	}
	m := r.Machine
	w("## Machine\n\n| | |\n| --- | --- |\n")
	w("| cores | %d (%s) |\n| memory | %.1f GiB |\n| kernel | %s |\n", m.Cores, m.CPUModel, m.MemoryGiB, m.Kernel)
	w("| Go | %s |\n| containerd | %s |\n| runc | %s |\n", m.Go, m.Containerd, m.Runc)
	w("| load average at start (1, 5, 15 min) | %s |\n\n", m.LoadAvg)

	w("## Summary\n\n")
	w("The ratio is berth's figure divided by its anchor. An anchor marked *measured* ran in this same run on this machine; " +
		"one marked *quoted* is a published figure that cannot run here.\n\n")
	w("| figure | berth | anchor | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, o := range r.Outcomes {
		if o.Err != nil {
			w("| %s | **failed**: %s | | | | |\n", o.Bench.Title(), oneLine(o.Err.Error()))
			continue
		}
		for _, f := range o.Result.Figures {
			anchor, ratio := "—", "—"
			if f.Anchor != nil {
				kind := "quoted"
				if f.Anchor.Measured {
					kind = "measured"
				}
				anchor = fmt.Sprintf("%s: %s (%s)", f.Anchor.Name, f.Anchor.Value, kind)
				if q := f.Ratio(); q != 0 {
					ratio = fmt.Sprintf("%.2f ×", q)
					if q < 0.01 {
						ratio = fmt.Sprintf("%.4f ×", q)
					}
				}
			}
			met := "—"
			if f.Met != nil {
				met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
			}
			w("| %s | %s | %s | %s | %s | %s |\n", f.Name, f.Value, anchor, ratio, orDash(f.Target), met)
		}
	}
	w("\n")
	for _, o := range r.Outcomes {
		w("## %s\n\n", o.Bench.Title())
		if o.Err != nil {
			w("**This benchmark failed** after %s:\n\n```\n%s\n```\n\n", o.Duration.Round(time.Millisecond), o.Err)
			continue
		}
		w("%s\n", strings.TrimRight(o.Result.Details, "\n"))
		w("\nRan for %s.\n\n", o.Duration.Round(time.Second))
		if len(o.Result.Reproduce) > 0 {
			w("How to reproduce:\n\n```sh\n%s\n```\n\n", strings.Join(o.Result.Reproduce, "\n"))
		}
	}
	w("## How to reproduce everything\n\n")
	w("```sh\nbash scripts/setup.sh   # Debian packages: containerd, runc, busybox-static, …\nmake bench              # builds bin/berth, runs every benchmark, rewrites BENCHMARKS.md\n```\n\n")
	w("`go run ./bench/cmd/berthbench -h` lists the flags: `-run REGEXP` selects benchmarks by name (add `-merge` to replace only their " +
		"sections and summary rows in the existing file), and each benchmark has its own " +
		"(`-launch.tasks`, `-startup.runs`, …). Every benchmark runs on loopback only and removes what it started " +
		"(processes, mounts, network namespaces, cgroups, data dirs), also when it fails or is interrupted.\n")
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "\\|")
}
