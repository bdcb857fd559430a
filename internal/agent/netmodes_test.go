package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/demoimage"
	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// Real network modes: containerd, namespaces, the demo image, driven
// through the agent by the fake control plane of agent_test.go.

func requireRealHost(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root, containerd and namespaces; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(demoimage.DefaultBusyboxPath); err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// realHost is a private containerd with the demo image pulled.
type realHost struct {
	rt    *runtime.Runtime
	image string
}

func newRealHost(t *testing.T) *realHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img, err := demoimage.Image(demoimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/demo:latest"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{DataDir: t.TempDir(), Namespace: "berth-test-" + randomHex(t, 4),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rt, err := runtime.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cs, err := rt.List(ctx); err == nil {
			for _, c := range cs {
				if err := rt.Delete(ctx, c.ID); err != nil {
					t.Errorf("cleanup: delete %s: %v", c.ID, err)
				}
			}
		}
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("cleanup: containerd: %v", err)
		}
	})
	if _, err := rt.Pull(ctx, ref); err != nil {
		t.Fatal(err)
	}
	return &realHost{rt: rt, image: ref}
}

// runAgent runs an agent on the host until the test ends or stop is called.
func (h *realHost) runAgent(t *testing.T, srv *fakeServer, sb *HostSandboxes, dataDir string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: dataDir, Server: srv, Runtime: h.rt,
		Sandboxes: sb, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollWait: time.Second})
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			_ = sb.Close() // as the agent's process exiting would
		}
	}
	t.Cleanup(stop)
	return stop
}

// reportsOf returns the reports of one task.
func (s *fakeServer) reportsOf(arn string) []agentapi.StateReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []agentapi.StateReport
	for _, r := range s.reports {
		if r.TaskArn == arn {
			out = append(out, r)
		}
	}
	return out
}

// waitTask waits (long: real pulls and containers) for a task's report of
// status.
func (s *fakeServer) waitTask(t *testing.T, arn, status string) agentapi.StateReport {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		rs := s.reportsOf(arn)
		for _, r := range rs {
			if r.Status == status {
				return r
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, r := range rs {
				got = append(got, r.Status+" "+r.StopCode+" "+r.StoppedReason)
			}
			t.Fatalf("task %s never reported %s; reported %q", arn, status, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// modeTask is an EC2 task of one container in the given network mode.
func modeTask(t *testing.T, mode string, c agentapi.ContainerSpec, ports ...agentapi.PortMapping) agentapi.TaskSpec {
	id := randomHex(t, 16)
	c.Essential = true
	return agentapi.TaskSpec{TaskArn: "arn:aws:ecs:r:1:task/c/" + id, TaskID: id, Region: "r", CPU: 256, MemoryMiB: 128,
		DesiredStatus: agentapi.StatusRunning, LaunchType: "EC2", NetworkMode: mode, PortMappings: ports,
		Containers: []agentapi.ContainerSpec{c}}
}

// hostAddress is a random loopback address, 127.104.x.y.
func hostAddress(t *testing.T) netip.Addr {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return netip.AddrFrom4([4]byte{127, 104, b[0], b[1] | 1})
}

// checkGone fails if anything of the tasks or the bridge network is left.
func checkGone(t *testing.T, sb *HostSandboxes, ids ...string) {
	t.Helper()
	left, err := netns.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if l.VpcID == sb.net.BridgeNetwork || slices.Contains(ids, strings.TrimPrefix(l.Name, "berth-")) {
			t.Errorf("left behind: %s", l)
		}
	}
	if recs, _ := sb.records(); len(recs) > 0 {
		t.Errorf("sandbox records left: %+v", recs)
	}
}

// cleanupNetwork removes what a failed test left of its tasks and bridge.
func cleanupNetwork(t *testing.T, sb *HostSandboxes, ids *[]string) {
	t.Cleanup(func() {
		for _, id := range *ids {
			_ = sb.Delete(agentapi.TaskSpec{TaskID: id})
		}
		err := netns.Cleanup(func(l netns.Leftover) bool {
			return l.VpcID != sb.net.BridgeNetwork && !slices.Contains(*ids, strings.TrimPrefix(l.Name, "berth-"))
		})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return string(b), nil
		}
		lastErr = fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	return "", lastErr
}

// TestBridgeModeTasks runs two copies of a web task with hostPort 0 and a
// task that reads its own metadata, restarts the agent under them, and
// stops them.
func TestBridgeModeTasks(t *testing.T) {
	requireRealHost(t)
	h := newRealHost(t)
	dataDir := t.TempDir()
	addr := hostAddress(t)
	sb := NewHostSandboxesWith(filepath.Join(dataDir, "sandboxes"), nil, HostNetworkConfig{HostAddress: addr})
	var ids []string
	cleanupNetwork(t, sb, &ids)

	web := agentapi.ContainerSpec{Name: "web", Image: h.image, Command: []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
		StopTimeoutSeconds: 2} // httpd as pid 1 ignores SIGTERM
	port := agentapi.PortMapping{ContainerPort: 8080, Protocol: "tcp", ContainerName: "web"}
	a, b := modeTask(t, agentapi.NetworkModeBridge, web, port), modeTask(t, agentapi.NetworkModeBridge, web, port)
	meta := modeTask(t, agentapi.NetworkModeBridge, agentapi.ContainerSpec{Name: "meta", Image: h.image,
		Command: []string{"sh", "-c", `wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task"; echo; ip -4 -o addr show dev eth0`}})
	ids = append(ids, a.TaskID, b.TaskID, meta.TaskID)
	srv := newFakeServer(a, b, meta)
	stop := h.runAgent(t, srv, sb, dataDir)

	ra, rb := srv.waitTask(t, a.TaskArn, agentapi.StatusRunning), srv.waitTask(t, b.TaskArn, agentapi.StatusRunning)
	var ports []int
	for _, r := range []agentapi.StateReport{ra, rb} {
		if len(r.NetworkBindings) != 1 {
			t.Fatalf("bindings %+v, want one", r.NetworkBindings)
		}
		nb := r.NetworkBindings[0]
		if nb.BindIP != addr.String() || nb.ContainerPort != 8080 || nb.Protocol != "tcp" || nb.ContainerName != "web" ||
			nb.HostPort < 49153 || nb.HostPort > 65535 {
			t.Errorf("binding %+v", nb)
		}
		ports = append(ports, nb.HostPort)
		body, err := httpGet(fmt.Sprintf("http://%s:%d/", addr, nb.HostPort))
		if err != nil || body != demoimage.IndexHTML {
			t.Errorf("GET host port %d: %q, %v", nb.HostPort, body, err)
		}
	}
	if ports[0] == ports[1] {
		t.Errorf("both tasks got host port %d", ports[0])
	}
	// Every report from the sandbox on carries the bindings.
	for _, r := range srv.reportsOf(a.TaskArn) {
		if r.Status != agentapi.StatusProvisioning && !slices.Equal(r.NetworkBindings, ra.NetworkBindings) {
			t.Errorf("%s report has bindings %+v, want %+v", r.Status, r.NetworkBindings, ra.NetworkBindings)
		}
	}

	t.Run("metadata", func(t *testing.T) {
		srv.waitTask(t, meta.TaskArn, agentapi.StatusStopped)
		b, err := os.ReadFile(LogPath(dataDir, meta.TaskID, "meta"))
		if err != nil {
			t.Fatal(err)
		}
		out := string(b)
		if !strings.Contains(out, `"NetworkMode":"bridge"`) || !strings.Contains(out, `"Name":"meta"`) || !strings.Contains(out, `"LaunchType":"EC2"`) {
			t.Errorf("metadata of a bridge task: %s", out)
		}
		// The address metadata shows is eth0's, from the bridge subnet.
		i := strings.Index(out, `"IPv4Addresses":["`)
		if i < 0 {
			t.Fatalf("no address in %s", out)
		}
		ip, _, _ := strings.Cut(out[i+len(`"IPv4Addresses":["`):], `"`)
		if a, err := netip.ParseAddr(ip); err != nil || !netns.DefaultBridgeSubnet.Contains(a) || !strings.Contains(out, "inet "+ip+"/16") {
			t.Errorf("metadata address %q, eth0: %s", ip, out)
		}
	})

	t.Run("restarted agent keeps the ports", func(t *testing.T) {
		stop()
		srv.mu.Lock()
		srv.known = []agentapi.KnownState{{TaskArn: a.TaskArn, LastStatus: agentapi.StatusRunning},
			{TaskArn: b.TaskArn, LastStatus: agentapi.StatusRunning}}
		srv.mu.Unlock()
		sb2 := NewHostSandboxesWith(filepath.Join(dataDir, "sandboxes"), nil, HostNetworkConfig{HostAddress: addr})
		h.runAgent(t, srv, sb2, dataDir)
		// The old agent's forwarders went with it; the new one's serve.
		for _, p := range ports {
			if body, err := httpGet(fmt.Sprintf("http://%s:%d/", addr, p)); err != nil || body != demoimage.IndexHTML {
				t.Errorf("GET host port %d after restart: %q, %v", p, body, err)
			}
		}
		srv.setDesired(a.TaskArn, agentapi.StatusStopped)
		srv.setDesired(b.TaskArn, agentapi.StatusStopped)
		for i, task := range []agentapi.TaskSpec{a, b} {
			r := srv.waitTask(t, task.TaskArn, agentapi.StatusStopped)
			if len(r.NetworkBindings) != 1 || r.NetworkBindings[0].HostPort != ports[i] {
				t.Errorf("after restart task reports %+v, want host port %d", r.NetworkBindings, ports[i])
			}
		}
		if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(ports[0])).String(), time.Second); err == nil {
			c.Close()
			t.Error("host port still open after the task stopped")
		}
		checkGone(t, sb2, ids...)
	})
}

// TestHostAndNoneModeTasks: a host-mode task sees the host's interfaces, a
// none-mode task only lo.
func TestHostAndNoneModeTasks(t *testing.T) {
	requireRealHost(t)
	h := newRealHost(t)
	dataDir := t.TempDir()
	sb := NewHostSandboxesWith(filepath.Join(dataDir, "sandboxes"), nil, HostNetworkConfig{HostAddress: hostAddress(t)})
	var ids []string
	cleanupNetwork(t, sb, &ids)

	list := agentapi.ContainerSpec{Name: "c", Image: h.image, Command: []string{"sh", "-c", "cat /proc/net/dev; echo ---; env; grep CapEff /proc/self/status"}}
	host := modeTask(t, agentapi.NetworkModeHost, list, agentapi.PortMapping{ContainerPort: 8080, Protocol: "tcp", ContainerName: "c"})
	host.Containers[0].Privileged = true
	none := modeTask(t, agentapi.NetworkModeNone, list)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, allCaps, _ := strings.Cut(string(status), "CapEff:")
	allCaps, _, _ = strings.Cut(allCaps, "\n")
	ids = append(ids, host.TaskID, none.TaskID)
	srv := newFakeServer(host, none)
	h.runAgent(t, srv, sb, dataDir)

	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	hostOnly := ""
	for _, i := range ifaces {
		if i.Name != "lo" {
			hostOnly = i.Name
			break
		}
	}
	if hostOnly == "" {
		t.Fatal("the host has no interface but lo")
	}
	interfaces := func(taskID string) []string {
		b, err := os.ReadFile(LogPath(dataDir, taskID, "c"))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		dev, _, _ := strings.Cut(string(b), "---\n")
		for _, line := range strings.Split(dev, "\n") {
			if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") && !strings.Contains(name, "=") {
				out = append(out, strings.TrimSpace(name))
			}
		}
		return out
	}

	r := srv.waitTask(t, host.TaskArn, agentapi.StatusStopped)
	if got := interfaces(host.TaskID); !slices.Contains(got, hostOnly) || !slices.Contains(got, "lo") {
		t.Errorf("host-mode task sees %v, want the host's %s too", got, hostOnly)
	}
	want := []agentapi.NetworkBinding{{ContainerName: "c", BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 8080, Protocol: "tcp"}}
	if !slices.Equal(r.NetworkBindings, want) {
		t.Errorf("host-mode bindings %+v, want %+v", r.NetworkBindings, want)
	}

	r = srv.waitTask(t, none.TaskArn, agentapi.StatusStopped)
	if got := interfaces(none.TaskID); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("none-mode task sees %v, want lo only", got)
	}
	if len(r.NetworkBindings) != 0 {
		t.Errorf("none-mode bindings %+v", r.NetworkBindings)
	}
	b, _ := os.ReadFile(LogPath(dataDir, none.TaskID, "c"))
	if strings.Contains(string(b), "ECS_CONTAINER_METADATA_URI") || !strings.Contains(string(b), "AWS_EXECUTION_ENV=AWS_ECS_EC2") {
		t.Errorf("none-mode environment: %s", b)
	}
	// The host-mode task's container is privileged, the other not.
	if hb, _ := os.ReadFile(LogPath(dataDir, host.TaskID, "c")); !strings.Contains(string(hb), "CapEff:"+allCaps+"\n") {
		t.Errorf("privileged container's capabilities, want%s: %s", allCaps, hb)
	}
	if strings.Contains(string(b), "CapEff:"+allCaps+"\n") {
		t.Errorf("unprivileged container has every capability: %s", b)
	}
	checkGone(t, sb, ids...)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/cpu", CgroupPath(host.TaskID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host-mode task's cgroup left: %v", err)
	}
}

// TestSweepBridgeSandbox: what a crashed agent left of a bridge task (its
// namespace, its endpoint on the bridge network, the network itself, its
// record) is removed by the next agent's Sweep; Create is idempotent and
// keeps the address and ports meanwhile.
func TestSweepBridgeSandbox(t *testing.T) {
	requireRealHost(t)
	dir := filepath.Join(t.TempDir(), "sandboxes")
	addr := hostAddress(t)
	sb := NewHostSandboxesWith(dir, nil, HostNetworkConfig{HostAddress: addr})
	spec := modeTask(t, agentapi.NetworkModeBridge, agentapi.ContainerSpec{Name: "c"},
		agentapi.PortMapping{ContainerPort: 80, Protocol: "tcp", ContainerName: "c"},
		agentapi.PortMapping{ContainerPort: 53, Protocol: "udp", ContainerName: "c", HostPort: 5353})
	ids := []string{spec.TaskID}
	cleanupNetwork(t, sb, &ids)
	info, err := sb.Create(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Bindings) != 2 || info.Bindings[1].HostPort != 5353 || info.Bindings[1].Protocol != "udp" ||
		info.Network != sb.net.BridgeNetwork || info.Address != "172.17.0.2" || info.NetNS == "" {
		t.Fatalf("sandbox %+v", info)
	}
	again, err := sb.Create(spec, nil)
	if err != nil || !slices.Equal(again.Bindings, info.Bindings) || again.Address != info.Address {
		t.Fatalf("second Create: %+v, %v; want %+v", again, err, info)
	}
	hostPort := netip.AddrPortFrom(addr, uint16(info.Bindings[0].HostPort)).String()
	// Nothing serves the container port, so the forwarder may reset the
	// connection as soon as it has accepted it (before Dial returns, on a
	// loaded host): a reset still shows the port is published, a refusal
	// would not.
	c, err := net.DialTimeout("tcp", hostPort, time.Second)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("host port not published: %v", err)
	}
	if c != nil {
		c.Close()
	}

	_ = sb.Close() // the agent crashes
	next := NewHostSandboxesWith(dir, nil, HostNetworkConfig{HostAddress: addr})
	if err := next.Sweep(func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	checkGone(t, next, spec.TaskID)
	if c, err := net.DialTimeout("tcp", hostPort, 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("host port open after the sweep")
	}
}
