package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const cfsPeriod = 100000 // µs

// ErrCgroupV2 is returned on hosts with only the unified (v2) hierarchy,
// which berth's task cgroups do not support yet.
var ErrCgroupV2 = errors.New("cgroups v2 (unified) only host: berth task cgroups need cgroups v1")

// pather is implemented by cgroup1 subsystems that live in a directory.
type pather interface {
	cgroup1.Subsystem
	Path(path string) string
}

func checkCgroupV1(path string) error {
	if cgroups.Mode() == cgroups.Unified {
		return ErrCgroupV2
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		return fmt.Errorf("task cgroup path %q: must be absolute and not the root", path)
	}
	return nil
}

// CreateTaskCgroup creates (or updates) the cgroup of a task in every v1
// hierarchy. cpuUnits are ECS CPU units: 1024 is one vCPU, enforced as a CFS
// quota of cpuUnits*100000/1024 µs per 100000 µs and as cpu.shares of
// cpuUnits (so contended tasks share CPU by their units); memoryMiB is a hard
// memory limit. Zero means no limit. Calling it again with the same values
// is harmless.
func CreateTaskCgroup(path string, cpuUnits int, memoryMiB int) error {
	if err := checkCgroupV1(path); err != nil {
		return fmt.Errorf("create task cgroup: %w", err)
	}
	if cpuUnits < 0 || memoryMiB < 0 {
		return fmt.Errorf("create task cgroup %s: negative cpu (%d) or memory (%d)", path, cpuUnits, memoryMiB)
	}
	period := uint64(cfsPeriod)
	quota := int64(-1)
	if cpuUnits > 0 {
		quota = max(int64(cpuUnits)*cfsPeriod/1024, 1000) // the kernel's minimum is 1 ms
	}
	limit := int64(-1)
	if memoryMiB > 0 {
		limit = int64(memoryMiB) << 20
	}
	// Shares weigh tasks against each other when the host's CPUs are
	// contended, in proportion to their units (the quota only caps them).
	shares := uint64(max(cpuUnits, 2))
	res := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Period: &period, Quota: &quota, Shares: &shares},
		Memory: &specs.LinuxMemory{Limit: &limit},
	}
	if _, err := cgroup1.New(cgroup1.StaticPath(path), res); err != nil {
		return fmt.Errorf("create task cgroup %s: %w", path, err)
	}
	return nil
}

// DeleteTaskCgroup removes a task's cgroup, with any empty child cgroups
// left by its containers, from every hierarchy. It fails if processes are
// still in it. Deleting a cgroup that does not exist is not an error.
func DeleteTaskCgroup(path string) error {
	if err := checkCgroupV1(path); err != nil {
		return fmt.Errorf("delete task cgroup: %w", err)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete task cgroup %s: %w", path, err)
	}
	for _, s := range cg.Subsystems() {
		if p, ok := s.(pather); ok {
			if err := removeChildCgroups(p.Path(path)); err != nil {
				return fmt.Errorf("delete task cgroup %s: %w", path, err)
			}
		}
	}
	if err := cg.Delete(); err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("delete task cgroup %s: %w", path, err)
	}
	return deleteUnifiedCgroup(path)
}

// deleteUnifiedCgroup removes path from the cgroup2 hierarchy of a hybrid
// host (/sys/fs/cgroup/unified), where runc also creates every container's
// cgroup (and so the task's) although no controller is enabled there.
func deleteUnifiedCgroup(path string) error {
	if cgroups.Mode() != cgroups.Hybrid {
		return nil
	}
	root, err := unifiedMountpoint()
	if err != nil || root == "" {
		return err
	}
	dir := filepath.Join(root, path)
	if err := removeChildCgroups(dir); err != nil {
		return fmt.Errorf("delete task cgroup %s: unified hierarchy: %w", path, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete task cgroup %s: unified hierarchy: %w", path, err)
	}
	return nil
}

// unifiedMountpoint returns where the cgroup2 hierarchy is mounted, or "".
func unifiedMountpoint() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) > 4 {
			return f[4], nil
		}
	}
	return "", nil
}

// removeChildCgroups removes the cgroup directories below dir, deepest
// first. Removing a cgroup with processes in it fails (EBUSY).
func removeChildCgroups(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Reverse(dirs) // WalkDir lists parents before children
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove child cgroup: %w", err)
		}
	}
	return nil
}

// TaskCgroupCPUUsage returns the CPU time used by all processes of the
// task cgroup and its children (cpuacct.usage).
func TaskCgroupCPUUsage(path string) (time.Duration, error) {
	if err := checkCgroupV1(path); err != nil {
		return 0, fmt.Errorf("task cgroup cpu usage: %w", err)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path),
		cgroup1.WithHierarchy(cgroup1.SingleSubsystem(cgroup1.Default, cgroup1.Cpuacct)))
	if err != nil {
		return 0, fmt.Errorf("task cgroup %s cpu usage: %w", path, err)
	}
	st, err := cg.Stat()
	if err != nil {
		return 0, fmt.Errorf("task cgroup %s cpu usage: %w", path, err)
	}
	if st.CPU == nil || st.CPU.Usage == nil {
		return 0, fmt.Errorf("task cgroup %s cpu usage: no cpuacct statistics", path)
	}
	return time.Duration(st.CPU.Usage.Total), nil
}

// v1Subsystems are the host's v1 hierarchies, read once: they are mounted
// before berth starts and do not move.
var v1Subsystems = sync.OnceValues(cgroup1.Default)

// cpuCgroupDirs returns the directories of cgroup path in the v1 cpu and
// cpuacct hierarchies (one when they are mounted together): where a process
// whose CPU time counts against the task's quota, and in its usage, goes.
func cpuCgroupDirs(path string) ([]string, error) {
	if err := checkCgroupV1(path); err != nil {
		return nil, err
	}
	subsystems, err := v1Subsystems()
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, s := range subsystems {
		if p, ok := s.(pather); ok && (s.Name() == cgroup1.Cpu || s.Name() == cgroup1.Cpuacct) {
			if d := p.Path(path); !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	if len(dirs) == 0 {
		return nil, errors.New("no v1 cpu cgroup hierarchy mounted")
	}
	return dirs, nil
}

// memoryCgroupDir returns the directory of cgroup path in the v1 memory
// hierarchy.
func memoryCgroupDir(path string) (string, error) {
	if cgroups.Mode() == cgroups.Unified {
		return "", ErrCgroupV2
	}
	subsystems, err := cgroup1.Default()
	if err != nil {
		return "", fmt.Errorf("cgroup hierarchies: %w", err)
	}
	for _, s := range subsystems {
		if p, ok := s.(pather); ok && s.Name() == cgroup1.Memory {
			return p.Path(path), nil
		}
	}
	return "", errors.New("no v1 memory cgroup hierarchy mounted")
}

// oomKills returns the memory.oom_control oom_kill counter of a cgroup:
// how many of its processes the kernel's OOM killer has killed.
func oomKills(path string) (uint64, error) {
	dir, err := memoryCgroupDir(path)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return 0, fmt.Errorf("read oom counter: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s memory.oom_control: %w", dir, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s/memory.oom_control has no oom_kill counter", dir)
}

// TaskCgroupMemoryUsage returns the memory the task cgroup and its children
// use now (memory.usage_in_bytes of the v1 memory hierarchy).
func TaskCgroupMemoryUsage(path string) (uint64, error) {
	if err := checkCgroupV1(path); err != nil {
		return 0, fmt.Errorf("task cgroup memory usage: %w", err)
	}
	dir, err := memoryCgroupDir(path)
	if err != nil {
		return 0, fmt.Errorf("task cgroup %s memory usage: %w", path, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return 0, fmt.Errorf("task cgroup %s memory usage: %w", path, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("task cgroup %s memory usage: %w", path, err)
	}
	return n, nil
}
