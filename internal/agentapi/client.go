package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Paths of the agent protocol on the control plane's endpoint.
const (
	PathPrefix    = "/_berth/agent/v1/"
	PathRegister  = PathPrefix + "register"
	PathHeartbeat = PathPrefix + "heartbeat"
	PathTasks     = PathPrefix + "tasks"
	PathReport    = PathPrefix + "report"
	PathRegistry  = PathPrefix + "registry-auth"
)

// ErrorBody is the reply of a failed agent call.
type ErrorBody struct {
	Error string `json:"error"`
}

// Client is an agent's connection to the control plane.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:4566
	Token   string // join token, sent as a bearer token
	HTTP    *http.Client
	// DiscardAddressSets: Tasks neither keeps nor returns the address sets
	// that polls carry. For a caller that enforces no firewall (a simulated
	// host): merging each delta into a set of thousands of members, on
	// each of thousands of simulated hosts in one process, is work no real
	// host shares with another.
	DiscardAddressSets bool
	// Beats, if set, folds the nodes' heartbeats into their polls (see
	// Beats); clients that share it share the nodes' renewals.
	Beats *Beats

	mu    sync.Mutex
	specs map[string]*nodeSpecs // by node: the task specs of its last poll
}

// nodeSpecs are the specs a node's last poll returned, at its revision,
// which the next poll's delta changes.
type nodeSpecs struct {
	mu    sync.Mutex
	rev   int64
	tasks held[TaskSpec]
	fws   held[Firewall]        // by ENI id
	sets  map[string]AddressSet // by name: the address sets the firewalls name
}

// held is one of a node's lists as a client holds it between polls: the
// items by id, and their ids in order, so that a delta that adds a few
// does not sort them all again.
type held[T any] struct {
	byID  map[string]T
	order []string
	id    func(T) string
}

func taskID(t TaskSpec) string     { return t.TaskID }
func firewallID(f Firewall) string { return f.ENIID }

// reset holds exactly items (a whole reply's).
func (h *held[T]) reset(items []T) {
	h.byID = make(map[string]T, len(items))
	h.order = make([]string, 0, len(items))
	for _, v := range items {
		k := h.id(v)
		if _, dup := h.byID[k]; !dup {
			h.order = append(h.order, k)
		}
		h.byID[k] = v
	}
	slices.Sort(h.order)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, in, out, nil)
}

// Signer authenticates a request in place (Join: SigV4 with the user's
// credentials); body is the request's body.
type Signer func(req *http.Request, body []byte) error

// maxReply bounds a reply the client reads.
const maxReply = 256 << 20

// readReply reads a reply's body: into one buffer of its length when the
// server sent it (io.ReadAll grows its buffer a dozen times for a long
// poll's reply of many specs), else as it comes.
func readReply(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxReply {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err == nil && len(b) > maxReply {
		return nil, fmt.Errorf("reply over %d bytes", maxReply)
	}
	return b, err
}

// send is do with the request authenticated by sign instead of the token.
func (c *Client) send(ctx context.Context, method, path string, in, out any, sign Signer) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		if err := sign(req, b); err != nil {
			return fmt.Errorf("sign %s: %w", path, err)
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err = readReply(resp)
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		_ = json.Unmarshal(b, &e)
		return &StatusError{Method: method, Path: path, Status: resp.Status, Code: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

// Join registers this host as a container instance of a user's cluster,
// with the request signed by sign (the user's credentials); the answer's
// token then authenticates the host's other calls.
func (c *Client) Join(ctx context.Context, r JoinRequest, sign Signer) (JoinResponse, error) {
	var out JoinResponse
	err := c.send(ctx, http.MethodPost, PathJoin, r, &out, sign)
	return out, err
}

// Register announces the node.
func (c *Client) Register(ctx context.Context, r RegisterRequest) (RegisterResponse, error) {
	start := time.Now()
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, PathRegister, r, &out)
	if err == nil && c.Beats != nil {
		c.Beats.SetInterval(time.Duration(out.HeartbeatSeconds) * time.Second)
		c.Beats.renewed(r.NodeID, start)
	}
	return out, err
}

// Heartbeat keeps the node's registration alive.
//
// With Beats, a heartbeat whose lease a poll renewed less than an interval
// ago sends nothing.
func (c *Client) Heartbeat(ctx context.Context, r RegisterRequest) error {
	start := time.Now()
	if c.Beats != nil && c.Beats.fresh(r.NodeID, start) {
		c.Beats.folded.Add(1)
		return nil
	}
	err := c.do(ctx, http.MethodPost, PathHeartbeat, r, nil)
	if err == nil && c.Beats != nil {
		c.Beats.sent.Add(1)
		c.Beats.renewed(r.NodeID, start)
	}
	return err
}

// Tasks returns the tasks placed on node. With since > 0 it waits up to wait
// for a change after that revision before answering.
//
// When since is the revision of this client's last answer for node, it asks
// only for the specs that changed since (a delta) and rebuilds the whole list
// from those it holds: a host running a hundred tasks would otherwise fetch
// and decode all hundred each time one of them is placed or changed.
func (c *Client) Tasks(ctx context.Context, node string, since int64, wait time.Duration) (TasksResponse, error) {
	c.mu.Lock()
	if c.specs == nil {
		c.specs = map[string]*nodeSpecs{}
	}
	ns := c.specs[node]
	if ns == nil {
		ns = &nodeSpecs{tasks: held[TaskSpec]{id: taskID}, fws: held[Firewall]{id: firewallID}}
		c.specs[node] = ns
	}
	c.mu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	delta := since > 0 && since == ns.rev
	out, err := c.poll(ctx, node, since, wait, delta)
	if err != nil {
		return out, err
	}
	if !out.Delta {
		ns.tasks.reset(out.Tasks)
		if _, err := ns.mergeFirewalls(out); err != nil { // a whole reply: every firewall
			ns.rev = 0
			return out, fmt.Errorf("GET %s: node %s: %w", PathTasks, node, err)
		}
		if c.DiscardAddressSets {
			out.AddressSets = nil
		}
		ns.sets = make(map[string]AddressSet, len(out.AddressSets))
		for _, set := range out.AddressSets {
			ns.sets[set.Name] = sortedSet(set)
		}
		ns.rev = out.Revision
		return out, nil
	}
	whole, lacking := ns.tasks.merge(out.Tasks, out.Present, out.PresentSame)
	if lacking > 0 {
		// A task this client never saw and the delta lacks: ask again for all.
		ns.rev = 0
		return out, fmt.Errorf("GET %s: the delta lacks %d of node %s's tasks", PathTasks, lacking, node)
	}
	fws, err := ns.mergeFirewalls(out)
	if err != nil {
		ns.rev = 0
		return out, fmt.Errorf("GET %s: node %s: %w", PathTasks, node, err)
	}
	out.Firewalls = fws
	var sets []AddressSet
	if !c.DiscardAddressSets {
		if sets, err = ns.mergeSets(out); err != nil {
			ns.rev = 0
			return out, fmt.Errorf("GET %s: node %s: %w", PathTasks, node, err)
		}
	}
	ns.rev = out.Revision
	out.Tasks, out.Present, out.PresentSame, out.Delta, out.AddressSets = whole, nil, false, false, sets
	out.FirewallsDelta, out.FirewallsPresent, out.FirewallsPresentSame = false, nil, false
	return out, nil
}

// TasksDelta is Tasks for a caller that keeps its own state of the node's
// tasks, and no firewall: it returns the reply as the control plane sent
// it, holding nothing. Given since > 0, the caller holds every task up to
// that revision, and a reply with Delta set has only the specs changed
// after it, with Present the ids of all the node's tasks unless
// PresentSame (none left the node). Firewalls and address sets are
// dropped. A simulated host (agent/sim) polls this way: ten thousand of
// them in one process, each holding whole specs and rebuilding its whole
// list at each poll, would hold gigabytes no real host's agent shares
// with another.
func (c *Client) TasksDelta(ctx context.Context, node string, since int64, wait time.Duration) (TasksResponse, error) {
	out, err := c.poll(ctx, node, since, wait, since > 0)
	out.Firewalls, out.FirewallsPresent, out.AddressSets = nil, nil, nil
	return out, err
}

// poll is one GET of the node's tasks: with delta, only what changed after
// since (the caller holds the rest).
func (c *Client) poll(ctx context.Context, node string, since int64, wait time.Duration, delta bool) (TasksResponse, error) {
	q := url.Values{"node": {node}, "since": {strconv.FormatInt(since, 10)}, "wait": {wait.String()}}
	if delta {
		q.Set("delta", "1")
		q.Set("fwdelta", "1")
		q.Set("keep", "1")
	}
	if c.Beats != nil && c.Beats.due(node, time.Now()) {
		q.Set("beat", "1")
	}
	var out TasksResponse
	if err := c.do(ctx, http.MethodGet, PathTasks+"?"+q.Encode(), nil, &out); err != nil {
		return out, err
	}
	if out.LeaseRenewed && c.Beats != nil {
		// The server renewed the lease as it answered: a moment before
		// now, by the reply's transit, which is nothing beside a lease.
		c.Beats.renewed(node, time.Now())
	}
	if out.Delta && !delta {
		return out, fmt.Errorf("GET %s: a delta answered a request for every task", PathTasks)
	}
	return out, nil
}

// mergeFirewalls applies a delta's firewalls to those held and returns
// every firewall of the node; a reply that is not a firewall delta carries
// them all.
func (ns *nodeSpecs) mergeFirewalls(out TasksResponse) ([]Firewall, error) {
	if !out.FirewallsDelta {
		ns.fws.reset(out.Firewalls)
		return out.Firewalls, nil
	}
	whole, lacking := ns.fws.merge(out.Firewalls, out.FirewallsPresent, out.FirewallsPresentSame)
	if lacking > 0 {
		return nil, fmt.Errorf("the delta lacks %d of the node's firewalls", lacking)
	}
	return whole, nil
}

// merge applies a delta to what is held: the changed items replace or
// join those held, and those whose ids are not in present are dropped
// (same: none are, and present is not given). It returns every item in id
// order, and how many present ids neither the delta nor h had.
func (h *held[T]) merge(changed []T, present []string, same bool) (whole []T, lacking int) {
	if h.byID == nil {
		h.byID = map[string]T{}
	}
	for _, v := range changed {
		k := h.id(v)
		if _, ok := h.byID[k]; !ok && same {
			i, _ := slices.BinarySearch(h.order, k)
			h.order = slices.Insert(h.order, i, k)
		}
		h.byID[k] = v
	}
	if !same {
		in := make(map[string]bool, len(present))
		h.order = h.order[:0]
		for _, k := range present {
			in[k] = true
			if _, ok := h.byID[k]; ok {
				h.order = append(h.order, k)
			}
		}
		for k := range h.byID {
			if !in[k] {
				delete(h.byID, k)
			}
		}
		lacking = len(present) - len(h.order)
		if !slices.IsSorted(h.order) {
			slices.Sort(h.order)
		}
	}
	whole = make([]T, len(h.order))
	for i, k := range h.order {
		whole[i] = h.byID[k]
	}
	return whole, lacking
}

// mergeSets applies a delta's address sets to those held and returns every
// set the delta's firewalls name; the others are forgotten.
func (ns *nodeSpecs) mergeSets(out TasksResponse) ([]AddressSet, error) {
	if ns.sets == nil {
		ns.sets = map[string]AddressSet{}
	}
	for _, set := range out.AddressSets {
		old, ok := ns.sets[set.Name]
		if ok && old.Revision > set.Revision {
			continue
		}
		if set.Delta {
			if !ok {
				return nil, fmt.Errorf("the delta changes address set %s, which this client does not hold", set.Name)
			}
			set = ApplySetDelta(old, set) // sorted already
		} else {
			set = sortedSet(set)
		}
		ns.sets[set.Name] = set
	}
	names := SetNames(out.Firewalls)
	whole := make([]AddressSet, 0, len(names))
	for _, name := range names {
		set, ok := ns.sets[name]
		if !ok {
			return nil, fmt.Errorf("the delta lacks address set %s", name)
		}
		whole = append(whole, set)
	}
	named := make(map[string]bool, len(names))
	for _, name := range names {
		named[name] = true
	}
	for name := range ns.sets {
		if !named[name] {
			delete(ns.sets, name)
		}
	}
	return whole, nil
}

// ApplySetDelta returns set old with delta's additions and removals, at
// delta's revision (Delta false: a whole set). old's addresses are sorted (a whole set is sent so, and
// every set this returns is), so this merges in one pass: sorting the whole
// set on each delta made a set of a few thousand members most of a host's
// poll, at one delta a second.
func ApplySetDelta(old, delta AddressSet) AddressSet {
	removed := slices.Sorted(slices.Values(delta.Removed))
	added := slices.Compact(slices.Sorted(slices.Values(delta.Addresses)))
	gone := func(a string) bool { _, found := slices.BinarySearch(removed, a); return found }
	addrs := make([]string, 0, len(old.Addresses)+len(added))
	emit := func(a string) {
		if n := len(addrs); n == 0 || addrs[n-1] != a {
			addrs = append(addrs, a)
		}
	}
	i := 0
	for _, a := range old.Addresses {
		for ; i < len(added) && added[i] < a; i++ {
			emit(added[i])
		}
		if !gone(a) {
			emit(a)
		}
	}
	for ; i < len(added); i++ {
		emit(added[i])
	}
	return AddressSet{Name: old.Name, Revision: delta.Revision, Addresses: addrs}
}

// sortedSet returns set with its addresses sorted, as ApplySetDelta needs
// them (a check only, for a set the control plane sent sorted).
func sortedSet(set AddressSet) AddressSet {
	if !slices.IsSorted(set.Addresses) {
		set.Addresses = slices.Sorted(slices.Values(set.Addresses))
	}
	return set
}

// Report sends one state transition of a task.
func (c *Client) Report(ctx context.Context, r StateReport) error {
	return c.do(ctx, http.MethodPost, PathReport, r, nil)
}

// RegistryAuth gets credentials of a task's account for the control plane's
// registry.
func (c *Client) RegistryAuth(ctx context.Context, r RegistryAuthRequest) (RegistryAuth, error) {
	var out RegistryAuth
	err := c.do(ctx, http.MethodPost, PathRegistry, r, &out)
	return out, err
}

// TargetHealth reports the health of the targets of one load balancer the
// node runs.
func (c *Client) TargetHealth(ctx context.Context, r TargetHealthReport) error {
	return c.do(ctx, http.MethodPost, PathTargetHealth, r, nil)
}

// StatusError is the control plane's refusal of an agent call.
type StatusError struct {
	Method, Path, Status, Message string
	Code                          int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.Status, e.Message)
}
