package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readCgroupFile(t *testing.T, controller, path, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, path, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestTaskCgroup(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name      string
		cpuUnits  int
		memoryMiB int
		wantQuota string
		wantLimit string
	}{
		{name: "quarter vCPU 512 MiB", cpuUnits: 256, memoryMiB: 512, wantQuota: "25000", wantLimit: "536870912"},
		{name: "two vCPU", cpuUnits: 2048, memoryMiB: 16, wantQuota: "200000", wantLimit: "16777216"},
		{name: "tiny cpu clamps to 1ms", cpuUnits: 2, wantQuota: "1000", wantLimit: "9223372036854771712"},
		{name: "no limits", wantQuota: "-1", wantLimit: "9223372036854771712"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/" + uniqueID("berthtest") + "/task"
			t.Cleanup(func() {
				for _, p := range []string{path, filepath.Dir(path)} {
					if err := DeleteTaskCgroup(p); err != nil {
						t.Error(err)
					}
				}
			})
			for i := range 2 { // idempotent
				if err := CreateTaskCgroup(path, tc.cpuUnits, tc.memoryMiB); err != nil {
					t.Fatalf("CreateTaskCgroup #%d: %v", i+1, err)
				}
			}
			if got := readCgroupFile(t, "cpu", path, "cpu.cfs_quota_us"); got != tc.wantQuota {
				t.Errorf("quota %s, want %s", got, tc.wantQuota)
			}
			if got := readCgroupFile(t, "cpu", path, "cpu.cfs_period_us"); got != "100000" {
				t.Errorf("period %s", got)
			}
			if got := readCgroupFile(t, "memory", path, "memory.limit_in_bytes"); got != tc.wantLimit {
				t.Errorf("memory limit %s, want %s", got, tc.wantLimit)
			}
			if u, err := TaskCgroupCPUUsage(path); err != nil || u != 0 {
				t.Errorf("usage of an empty cgroup = %v, %v", u, err)
			}
			// Leftover (empty) container cgroups do not block deletion,
			// nor do the ones runc makes in the unified hierarchy.
			for _, dir := range []string{
				filepath.Join("/sys/fs/cgroup/memory", path, "ctr"),
				filepath.Join("/sys/fs/cgroup/unified", path, "ctr"),
			} {
				if _, err := os.Stat(filepath.Dir(filepath.Dir(dir))); err != nil {
					continue // no such hierarchy here
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 {
				if err := DeleteTaskCgroup(path); err != nil {
					t.Fatalf("DeleteTaskCgroup #%d: %v", i+1, err)
				}
			}
			for _, h := range []string{"cpu", "memory", "unified"} {
				if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, path)); !os.IsNotExist(err) {
					t.Fatalf("cgroup still there in %s: %v", h, err)
				}
			}
		})
	}
	if err := CreateTaskCgroup("relative/path", 0, 0); err == nil {
		t.Error("relative path accepted")
	}
	if err := CreateTaskCgroup("/", 0, 0); err == nil {
		t.Error("root cgroup accepted")
	}
}
