package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"

	"github.com/berthdev/berth/internal/agentapi"
)

// fakeMetaNet listens on the host's loopback instead of a VPC namespace.
type fakeMetaNet struct {
	mu     sync.Mutex
	opened map[string][]net.Listener
}

func (f *fakeMetaNet) ListenMetadata(vpcID string) (net.Listener, error) {
	if vpcID == "vpc-gone" {
		return nil, os.ErrNotExist
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opened == nil {
		f.opened = map[string][]net.Listener{}
	}
	f.opened[vpcID] = append(f.opened[vpcID], l)
	return l, nil
}

func (f *fakeMetaNet) last(vpcID string) net.Listener {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls := f.opened[vpcID]
	if len(ls) == 0 {
		return nil
	}
	return ls[len(ls)-1]
}

func (f *fakeMetaNet) count(vpcID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.opened[vpcID])
}

// fakeCreds stands in for the control plane's task-credentials call.
type fakeCreds struct {
	mu      sync.Mutex
	calls   int
	expires time.Duration
	err     error
}

func (f *fakeCreds) TaskCredentials(_ context.Context, r agentapi.TaskCredentialsRequest) (agentapi.TaskCredentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return agentapi.TaskCredentials{}, f.err
	}
	return agentapi.TaskCredentials{RoleArn: "arn:aws:iam::000000000000:role/r", AccessKeyID: "ASIA" + r.TaskArn[len(r.TaskArn)-1:],
		SecretAccessKey: "secret", Token: "token", Expiration: time.Now().Add(f.expires).UTC().Truncate(time.Second)}, nil
}

func (f *fakeCreds) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func metaTestTask(n, vpc, ip string) *metaTask {
	started := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	arn := "arn:aws:ecs:us-east-1:000000000000:task/c/task" + n
	return &metaTask{
		spec: agentapi.TaskSpec{TaskArn: arn, TaskID: "task" + n, ClusterArn: "arn:aws:ecs:us-east-1:000000000000:cluster/c",
			Family: "web", Revision: 3, CPU: 256, MemoryMiB: 512, AvailabilityZone: "us-east-1a",
			TaskRoleArn: "arn:aws:iam::000000000000:role/r", CredentialsID: "creds-" + n, Tags: map[string]string{"team": "a"},
			PortMappings: []agentapi.PortMapping{{ContainerPort: 8080, Protocol: "tcp"}},
			ENI: &agentapi.ENI{VpcID: vpc, SubnetCIDR: "172.31.0.0/20", Gateway: "172.31.0.1", PrivateIP: ip, MAC: "0e:00:00:00:00:01",
				AvailabilityZone: "us-east-1a", PrivateDNSName: "ip-172-31-0-4.ec2.internal"}},
		known: agentapi.StatusRunning, desired: agentapi.StatusRunning, cgroup: "/berth/task" + n,
		pullStart: &started, pullStop: &started,
		containers: []metaContainer{{
			spec: agentapi.ContainerSpec{Name: "app", Image: "busybox:latest", CPU: 128, MemoryMiB: 256,
				ContainerArn: "arn:aws:ecs:us-east-1:000000000000:container/c/task" + n + "/u", Labels: map[string]string{"x": "y"}},
			id: "task" + n + "-app", status: agentapi.ContainerRunning, digest: "sha256:abc", startedAt: &started,
		}},
	}
}

func newMetaTestService(t *testing.T) (*metadataService, *fakeMetaNet, *fakeCreds) {
	t.Helper()
	fn, fc := &fakeMetaNet{}, &fakeCreds{expires: time.Hour}
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n1"}, DataDir: t.TempDir(), MetadataNetwork: fn, Credentials: fc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { // closes the servers the test opened
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a.meta.run(ctx)
	})
	return a.meta, fn, fc
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestMetadataShapes compares the JSON with the fields of AWS's documented
// Fargate v4 responses.
func TestMetadataShapes(t *testing.T) {
	mt := metaTestTask("1", "vpc-1", "172.31.0.4")
	b, err := json.Marshal(taskWithTags(mt))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantTask := sorted("Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Limits", "PullStartedAt",
		"PullStoppedAt", "AvailabilityZone", "LaunchType", "Containers", "TaskTags", "ContainerInstanceTags")
	if k := keys(got); !slices.Equal(k, wantTask) {
		t.Errorf("task fields %v, want %v", k, wantTask)
	}
	for k, want := range map[string]any{"Revision": "3", "KnownStatus": "RUNNING", "LaunchType": "FARGATE",
		"AvailabilityZone": "us-east-1a", "PullStartedAt": "2026-01-02T03:04:05.000000006Z"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if l := got["Limits"].(map[string]any); l["CPU"] != 0.25 || l["Memory"] != 512.0 {
		t.Errorf("Limits = %v, want CPU 0.25 (vCPU), Memory 512", l)
	}
	if tags := got["TaskTags"].(map[string]any); tags["team"] != "a" {
		t.Errorf("TaskTags = %v", tags)
	}
	c := got["Containers"].([]any)[0].(map[string]any)
	wantContainer := sorted("DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels", "DesiredStatus",
		"KnownStatus", "Limits", "CreatedAt", "StartedAt", "Type", "ContainerARN", "Networks")
	if k := keys(c); !slices.Equal(k, wantContainer) {
		t.Errorf("container fields %v, want %v", k, wantContainer)
	}
	if c["Type"] != "NORMAL" || c["DockerId"] != "task1-app" || c["ImageID"] != "sha256:abc" {
		t.Errorf("container %v", c)
	}
	labels := c["Labels"].(map[string]any)
	if labels["com.amazonaws.ecs.task-arn"] != mt.spec.TaskArn || labels["com.amazonaws.ecs.task-definition-version"] != "3" || labels["x"] != "y" {
		t.Errorf("labels %v", labels)
	}
	n := c["Networks"].([]any)[0].(map[string]any)
	wantNet := map[string]any{"NetworkMode": "awsvpc", "IPv4Addresses": []any{"172.31.0.4"}, "AttachmentIndex": 0.0,
		"MACAddress": "0e:00:00:00:00:01", "IPv4SubnetCIDRBlock": "172.31.0.0/20", "PrivateDNSName": "ip-172-31-0-4.ec2.internal",
		"SubnetGatewayIpv4Address": "172.31.0.1/20"}
	if k := keys(n); !slices.Equal(k, keys(wantNet)) {
		t.Errorf("network fields %v, want %v", k, keys(wantNet))
	}
	for k, want := range wantNet {
		if gb, _ := json.Marshal(n[k]); string(gb) != mustJSON(want) {
			t.Errorf("network %s = %s, want %s", k, gb, mustJSON(want))
		}
	}
	// /task has no tags.
	b, _ = json.Marshal(taskMetadata(mt))
	if strings.Contains(string(b), "TaskTags") {
		t.Errorf("/task shows tags: %s", b)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMetadataOwnership: a path answers only the task with the request's
// source address in the server's VPC, and names only its own containers
// and credentials.
func TestMetadataOwnership(t *testing.T) {
	m, _, fc := newMetaTestService(t)
	m.mu.Lock()
	m.tasks["a"] = metaTestTask("1", "vpc-1", "172.31.0.4")
	m.tasks["b"] = metaTestTask("2", "vpc-1", "172.31.0.5")
	m.tasks["c"] = metaTestTask("3", "vpc-2", "172.31.0.6")
	m.mu.Unlock()
	h1 := m.handler("vpc-1")
	cases := []struct {
		name, from, path string
		status           int
		contains         string
	}{
		{"own container", "172.31.0.4", "/v4/task1-app", 200, `"DockerId":"task1-app"`},
		{"own task", "172.31.0.4", "/v4/task1-app/task", 200, `"TaskARN":"arn:aws:ecs:us-east-1:000000000000:task/c/task1"`},
		{"own task v3", "172.31.0.4", "/v3/task1-app/task", 200, `"Family":"web"`},
		{"own tags", "172.31.0.4", "/v4/task1-app/taskWithTags", 200, `"TaskTags":{"team":"a"}`},
		{"own stats", "172.31.0.4", "/v4/task1-app/stats", 200, `"name":"/app"`},
		{"own task stats", "172.31.0.4", "/v4/task1-app/task/stats", 200, `"task1-app":{`},
		{"other task's container", "172.31.0.4", "/v4/task2-app/task", 404, ""},
		{"other task asks for mine", "172.31.0.5", "/v4/task1-app", 404, ""},
		{"unknown source", "172.31.0.9", "/v4/task1-app/task", 404, ""},
		{"same address in another VPC", "172.31.0.6", "/v4/task3-app/task", 404, ""},
		{"unknown path", "172.31.0.4", "/v4/task1-app/nope", 404, ""},
		{"no version", "172.31.0.4", "/task1-app", 404, ""},
		{"own credentials", "172.31.0.4", "/v2/credentials/creds-1", 200, `"AccessKeyId":"ASIA1"`},
		{"other task's credentials", "172.31.0.4", "/v2/credentials/creds-2", 404, "InvalidIdInRequest"},
		{"credentials from unknown source", "172.31.0.9", "/v2/credentials/creds-1", 404, ""},
		{"empty credentials id", "172.31.0.4", "/v2/credentials/", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			r.RemoteAddr = tc.from + ":40000"
			w := httptest.NewRecorder()
			h1.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("GET %s from %s: %d %s, want %d containing %q", tc.path, tc.from, w.Code, w.Body, tc.status, tc.contains)
			}
			if w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", w.Header().Get("Content-Type"))
			}
		})
	}
	if n := fc.n(); n != 1 {
		t.Errorf("credentials fetched %d times, want 1 (only the owner's request)", n)
	}
	r := httptest.NewRequest(http.MethodPost, "/v4/task1-app", nil)
	r.RemoteAddr = "172.31.0.4:1"
	w := httptest.NewRecorder()
	h1.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// TestCredentialsCache: credentials are fetched once and served from the
// cache until 5 minutes before they expire; a failed refresh serves the
// cached ones while they are valid.
func TestCredentialsCache(t *testing.T) {
	m, _, fc := newMetaTestService(t)
	mt := metaTestTask("1", "vpc-1", "172.31.0.4")
	m.mu.Lock()
	m.tasks[mt.spec.TaskArn] = mt
	m.mu.Unlock()
	get := func() (int, agentapi.TaskCredentials) {
		r := httptest.NewRequest(http.MethodGet, "/v2/credentials/creds-1", nil)
		r.RemoteAddr = "172.31.0.4:1"
		w := httptest.NewRecorder()
		m.handler("vpc-1").ServeHTTP(w, r)
		var c agentapi.TaskCredentials
		_ = json.Unmarshal(w.Body.Bytes(), &c)
		return w.Code, c
	}
	for range 3 {
		if code, c := get(); code != 200 || c.SecretAccessKey != "secret" || c.Token != "token" || c.RoleArn == "" {
			t.Fatalf("get: %d %+v", code, c)
		}
	}
	if fc.n() != 1 {
		t.Fatalf("fetched %d times, want 1", fc.n())
	}
	// Within the margin: fetched again on every request.
	fc.mu.Lock()
	fc.expires = 4 * time.Minute
	fc.mu.Unlock()
	m.mu.Lock()
	m.cache["creds-1"].creds.Expiration = time.Now().Add(4 * time.Minute)
	m.mu.Unlock()
	get()
	get()
	if fc.n() != 3 {
		t.Fatalf("fetched %d times, want 3 (refreshed within 5 minutes of expiry)", fc.n())
	}
	fc.mu.Lock()
	fc.err = errors.New("control plane down")
	fc.mu.Unlock()
	if code, c := get(); code != 200 || c.AccessKeyID != "ASIA1" {
		t.Errorf("failed refresh of valid credentials: %d %+v", code, c)
	}
	m.forget(mt.spec)
	m.mu.Lock()
	_, cached := m.cache["creds-1"]
	m.mu.Unlock()
	if cached {
		t.Error("credentials still cached after the task stopped")
	}
}

// TestMetadataServers: a server opens with a VPC's first task, is opened
// again when its listener goes (the VPC namespace was deleted and made
// again), closes when the VPC has no task left, and all close with the agent.
func TestMetadataServers(t *testing.T) {
	m, fn, _ := newMetaTestService(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	defer func() { cancel(); <-done }()

	mt := metaTestTask("1", "vpc-1", "127.0.0.1") // the fake listens on loopback
	m.publish(mt)
	l := fn.last("vpc-1")
	if l == nil {
		t.Fatal("no server after the VPC's first task")
	}
	fetch := func(l net.Listener) (int, string) {
		resp, err := http.Get("http://" + l.Addr().String() + "/v4/task1-app/task")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch(l); code != 200 || !strings.Contains(body, `"TaskARN"`) {
		t.Fatalf("GET /task: %d %s", code, body)
	}
	m.publish(mt)
	if fn.count("vpc-1") != 1 {
		t.Fatalf("listened %d times for one VPC", fn.count("vpc-1"))
	}
	l.Close() // as netns does when it deletes the VPC namespace
	waitFor(t, "a new listener", func() error {
		if fn.count("vpc-1") != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if code, _ := fetch(fn.last("vpc-1")); code != 200 {
		t.Fatalf("after re-listening: %d", code)
	}
	m.publish(metaTestTask("2", "vpc-gone", "127.0.0.2")) // no namespace: no server, no failure
	m.forget(mt.spec)
	waitFor(t, "the idle server to close", func() error {
		c, err := net.Dial("tcp", fn.last("vpc-1").Addr().String())
		if err == nil {
			c.Close()
			return errors.New("still listening")
		}
		return nil
	})
	m.publish(mt)
	if fn.count("vpc-1") != 3 {
		t.Fatalf("listened %d times, want 3", fn.count("vpc-1"))
	}
	cancel()
	<-done
	if _, err := net.Dial("tcp", fn.last("vpc-1").Addr().String()); err == nil {
		t.Error("server still listening after the agent stopped")
	}
	m.publish(mt) // after the agent stopped: no new server
	if fn.count("vpc-1") != 3 {
		t.Error("listened after the agent stopped")
	}
}

// TestMetadataEnv: every container learns the endpoints; only a task with a
// role learns a credentials path.
func TestMetadataEnv(t *testing.T) {
	m, _, _ := newMetaTestService(t)
	spec := metaTestTask("1", "vpc-1", "172.31.0.4").spec
	got := m.env(spec, "task1-app")
	want := []string{"ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/task1-app",
		"ECS_CONTAINER_METADATA_URI=http://169.254.170.2/v3/task1-app",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/creds-1"}
	if !slices.Equal(got, want) {
		t.Errorf("env %v, want %v", got, want)
	}
	spec.TaskRoleArn = ""
	if got := m.env(spec, "task1-app"); len(got) != 2 {
		t.Errorf("env without a role: %v", got)
	}
}

// TestStatsFromCgroup reads a fake cgroup v1 tree and /proc.
func TestStatsFromCgroup(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctr := "cgroup/%s/berth/t1/t1-app/"
	c := func(ctl, f string) string { return strings.Replace(ctr, "%s", ctl, 1) + f }
	write(c("cpuacct", "cpuacct.usage"), "3000000000\n")
	write(c("cpuacct", "cpuacct.usage_percpu"), "1000000000 2000000000 \n")
	write(c("cpuacct", "cpuacct.usage_user"), "2500000000\n")
	write(c("cpuacct", "cpuacct.usage_sys"), "500000000\n")
	write(c("cpu", "cpu.stat"), "nr_periods 10\nnr_throttled 2\nthrottled_time 12345\n")
	write(c("memory", "memory.usage_in_bytes"), "1048576\n")
	write(c("memory", "memory.max_usage_in_bytes"), "2097152\n")
	write(c("memory", "memory.limit_in_bytes"), "9223372036854771712\n")
	write(c("memory", "memory.stat"), "cache 4096\nrss 8192\n")
	write("cgroup/memory/berth/t1/memory.limit_in_bytes", "536870912\n")
	write(c("pids", "pids.current"), "3\n")
	write("proc/stat", "cpu  100 0 50 800 10 0 0 0 0 0\ncpu0 50 0 25 400 5 0 0 0 0 0\ncpu1 50 0 25 400 5 0 0 0 0 0\nintr 1\n")
	netdev := func(rx, tx string) string {
		return "Inter-|   Receive                                                |  Transmit\n" +
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
			"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n" +
			"  eth0:    " + rx + "      10    1    2    0     0          0         0     " + tx + "       20    3    4    0     0       0          0\n"
	}
	write("proc/42/net/dev", netdev("1000", "2000"))
	r := statsReader{cgroupRoot: filepath.Join(root, "cgroup"), procRoot: filepath.Join(root, "proc")}
	in := statsInput{cgroup: "/berth/t1", containerID: "t1-app", name: "app", pid: 42, taskMemoryBytes: 512 << 20}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1 := r.read(in, nil, t0)
	want := dockerStats{Read: t0, Name: "/app", ID: "t1-app", PidsStats: pidsStats{Current: 3},
		CPUStats: cpuStats{CPUUsage: cpuUsage{TotalUsage: 3e9, PercpuUsage: []uint64{1e9, 2e9}, UsageInUsermode: 2.5e9, UsageInKernelmode: 5e8},
			SystemUsage: 960 * 1e7, OnlineCPUs: 2, ThrottlingData: throttlingData{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 12345}},
		MemoryStats: memoryStats{Usage: 1 << 20, MaxUsage: 2 << 20, Limit: 512 << 20, Stats: map[string]uint64{"cache": 4096, "rss": 8192}},
		Networks:    map[string]netStats{"eth0": {RxBytes: 1000, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 2000, TxPackets: 20, TxErrors: 3, TxDropped: 4}},
		NetworkRate: &netRateStats{},
	}
	if mustJSON(s1) != mustJSON(want) {
		t.Errorf("stats\n got %s\nwant %s", mustJSON(s1), mustJSON(want))
	}
	write("proc/42/net/dev", netdev("3000", "2500"))
	s2 := r.read(in, s1, t0.Add(2*time.Second))
	if !s2.PreRead.Equal(t0) || s2.PreCPUStats.CPUUsage.TotalUsage != 3e9 {
		t.Errorf("second read: preread %v precpu %+v", s2.PreRead, s2.PreCPUStats)
	}
	if s2.NetworkRate.RxBytesPerSec != 1000 || s2.NetworkRate.TxBytesPerSec != 250 {
		t.Errorf("network rate %+v, want rx 1000/s tx 250/s", s2.NetworkRate)
	}
	// The docker-stats field names clients read.
	var raw map[string]any
	_ = json.Unmarshal([]byte(mustJSON(s1)), &raw)
	for _, k := range []string{"read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "networks", "pids_stats", "blkio_stats", "num_procs", "name", "id"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats lack %q", k)
		}
	}
	// A container with its own lower limit shows it; a stopped one reads as zeros.
	write(c("memory", "memory.limit_in_bytes"), "134217728\n")
	if s := r.read(in, nil, t0); s.MemoryStats.Limit != 128<<20 {
		t.Errorf("container limit %d, want 128 MiB", s.MemoryStats.Limit)
	}
	// A container whose start the agent has not recorded yet (no pid):
	// its cgroup's process gives eth0.
	write(c("pids", "cgroup.procs"), "42\n43\n")
	early := in
	early.pid = 0
	if s := r.read(early, nil, t0); s.MemoryStats.Usage != 1<<20 || s.Networks["eth0"].RxBytes != 3000 {
		t.Errorf("container not yet recorded as started: %+v", s)
	}
	in.stopped = true
	if s := r.read(in, nil, t0); s.MemoryStats.Usage != 0 || s.Networks != nil {
		t.Errorf("stopped container: %+v", s)
	}
}

// TestMetadataForgetsStopped: a STOPPED task is no longer served, so that a
// later task given its address is never mistaken for it.
func TestMetadataForgetsStopped(t *testing.T) {
	m, _, _ := newMetaTestService(t)
	old := metaTestTask("1", "vpc-1", "172.31.0.4")
	m.publish(old)
	stopped := *old
	stopped.known = agentapi.StatusStopped
	m.publish(&stopped)
	m.publish(metaTestTask("2", "vpc-1", "172.31.0.4"))
	for range 20 { // map order must not matter
		r := httptest.NewRequest(http.MethodGet, "/v4/task2-app/task", nil)
		r.RemoteAddr = "172.31.0.4:1"
		w := httptest.NewRecorder()
		m.handler("vpc-1").ServeHTTP(w, r)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "task/c/task2") {
			t.Fatalf("new task with a reused address: %d %s", w.Code, w.Body)
		}
	}
}

// TestCredentialsWithSDK: the AWS SDK's container credentials provider
// reads what the endpoint serves.
func TestCredentialsWithSDK(t *testing.T) {
	m, _, _ := newMetaTestService(t)
	m.mu.Lock()
	m.tasks["a"] = metaTestTask("1", "vpc-1", "127.0.0.1")
	m.mu.Unlock()
	srv := httptest.NewServer(m.handler("vpc-1"))
	defer srv.Close()
	p := endpointcreds.New(srv.URL + "/v2/credentials/creds-1")
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIA1" || c.SecretAccessKey != "secret" || c.SessionToken != "token" || !c.CanExpire ||
		time.Until(c.Expires) < 50*time.Minute {
		t.Errorf("SDK read %+v", c)
	}
	if _, err := endpointcreds.New(srv.URL + "/v2/credentials/creds-2").Retrieve(context.Background()); err == nil {
		t.Error("SDK read another task's credentials")
	}
}
