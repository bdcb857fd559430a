package devenv

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// CleanupDataDir kills every process that names dir on its command line
// (containerd and the shims of its containers), unmounts what is mounted
// under it, removes the sandboxes and cgroups of its tasks, and deletes it.
func CleanupDataDir(dir string) {
	if dir == "" || dir == "/" {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Tasks of the env: their ids name the log directories and the
	// sandbox records, of `berth dev`'s agent (dir/agent) or of a
	// standalone agent's data dir (dir itself).
	ids := taskIDs(dir)
	time.Sleep(200 * time.Millisecond)
	for _, id := range ids {
		for _, pidFile := range CgroupProcs(agent.CgroupPath(id)) {
			_ = syscall.Kill(pidFile, syscall.SIGKILL)
		}
	}
	for _, m := range mountsUnder(dir) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	for _, id := range ids {
		_ = netns.DeleteSandbox(agent.SandboxName(id))
		for i := 0; i < 20; i++ {
			if runtime.DeleteTaskCgroup(agent.CgroupPath(id)) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// VPC namespaces left without interfaces (sandboxes go asynchronously,
	// so a VPC may take a moment to empty).
	for i := 0; i < 20 && vpcsWithENIs(dir); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	_ = netns.PruneVPCs()
	_ = os.RemoveAll(dir)
}

// taskIDs are the ids of the tasks an agent data dir (or berth dev's, with
// the agent's below it) has logs or sandbox records of.
func taskIDs(dir string) []string {
	seen := map[string]bool{}
	var out []string
	for _, agentDir := range []string{filepath.Join(dir, "agent"), dir} {
		for _, sub := range []string{"logs", "sandboxes"} {
			entries, _ := os.ReadDir(filepath.Join(agentDir, sub))
			for _, e := range entries {
				id := strings.TrimSuffix(e.Name(), ".json")
				if !seen[id] && !strings.HasPrefix(id, ".") {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	return out
}

// vpcsWithENIs reports whether the env's recorded sandboxes had ENIs whose
// VPC namespace still holds interfaces; it is a bounded wait, not a check.
func vpcsWithENIs(dir string) bool {
	if err := netns.PruneVPCs(); err != nil {
		return true
	}
	entries, _ := os.ReadDir(netns.RunDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netns.VPCNamespacePrefix) {
			return true
		}
	}
	return false
}

// CgroupProcs lists the processes in a cgroup (path as in
// /sys/fs/cgroup/pids/<path>) and in the cgroups below it.
func CgroupProcs(path string) []int {
	var pids []int
	_ = filepath.Walk(filepath.Join("/sys/fs/cgroup/pids", path), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscanf(f, "%d", &pid); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
