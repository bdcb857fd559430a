package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Docker-stats-shaped statistics of a container, as the metadata endpoint's
// /stats serves them (Docker Engine API v1.30 ContainerStats, plus ECS's
// network_rate_stats), read from the container's cgroup (v1: cpuacct, cpu,
// memory, pids) and its task's eth0 counters (/proc/<pid>/net/dev of any
// process in the task's network namespace).

type dockerStats struct {
	Read         time.Time           `json:"read"`
	PreRead      time.Time           `json:"preread"`
	PidsStats    pidsStats           `json:"pids_stats"`
	BlkioStats   blkioStats          `json:"blkio_stats"`
	NumProcs     uint32              `json:"num_procs"`
	StorageStats struct{}            `json:"storage_stats"`
	CPUStats     cpuStats            `json:"cpu_stats"`
	PreCPUStats  cpuStats            `json:"precpu_stats"`
	MemoryStats  memoryStats         `json:"memory_stats"`
	Name         string              `json:"name"`
	ID           string              `json:"id"`
	Networks     map[string]netStats `json:"networks,omitempty"`
	NetworkRate  *netRateStats       `json:"network_rate_stats,omitempty"`
}

type pidsStats struct {
	Current uint64 `json:"current,omitempty"`
}

type blkioStats struct {
	IOServiceBytesRecursive []struct{} `json:"io_service_bytes_recursive"`
	IOServicedRecursive     []struct{} `json:"io_serviced_recursive"`
}

type cpuStats struct {
	CPUUsage       cpuUsage       `json:"cpu_usage"`
	SystemUsage    uint64         `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32         `json:"online_cpus,omitempty"`
	ThrottlingData throttlingData `json:"throttling_data"`
}

type cpuUsage struct {
	TotalUsage        uint64   `json:"total_usage"`
	PercpuUsage       []uint64 `json:"percpu_usage,omitempty"`
	UsageInKernelmode uint64   `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64   `json:"usage_in_usermode"`
}

type throttlingData struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

type memoryStats struct {
	Usage    uint64            `json:"usage,omitempty"`
	MaxUsage uint64            `json:"max_usage,omitempty"`
	Stats    map[string]uint64 `json:"stats,omitempty"`
	Limit    uint64            `json:"limit,omitempty"`
}

type netStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

type netRateStats struct {
	RxBytesPerSec float64 `json:"rx_bytes_per_sec"`
	TxBytesPerSec float64 `json:"tx_bytes_per_sec"`
}

// statsReader reads cgroups v1 under cgroupRoot (one directory per
// controller) and process files under procRoot.
type statsReader struct {
	cgroupRoot string
	procRoot   string
}

func defaultStatsReader() statsReader {
	return statsReader{cgroupRoot: "/sys/fs/cgroup", procRoot: "/proc"}
}

type statsInput struct {
	cgroup          string // the task's cgroup path, e.g. /berth/<task id>
	containerID     string // the container's cgroup is cgroup/containerID
	name            string
	pid             uint32 // a process in the task's network namespace, 0: look in the cgroup
	taskMemoryBytes int64  // the task's hard limit
	// stopped: the container has exited. A container not yet known to be
	// RUNNING is read all the same: its process may already be asking for
	// its own stats before the agent records that it started.
	stopped bool
}

// clkTck is USER_HZ, the unit of /proc/stat and cpuacct.stat.
const clkTck = 100

// read takes one sample; prev (may be nil) is the last sample of the same
// container. A stopped container's cgroup is gone: it reads as zeros, as
// Docker's stats of a stopped container do.
func (r statsReader) read(in statsInput, prev *dockerStats, now time.Time) *dockerStats {
	st := &dockerStats{Read: now.UTC(), Name: "/" + in.name, ID: in.containerID}
	if prev != nil {
		st.PreRead = prev.Read
		st.PreCPUStats = prev.CPUStats
	}
	if in.cgroup == "" || in.stopped {
		return st
	}
	cg := filepath.Join(in.cgroup, in.containerID)
	if in.pid == 0 {
		in.pid = r.cgroupPid(cg)
	}
	cpuacct := func(f string) string { return filepath.Join(r.cgroupRoot, "cpuacct", cg, f) }
	st.CPUStats.CPUUsage.TotalUsage = readUint(cpuacct("cpuacct.usage"))
	for _, f := range strings.Fields(readString(cpuacct("cpuacct.usage_percpu"))) {
		v, _ := strconv.ParseUint(f, 10, 64)
		st.CPUStats.CPUUsage.PercpuUsage = append(st.CPUStats.CPUUsage.PercpuUsage, v)
	}
	if _, err := os.Stat(cpuacct("cpuacct.usage_user")); err == nil {
		st.CPUStats.CPUUsage.UsageInUsermode = readUint(cpuacct("cpuacct.usage_user"))
		st.CPUStats.CPUUsage.UsageInKernelmode = readUint(cpuacct("cpuacct.usage_sys"))
	} else { // older kernels: ticks in cpuacct.stat, as Docker reads them
		kv := readKV(cpuacct("cpuacct.stat"))
		st.CPUStats.CPUUsage.UsageInUsermode = kv["user"] * (1e9 / clkTck)
		st.CPUStats.CPUUsage.UsageInKernelmode = kv["system"] * (1e9 / clkTck)
	}
	st.CPUStats.SystemUsage, st.CPUStats.OnlineCPUs = r.systemCPU()
	thr := readKV(filepath.Join(r.cgroupRoot, "cpu", cg, "cpu.stat"))
	st.CPUStats.ThrottlingData = throttlingData{Periods: thr["nr_periods"], ThrottledPeriods: thr["nr_throttled"], ThrottledTime: thr["throttled_time"]}

	mem := func(dir, f string) string { return filepath.Join(r.cgroupRoot, "memory", dir, f) }
	st.MemoryStats.Usage = readUint(mem(cg, "memory.usage_in_bytes"))
	st.MemoryStats.MaxUsage = readUint(mem(cg, "memory.max_usage_in_bytes"))
	st.MemoryStats.Stats = readKV(mem(cg, "memory.stat"))
	// The effective limit: the container's own, if it has one below the
	// task's, else the task's (v1 shows "no limit" as a huge number).
	limit := readUint(mem(cg, "memory.limit_in_bytes"))
	if taskLimit := readUint(mem(in.cgroup, "memory.limit_in_bytes")); taskLimit > 0 && (limit == 0 || taskLimit < limit) {
		limit = taskLimit
	}
	if in.taskMemoryBytes > 0 && (limit == 0 || uint64(in.taskMemoryBytes) < limit) {
		limit = uint64(in.taskMemoryBytes)
	}
	st.MemoryStats.Limit = limit
	st.PidsStats.Current = readUint(filepath.Join(r.cgroupRoot, "pids", cg, "pids.current"))

	if in.pid != 0 {
		if eth0, ok := r.netDev(in.pid, "eth0"); ok {
			st.Networks = map[string]netStats{"eth0": eth0}
			rate := &netRateStats{}
			if prev != nil && prev.Networks != nil {
				if dt := st.Read.Sub(prev.Read).Seconds(); dt > 0 {
					p := prev.Networks["eth0"]
					rate.RxBytesPerSec = float64(eth0.RxBytes-min(eth0.RxBytes, p.RxBytes)) / dt
					rate.TxBytesPerSec = float64(eth0.TxBytes-min(eth0.TxBytes, p.TxBytes)) / dt
				}
			}
			st.NetworkRate = rate
		}
	}
	return st
}

// systemCPU is the host's CPU time in nanoseconds (the first line of
// /proc/stat) and its number of CPUs, as Docker reports them.
func (r statsReader) systemCPU() (uint64, uint32) {
	b, err := os.ReadFile(filepath.Join(r.procRoot, "stat"))
	if err != nil {
		return 0, 0
	}
	var total uint64
	var cpus uint32
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		for _, v := range f[1:min(len(f), 8)] { // user nice system idle iowait irq softirq
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	return total * (1e9 / clkTck), cpus
}

// cgroupPid is a process of the container's cgroup (its pids controller's
// cgroup.procs), 0 if it has none or the cgroup does not exist (yet).
func (r statsReader) cgroupPid(cg string) uint32 {
	first, _, _ := strings.Cut(readString(filepath.Join(r.cgroupRoot, "pids", cg, "cgroup.procs")), "\n")
	pid, _ := strconv.ParseUint(first, 10, 32)
	return uint32(pid)
}

// netDev reads one interface's counters from /proc/<pid>/net/dev.
func (r statsReader) netDev(pid uint32, ifname string) (netStats, bool) {
	b, err := os.ReadFile(filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10), "net", "dev"))
	if err != nil {
		return netStats{}, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != ifname {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return netStats{}, false
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		// receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop …
		return netStats{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}, true
	}
	return netStats{}, false
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readUint(path string) uint64 {
	v, _ := strconv.ParseUint(readString(path), 10, 64)
	return v
}

// readKV reads "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
func readKV(path string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(readString(path), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}
