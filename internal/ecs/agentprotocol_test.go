package ecs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/store"
)

// A host's long polls after the first ask for deltas: the control plane
// sends only the specs that changed, the client rebuilds the whole list,
// and a stopped task leaves it. The lists equal what a fresh full poll of
// the same node returns.
func TestAgentPollDeltas(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	// Count the specs on the wire through a proxy in front of the server.
	target, _ := url.Parse(e.url)
	var deltas, kept atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Query().Get("delta") != "1" {
			return nil
		}
		deltas.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte(`"presentSame":true`)) && !bytes.Contains(b, []byte(`"present":`)) {
			kept.Add(1) // no task left: the ids of all stayed home
		}
		return nil
	}
	counting := httptest.NewServer(proxy)
	t.Cleanup(counting.Close)
	agent := &agentapi.Client{BaseURL: counting.URL, Token: "agent-token"}
	full := &agentapi.Client{BaseURL: e.url, Token: "agent-token"}

	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "delta")
	ids := func(r agentapi.TasksResponse) []string {
		var out []string
		for _, s := range r.Tasks {
			out = append(out, s.TaskID+"/"+s.DesiredStatus)
		}
		sort.Strings(out)
		return out
	}
	var since int64
	poll := func(step string, want int) agentapi.TasksResponse {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := agent.Tasks(ctx, "n1", since, time.Second)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			since = r.Revision
			if len(r.Tasks) == want || time.Now().After(deadline) {
				f, err := full.Tasks(context.Background(), "n1", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got, wantIDs := strings.Join(ids(r), ","), strings.Join(ids(f), ","); got != wantIDs || len(r.Tasks) != want {
					t.Fatalf("%s: the delta-built list is %q, a full poll %q (want %d tasks)", step, got, wantIDs, want)
				}
				return r
			}
		}
	}
	poll("first poll", 0)
	first := e.run(t, "default", td, 2)
	poll("two placed", 2)
	e.run(t, "default", td, 3)
	poll("five placed", 5)
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: first[0].TaskArn}); err != nil {
		t.Fatal(err)
	}
	r := poll("one stopping", 5)
	stopping := 0
	for _, s := range r.Tasks {
		if s.DesiredStatus == "STOPPED" {
			stopping++
		}
	}
	if stopping != 1 {
		t.Fatalf("%d tasks desired STOPPED in the rebuilt list, want 1", stopping)
	}
	// The host reports it stopped: its assign key goes, and so does the
	// task from the list.
	if err := agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: aws.ToString(first[0].TaskArn), Status: "STOPPED", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	poll("one stopped", 4)
	if deltas.Load() == 0 || kept.Load() == 0 {
		t.Fatalf("%d polls asked for a delta, %d were answered without the ids of all", deltas.Load(), kept.Load())
	}
}

// A report from a host the task is not placed on is refused with 409 (the
// agent stops reporting it); a task that does not exist is 404.
func TestReportFromAnotherNode(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	task := e.run(t, "default", e.register(t, "other-node"), 1)[0]
	e.poll(t, "n1", 1)
	for _, tc := range []struct {
		node, arn string
		code      int
	}{
		{"n2", aws.ToString(task.TaskArn), http.StatusConflict},
		{"n1", "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef", http.StatusNotFound},
	} {
		err := e.agent.Report(ctx, agentapi.StateReport{NodeID: tc.node, TaskArn: tc.arn, Status: "PENDING", Seq: 1})
		var se *agentapi.StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("report of %s from %s: %v, want HTTP %d", tc.arn, tc.node, err, tc.code)
		}
	}
}

// setNetworks serves address sets from memory, with the revision of their
// key in the store, as the VPC control plane does.
type setNetworks struct {
	fakeNetworks
	st    *store.Store
	mu    sync.Mutex
	sets  map[string][]string
	reads int // sets AddressSets was asked for
}

// setTo changes a set's addresses to addrs, one store write per address
// added, as attaching interfaces does.
func (f *setNetworks) setTo(t *testing.T, name string, addrs ...string) {
	t.Helper()
	f.mu.Lock()
	old := f.sets[name]
	f.sets[name] = addrs
	f.mu.Unlock()
	for _, a := range addrs {
		if !slices.Contains(old, a) {
			if err := f.st.Put(context.Background(), store.Prefix("sgsets")+name, agentapi.AddressSetChange{Add: a}); err != nil {
				t.Error(err)
			}
		}
	}
	for _, a := range old {
		if !slices.Contains(addrs, a) {
			if err := f.st.Put(context.Background(), store.Prefix("sgsets")+name, agentapi.AddressSetChange{Remove: a}); err != nil {
				t.Error(err)
			}
		}
	}
}

func (f *setNetworks) AddressSetRevisions(ctx context.Context, names []string, rev int64) ([]int64, error) {
	sets, err := f.readSets(ctx, names, rev, 0)
	revs := make([]int64, len(sets))
	for i, s := range sets {
		revs[i] = s.Revision
	}
	return revs, err
}

func (f *setNetworks) AddressSets(ctx context.Context, names []string, rev, since int64) ([]agentapi.AddressSet, error) {
	f.mu.Lock()
	f.reads += len(names)
	f.mu.Unlock()
	return f.readSets(ctx, names, rev, since)
}

func (f *setNetworks) wholeReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *setNetworks) readSets(ctx context.Context, names []string, rev, since int64) ([]agentapi.AddressSet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []agentapi.AddressSet
	for _, n := range names {
		resp, err := f.st.C.Get(ctx, store.Prefix("sgsets")+n, clientv3.WithRev(rev))
		if err != nil {
			return nil, err
		}
		var setRev int64
		if len(resp.Kvs) > 0 {
			setRev = resp.Kvs[0].ModRevision
		}
		if since == 0 || setRev > since {
			out = append(out, agentapi.AddressSet{Name: n, Revision: setRev, Addresses: f.sets[n]})
		}
	}
	return out, nil
}

// A change of an address set that a node's firewalls name wakes the node's
// long poll, and the delta carries it; a set no firewall of the node names
// does not wake it.
func TestAgentPollAddressSets(t *testing.T) {
	nets := &setNetworks{sets: map[string][]string{}}
	e := newEnvWith(t, becs.Config{Networks: nets})
	nets.st = e.st
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	// Watch the answers on the wire through a proxy.
	target, _ := url.Parse(e.url)
	var bodies []string
	var bodiesMu sync.Mutex
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		bodiesMu.Lock()
		bodies = append(bodies, string(b))
		bodiesMu.Unlock()
		return nil
	}
	watching := httptest.NewServer(proxy)
	t.Cleanup(watching.Close)
	e.agent = &agentapi.Client{BaseURL: watching.URL, Token: "agent-token"}
	const web, other = "123456789012/us-east-1/sg-web", "123456789012/us-east-1/sg-other"
	nets.setTo(t, web, "10.0.0.4")
	nets.setTo(t, other, "10.0.0.5")
	fw := agentapi.Firewall{ENIID: "eni-1", Revision: 1, Ingress: []agentapi.FirewallRule{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{}, Sets: []string{web}}}}
	if err := e.st.Put(ctx, store.Key("fw", "n1", "eni-1"), fw); err != nil {
		t.Fatal(err)
	}
	r, err := e.agent.Tasks(ctx, "n1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.AddressSets) != 1 || r.AddressSets[0].Name != web || !slices.Equal(r.AddressSets[0].Addresses, []string{"10.0.0.4"}) {
		t.Fatalf("first poll's sets %+v", r.AddressSets)
	}
	// Another set changes: the poll waits out its time.
	poll := func(wait time.Duration) (agentapi.TasksResponse, time.Duration) {
		t.Helper()
		start := time.Now()
		next, err := e.agent.Tasks(ctx, "n1", r.Revision, wait)
		if err != nil {
			t.Fatal(err)
		}
		return next, time.Since(start)
	}
	time.AfterFunc(100*time.Millisecond, func() { nets.setTo(t, other, "10.0.0.5", "10.0.0.6") })
	next, took := poll(time.Second)
	if took < 900*time.Millisecond {
		t.Fatalf("a set the node does not name woke its poll after %v", took)
	}
	if len(next.AddressSets) != 1 || next.AddressSets[0].Revision != r.AddressSets[0].Revision {
		t.Fatalf("after another set changed: %+v", next.AddressSets)
	}
	r = next
	// Its own set changes: the poll returns at once, as a delta with it.
	time.AfterFunc(100*time.Millisecond, func() { nets.setTo(t, web, "10.0.0.4", "10.0.0.9") })
	next, took = poll(10 * time.Second)
	if took > 5*time.Second {
		t.Fatalf("the node's own set took %v to wake its poll", took)
	}
	if len(next.AddressSets) != 1 || !slices.Equal(next.AddressSets[0].Addresses, []string{"10.0.0.4", "10.0.0.9"}) || next.AddressSets[0].Revision <= r.AddressSets[0].Revision {
		t.Fatalf("woken poll's sets %+v (was %+v)", next.AddressSets, r.AddressSets)
	}
	bodiesMu.Lock()
	last := bodies[len(bodies)-1]
	bodiesMu.Unlock()
	if !strings.Contains(last, `"addresses":["10.0.0.9"],"delta":true`) {
		t.Errorf("the set did not go as a delta of its new member: %s", last)
	}
	// An unchanged set is not sent again, and the client still hands out
	// the one it holds.
	r = next
	if err := e.st.Put(ctx, store.Key("fw", "n1", "eni-2"), agentapi.Firewall{ENIID: "eni-2", Revision: 2}); err != nil {
		t.Fatal(err)
	}
	next, _ = poll(10 * time.Second)
	if len(next.Firewalls) != 2 || len(next.AddressSets) != 1 || !slices.Equal(next.AddressSets[0].Addresses, []string{"10.0.0.4", "10.0.0.9"}) {
		t.Fatalf("after an unrelated firewall: firewalls %d, sets %+v", len(next.Firewalls), next.AddressSets)
	}
	// Only the new firewall went on the wire.
	lastBody := func() string {
		bodiesMu.Lock()
		defer bodiesMu.Unlock()
		return bodies[len(bodies)-1]
	}
	// None left, so their ids stayed home too.
	if b := lastBody(); !strings.Contains(b, `"firewallsDelta":true,"firewallsPresentSame":true`) || strings.Contains(b, `"firewallsPresent":`) ||
		strings.Contains(b, `"eniId":"eni-1"`) || !strings.Contains(b, `"eniId":"eni-2"`) {
		t.Errorf("a new firewall did not go as a firewall delta of it alone: %s", b)
	}
	// A member leaves: the delta removes it.
	r = next
	time.AfterFunc(100*time.Millisecond, func() { nets.setTo(t, web, "10.0.0.9") })
	next, _ = poll(10 * time.Second)
	if len(next.AddressSets) != 1 || !slices.Equal(next.AddressSets[0].Addresses, []string{"10.0.0.9"}) {
		t.Fatalf("after a member left: %+v", next.AddressSets)
	}
	bodiesMu.Lock()
	last = bodies[len(bodies)-1]
	bodiesMu.Unlock()
	if !strings.Contains(last, `"removed":["10.0.0.4"]`) {
		t.Errorf("the set did not go as a delta removing the member: %s", last)
	}
	if strings.Contains(last, `"firewalls":`) || !slices.Equal(firewallIDs(next.Firewalls), []string{"eni-1", "eni-2"}) {
		t.Errorf("a set change sent firewalls, or the client lost them (%v): %s", firewallIDs(next.Firewalls), last)
	}
	// A firewall changes and another goes: only the changed one is sent,
	// and the client drops the other.
	r = next
	fw.Revision = 3
	fwJSON, _ := json.Marshal(fw)
	if _, err := e.st.C.Txn(ctx).Then(clientv3.OpDelete(store.Key("fw", "n1", "eni-2")), clientv3.OpPut(store.Key("fw", "n1", "eni-1"), string(fwJSON))).Commit(); err != nil {
		t.Fatal(err)
	}
	next, _ = poll(10 * time.Second)
	if len(next.Firewalls) != 1 || next.Firewalls[0].ENIID != "eni-1" || next.Firewalls[0].Revision != 3 || len(next.AddressSets) != 1 {
		t.Fatalf("after a firewall changed and another was deleted: firewalls %+v, sets %+v", next.Firewalls, next.AddressSets)
	}
	if b := lastBody(); !strings.Contains(b, `"firewallsPresent":["eni-1"]`) || strings.Contains(b, `"firewallsPresentSame"`) || strings.Count(b, `"eniId"`) != 1 {
		t.Errorf("the changed firewall did not go alone, with the ids of those left: %s", b)
	}
}

func firewallIDs(fws []agentapi.Firewall) []string {
	ids := make([]string, len(fws))
	for i, fw := range fws {
		ids[i] = fw.ENIID
	}
	return ids
}

// A set a poll sends whole is read once: a later poll that needs it whole
// gets the copy with the changes since applied.
func TestPollSetsWholeFromCopy(t *testing.T) {
	nets := &setNetworks{sets: map[string][]string{}}
	e := newEnvWith(t, becs.Config{Networks: nets})
	nets.st = e.st
	ctx := ctxT(t)
	const web = "123456789012/us-east-1/sg-web"
	nets.setTo(t, web, "10.0.0.4")
	for _, node := range []string{"n1", "n2"} {
		if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: node, AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
			t.Fatal(err)
		}
		fw := agentapi.Firewall{ENIID: "eni-" + node, Revision: 1, Ingress: []agentapi.FirewallRule{{Protocol: "-1", CIDRs: []string{}, Sets: []string{web}}}}
		if err := e.st.Put(ctx, store.Key("fw", node, fw.ENIID), fw); err != nil {
			t.Fatal(err)
		}
	}
	first, err := e.agent.Tasks(ctx, "n1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.AddressSets) != 1 || !slices.Equal(first.AddressSets[0].Addresses, []string{"10.0.0.4"}) || nets.wholeReads() != 1 {
		t.Fatalf("first poll: sets %+v after %d whole reads", first.AddressSets, nets.wholeReads())
	}
	nets.setTo(t, web, "10.0.0.4", "10.0.0.7", "10.0.0.2")
	nets.setTo(t, web, "10.0.0.7", "10.0.0.2")
	second, err := e.agent.Tasks(ctx, "n2", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.AddressSets) != 1 || !slices.Equal(second.AddressSets[0].Addresses, []string{"10.0.0.2", "10.0.0.7"}) ||
		second.AddressSets[0].Revision <= first.AddressSets[0].Revision {
		t.Fatalf("second node's whole set %+v (first %+v)", second.AddressSets, first.AddressSets)
	}
	if n := nets.wholeReads(); n != 1 {
		t.Errorf("the set was read whole %d times, want once", n)
	}
}

// A poll that carries a heartbeat (beat=1, agentapi.Beats) renews its
// host's lease: a host that only polls stays registered past its lease's
// length, one that neither polls so nor heartbeats is lost, and a client
// with Beats leaves out the heartbeats its polls made unneeded.
func TestPollCarriesHeartbeat(t *testing.T) {
	e := newEnvWith(t, becs.Config{NodeTTL: 2 * time.Second})
	ctx := ctxT(t)
	beats := &agentapi.Beats{}
	host := &agentapi.Client{BaseURL: e.url, Token: "agent-token", Beats: beats}
	for _, n := range []string{"polls", "quiet"} {
		if _, err := host.Register(ctx, agentapi.RegisterRequest{NodeID: n, AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
			t.Fatal(err)
		}
	}
	beats.SetInterval(400 * time.Millisecond) // the server's whole seconds cannot say a quarter of 2 s
	renewals := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		resp, err := host.Tasks(ctx, "polls", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if resp.LeaseRenewed {
			renewals++
		}
	}
	if renewals < 5 {
		t.Errorf("%d polls of 5 s renewed the lease, want one every 300–400 ms", renewals)
	}
	for n, want := range map[string]bool{"polls": true, "quiet": false} {
		resp, err := e.st.C.Get(ctx, store.Key("nodes", n), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Count == 1; got != want {
			t.Errorf("host %s registered after 5 s of a 2-s lease: %v, want %v", n, got, want)
		}
	}
	sent, folded := beats.Counts()
	beats.SetInterval(2 * time.Second) // the last renewal was less than one ago, however slow the machine
	if err := host.Heartbeat(ctx, agentapi.RegisterRequest{NodeID: "polls"}); err != nil {
		t.Fatal(err)
	}
	if s, f := beats.Counts(); s != sent || f != folded+1 {
		t.Errorf("a heartbeat just after a renewing poll: sent %d→%d, left out %d→%d; want it left out", sent, s, folded, f)
	}
}
