package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/netns"
)

// The task metadata endpoint (v4, and v3 on the same server) and the task
// role credentials endpoint, as the ECS agent serves them to Fargate tasks.
//
// One HTTP server per VPC namespace listens on 169.254.170.2:80 inside it
// (netns.ListenInVPC; tasks reach that address through their gateway). A
// request is answered from the agent's in-memory view of its tasks: each
// task's goroutine publishes a snapshot of its state (publish) whenever it
// changes. The caller is identified by its source address, which inside a
// VPC namespace is the address of exactly one ENI (the bridge ports drop
// frames whose source is not the port's own), and a path names one of the
// caller's own containers or its own credentials id; anything else is 404.
//
//	/v4/<container>                  the container's metadata
//	/v4/<container>/task             the task's metadata, all containers
//	/v4/<container>/taskWithTags     the same with TaskTags and ContainerInstanceTags
//	/v4/<container>/stats            docker stats of the container (its cgroup, eth0)
//	/v4/<container>/task/stats       docker stats of every container, by DockerId
//	/v3/...                          the same
//	/v2/credentials/<credentials id> the task role's credentials, from the control
//	                                 plane, cached until 5 minutes before they expire
//
// A server is opened when a task of its VPC is published and closed when the
// VPC has no task left here; the netns package also closes it when it
// deletes the VPC namespace, and the next pass (every metadataResync, or at
// the next publish) listens again if tasks are still there.

// MetadataPort is the port of the metadata server at netns.MetadataAddr.
const MetadataPort = 80

// metadataResync is how often the servers are checked against the tasks.
const metadataResync = 2 * time.Second

// credentialsMargin: cached credentials are fetched again this long before
// they expire.
const credentialsMargin = 5 * time.Minute

// MetadataNetwork opens the metadata listener of a VPC; the default listens
// on netns.MetadataAddr:MetadataPort inside the VPC's namespace.
type MetadataNetwork interface {
	ListenMetadata(vpcID string) (net.Listener, error)
}

type hostMetadataNetwork struct{}

func (hostMetadataNetwork) ListenMetadata(vpcID string) (net.Listener, error) {
	return netns.ListenInVPC(vpcID, "tcp4", netip.AddrPortFrom(netns.MetadataAddr, MetadataPort).String())
}

// CredentialsSource fetches a task's role credentials from the control
// plane (agentapi.Client.TaskCredentials).
type CredentialsSource interface {
	TaskCredentials(ctx context.Context, r agentapi.TaskCredentialsRequest) (agentapi.TaskCredentials, error)
}

// metaTask is a snapshot of one task as its goroutine last published it.
type metaTask struct {
	spec       agentapi.TaskSpec
	network    string // bridge mode: the bridge network (see where)
	address    string // bridge mode: its address there
	bindings   []agentapi.NetworkBinding
	known      string
	desired    string
	cgroup     string
	pullStart  *time.Time
	pullStop   *time.Time
	execStop   *time.Time
	containers []metaContainer
}

type metaContainer struct {
	spec      agentapi.ContainerSpec
	id        string
	status    string
	digest    string
	exitCode  *int
	pid       uint32
	health    string
	startedAt *time.Time
}

// where is the VPC (or bridge network) whose metadata server answers the
// task, and the task's address there; "" if none does.
func (t *metaTask) where() (network, address string) {
	if e := t.spec.ENI; e != nil {
		return e.VpcID, e.PrivateIP
	}
	return t.network, t.address
}

// metaSnapshot copies what the metadata endpoint shows of the task; only
// the task's goroutine calls it.
func (t *managedTask) metaSnapshot() *metaTask {
	t.mu.Lock()
	desired := t.desired.DesiredStatus
	t.mu.Unlock()
	m := &metaTask{spec: t.spec, known: t.known, desired: desired, cgroup: t.cgroup,
		pullStart: t.pullStarted, pullStop: t.pullStopped, execStop: t.execStopped,
		network: t.network, address: t.address, bindings: t.bindings}
	for _, c := range t.containers {
		mc := metaContainer{spec: c.spec, id: c.id, status: c.status, pid: c.pid, health: c.health}
		if c.image != nil {
			mc.digest = c.image.Digest
		}
		if c.exit != nil {
			code := c.exit.Code
			mc.exitCode = &code
		}
		if !c.startedAt.IsZero() {
			at := c.startedAt
			mc.startedAt = &at
		}
		m.containers = append(m.containers, mc)
	}
	return m
}

// metadataService owns the metadata servers of this agent and what they
// serve.
type metadataService struct {
	a     *Agent
	log   *slog.Logger
	net   MetadataNetwork
	creds CredentialsSource
	stats statsReader

	mu      sync.Mutex
	closed  bool
	tasks   map[string]*metaTask  // by task ARN
	servers map[string]*vpcServer // by VPC id
	prev    map[string]*dockerStats
	cache   map[string]*credEntry // by credentials id
	wake    chan struct{}
	serving sync.WaitGroup // the servers' Serve goroutines
	api     apiProxy       // berth's API for tasks (apiproxy.go)

	listening sync.Mutex // held while a listener is being opened
}

type vpcServer struct {
	vpcID string
	srv   *http.Server
	done  chan struct{} // closed when Serve returned
}

type credEntry struct {
	mu    sync.Mutex // held while fetching
	creds agentapi.TaskCredentials
	ok    bool
}

func newMetadataService(a *Agent) *metadataService {
	n := a.cfg.MetadataNetwork
	if n == nil {
		n = hostMetadataNetwork{}
	}
	return &metadataService{a: a, log: a.log.With("component", "metadata"), net: n, creds: a.cfg.Credentials,
		stats: defaultStatsReader(), tasks: map[string]*metaTask{}, servers: map[string]*vpcServer{},
		prev: map[string]*dockerStats{}, cache: map[string]*credEntry{}, wake: make(chan struct{}, 1)}
}

// serves reports whether the task reaches a metadata server: awsvpc tasks
// in their VPC, bridge-mode tasks on the bridge network. Host-mode tasks
// (169.254.170.2 is not on the host) and none-mode tasks (no network) have
// none, nor role credentials: not served yet for host mode.
func (m *metadataService) serves(spec agentapi.TaskSpec) bool {
	return spec.ENI != nil || spec.NetworkMode == agentapi.NetworkModeBridge
}

// env is what a container learns of the endpoints.
func (m *metadataService) env(spec agentapi.TaskSpec, containerID string) []string {
	if !m.serves(spec) {
		return nil
	}
	base := "http://" + netns.MetadataAddr.String()
	env := []string{
		"ECS_CONTAINER_METADATA_URI_V4=" + base + "/v4/" + containerID,
		"ECS_CONTAINER_METADATA_URI=" + base + "/v3/" + containerID,
	}
	if spec.TaskRoleArn != "" && spec.CredentialsID != "" {
		env = append(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="+credentialsPath+spec.CredentialsID)
	}
	return env
}

const credentialsPath = "/v2/credentials/"

// publish records a task's latest snapshot and makes sure its VPC's server
// listens before the task's containers could ask it anything. A STOPPED
// task is forgotten before its report reaches the control plane, which
// then frees its address for another task.
func (m *metadataService) publish(t *metaTask) {
	if t.known == agentapi.StatusStopped {
		m.forget(t.spec)
		return
	}
	m.mu.Lock()
	m.tasks[t.spec.TaskArn] = t
	m.mu.Unlock()
	if network, _ := t.where(); network != "" {
		m.ensure(network)
	}
}

// forget drops a task that stopped.
func (m *metadataService) forget(spec agentapi.TaskSpec) {
	m.mu.Lock()
	t := m.tasks[spec.TaskArn]
	delete(m.tasks, spec.TaskArn)
	if t != nil {
		for _, c := range t.containers {
			delete(m.prev, c.id)
		}
	}
	if spec.CredentialsID != "" {
		delete(m.cache, spec.CredentialsID)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// ensure opens the VPC's server unless it is serving. The listener is
// opened without holding the service's lock (it waits for the VPC's lock
// in netns), so requests are not held up meanwhile.
func (m *metadataService) ensure(vpcID string) {
	m.listening.Lock() // one opening at a time
	defer m.listening.Unlock()
	if vpcID == "" || !m.needsServer(vpcID) {
		return
	}
	l, err := m.net.ListenMetadata(vpcID)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			m.log.Debug("no VPC namespace for the metadata server yet", "vpc", vpcID)
		} else {
			m.log.Warn("metadata server", "vpc", vpcID, "err", err)
		}
		return
	}
	s := &vpcServer{vpcID: vpcID, done: make(chan struct{})}
	s.srv = &http.Server{Handler: m.handler(vpcID), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = l.Close()
		return
	}
	m.servers[vpcID] = s
	m.serving.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.serving.Done()
		defer close(s.done)
		err := s.srv.Serve(l)
		_ = s.srv.Close() // the connections, once the listener is gone
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Debug("metadata server stopped", "vpc", vpcID, "err", err)
		}
	}()
	m.log.Debug("metadata server listening", "vpc", vpcID)
}

// needsServer reports whether the VPC has no serving server (none, or one
// whose listener went with an old namespace) and the agent still runs.
func (m *metadataService) needsServer(vpcID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	s := m.servers[vpcID]
	if s == nil {
		return true
	}
	select {
	case <-s.done:
		delete(m.servers, vpcID)
		return true
	default:
		return false
	}
}

// run keeps a server listening in every VPC with tasks here and none in
// the others, until ctx ends; then it closes them all.
func (m *metadataService) run(ctx context.Context) {
	t := time.NewTicker(metadataResync)
	defer t.Stop()
	defer func() {
		m.mu.Lock()
		m.closed = true
		servers := m.servers
		m.servers = map[string]*vpcServer{}
		m.mu.Unlock()
		for _, s := range servers {
			_ = s.srv.Close()
		}
		m.serving.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
		m.resync()
	}
}

func (m *metadataService) resync() {
	m.mu.Lock()
	want := map[string]bool{}
	for _, t := range m.tasks {
		if network, _ := t.where(); network != "" {
			want[network] = true
		}
	}
	var idle []*vpcServer
	for id, s := range m.servers {
		if !want[id] {
			idle = append(idle, s)
			delete(m.servers, id)
		}
	}
	m.mu.Unlock()
	for _, s := range idle {
		_ = s.srv.Close()
	}
	for id := range want {
		m.ensure(id)
	}
}

// caller finds the task whose ENI in vpcID (or whose address on the bridge
// network vpcID) is the request's source address.
func (m *metadataService) caller(vpcID string, r *http.Request) *metaTask {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	ip = ip.Unmap()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tasks {
		if network, addr := t.where(); network != "" && network == vpcID && addr == ip.String() {
			return t
		}
	}
	return nil
}

func (m *metadataService) handler(vpcID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := m.caller(vpcID, r)
		if t == nil {
			writeMetaError(w, http.StatusNotFound, "no task with this source address")
			return
		}
		if !isMetadataPath(r.URL.Path) {
			m.serveAPI(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeMetaError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		if id, ok := strings.CutPrefix(r.URL.Path, credentialsPath); ok {
			m.serveCredentials(w, r, t, id)
			return
		}
		m.serveMetadata(w, t, r.URL.Path)
	})
}

// serveMetadata answers a /v4 or /v3 path of one of t's containers.
func (m *metadataService) serveMetadata(w http.ResponseWriter, t *metaTask, path string) {
	rest, ok := strings.CutPrefix(path, "/v4/")
	if !ok {
		rest, ok = strings.CutPrefix(path, "/v3/")
	}
	if !ok {
		writeMetaError(w, http.StatusNotFound, "unknown path")
		return
	}
	id, sub, _ := strings.Cut(rest, "/")
	var c *metaContainer
	for i := range t.containers {
		if t.containers[i].id == id {
			c = &t.containers[i]
		}
	}
	if c == nil {
		writeMetaError(w, http.StatusNotFound, "unable to find container for this task: "+id)
		return
	}
	now := time.Now()
	switch sub {
	case "":
		writeMetaJSON(w, containerMetadata(t, c))
	case "task":
		writeMetaJSON(w, taskMetadata(t))
	case "taskWithTags":
		writeMetaJSON(w, taskWithTags(t))
	case "stats":
		writeMetaJSON(w, m.containerStats(t, c, now))
	case "task/stats":
		out := map[string]*dockerStats{}
		for i := range t.containers {
			out[t.containers[i].id] = m.containerStats(t, &t.containers[i], now)
		}
		writeMetaJSON(w, out)
	default:
		writeMetaError(w, http.StatusNotFound, "unknown path")
	}
}

// containerStats reads a container's stats and pairs them with the previous
// read of the same container (preread, precpu_stats, network rates).
func (m *metadataService) containerStats(t *metaTask, c *metaContainer, now time.Time) *dockerStats {
	pid := c.pid
	if pid == 0 { // eth0 is the task's: any running container sees it
		for _, o := range t.containers {
			if o.pid != 0 {
				pid = o.pid
				break
			}
		}
	}
	m.mu.Lock()
	prev := m.prev[c.id]
	m.mu.Unlock()
	st := m.stats.read(statsInput{cgroup: t.cgroup, containerID: c.id, name: c.spec.Name, pid: pid,
		taskMemoryBytes: int64(t.spec.MemoryMiB) << 20, stopped: c.status == agentapi.ContainerStopped}, prev, now)
	m.mu.Lock()
	if _, live := m.tasks[t.spec.TaskArn]; live {
		m.prev[c.id] = st
	}
	m.mu.Unlock()
	return st
}

// serveCredentials answers the task's own credentials id only.
func (m *metadataService) serveCredentials(w http.ResponseWriter, r *http.Request, t *metaTask, id string) {
	if id == "" || t.spec.CredentialsID == "" || id != t.spec.CredentialsID || t.spec.TaskRoleArn == "" {
		writeCredsError(w, http.StatusNotFound, "InvalidIdInRequest", "CredentialsV2Request: Credentials not found")
		return
	}
	creds, err := m.credentials(r.Context(), t)
	if err != nil {
		m.log.Warn("task credentials", "task", t.spec.TaskID, "err", err)
		writeCredsError(w, http.StatusInternalServerError, "InternalServerError", "CredentialsV2Request: Credentials not available")
		return
	}
	writeMetaJSON(w, creds)
}

// credentials returns the task's cached credentials, fetching them when
// there are none or they expire within credentialsMargin.
func (m *metadataService) credentials(ctx context.Context, t *metaTask) (agentapi.TaskCredentials, error) {
	if m.creds == nil {
		return agentapi.TaskCredentials{}, errors.New("no credentials source configured")
	}
	id := t.spec.CredentialsID
	m.mu.Lock()
	e := m.cache[id]
	if e == nil {
		e = &credEntry{}
		m.cache[id] = e
	}
	m.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok && time.Until(e.creds.Expiration) > credentialsMargin {
		return e.creds, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := m.creds.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: m.a.cfg.Node.NodeID, TaskArn: t.spec.TaskArn})
	if err != nil {
		if e.ok && time.Now().Before(e.creds.Expiration) {
			m.log.Warn("refresh task credentials; serving the cached ones", "task", t.spec.TaskID, "err", err)
			return e.creds, nil
		}
		return agentapi.TaskCredentials{}, fmt.Errorf("fetch credentials of %s: %w", t.spec.TaskArn, err)
	}
	e.creds, e.ok = c, true
	return c, nil
}

func writeMetaJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeMetaError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func writeMetaError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(msg)
	_, _ = w.Write(b)
}

func writeCredsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	_, _ = w.Write(b)
}
