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

	mu    sync.Mutex
	specs map[string]*nodeSpecs // by node: the task specs of its last poll
}

// nodeSpecs are the specs a node's last poll returned, at its revision,
// which the next poll's delta changes.
type nodeSpecs struct {
	mu   sync.Mutex
	rev  int64
	byID map[string]TaskSpec
	sets map[string]AddressSet // by name: the address sets the firewalls name
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, in, out, nil)
}

// Signer authenticates a request in place (Join: SigV4 with the user's
// credentials); body is the request's body.
type Signer func(req *http.Request, body []byte) error

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
	b, err = io.ReadAll(resp.Body)
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
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, PathRegister, r, &out)
	return out, err
}

// Heartbeat keeps the node's registration alive.
func (c *Client) Heartbeat(ctx context.Context, r RegisterRequest) error {
	return c.do(ctx, http.MethodPost, PathHeartbeat, r, nil)
}

// Tasks returns the tasks placed on node. With since > 0 it waits up to wait
// for a change after that revision before answering.
//
// When since is the revision of this client's last answer for node, it asks
// only for the specs that changed since (a delta) and rebuilds the whole list
// from those it holds: a host running a hundred tasks would otherwise fetch
// and decode all hundred each time one of them is placed or changed.
func (c *Client) Tasks(ctx context.Context, node string, since int64, wait time.Duration) (TasksResponse, error) {
	q := url.Values{"node": {node}, "since": {strconv.FormatInt(since, 10)}, "wait": {wait.String()}}
	c.mu.Lock()
	if c.specs == nil {
		c.specs = map[string]*nodeSpecs{}
	}
	ns := c.specs[node]
	if ns == nil {
		ns = &nodeSpecs{}
		c.specs[node] = ns
	}
	c.mu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if since > 0 && since == ns.rev {
		q.Set("delta", "1")
	}
	var out TasksResponse
	if err := c.do(ctx, http.MethodGet, PathTasks+"?"+q.Encode(), nil, &out); err != nil {
		return out, err
	}
	if !out.Delta {
		ns.byID = make(map[string]TaskSpec, len(out.Tasks))
		for _, t := range out.Tasks {
			ns.byID[t.TaskID] = t
		}
		ns.sets = make(map[string]AddressSet, len(out.AddressSets))
		for _, set := range out.AddressSets {
			ns.sets[set.Name] = set
		}
		ns.rev = out.Revision
		return out, nil
	}
	if q.Get("delta") == "" {
		return out, fmt.Errorf("GET %s: a delta answered a request for every task", PathTasks)
	}
	for _, t := range out.Tasks {
		ns.byID[t.TaskID] = t
	}
	present := make(map[string]bool, len(out.Present))
	whole := make([]TaskSpec, 0, len(out.Present))
	for _, id := range out.Present {
		present[id] = true
		if t, ok := ns.byID[id]; ok {
			whole = append(whole, t)
		}
	}
	for id := range ns.byID {
		if !present[id] {
			delete(ns.byID, id)
		}
	}
	if len(whole) != len(out.Present) {
		// A task this client never saw and the delta lacks: ask again for all.
		ns.rev = 0
		return out, fmt.Errorf("GET %s: the delta lacks %d of node %s's tasks", PathTasks, len(out.Present)-len(whole), node)
	}
	sets, err := ns.mergeSets(out)
	if err != nil {
		ns.rev = 0
		return out, fmt.Errorf("GET %s: node %s: %w", PathTasks, node, err)
	}
	ns.rev = out.Revision
	out.Tasks, out.Present, out.Delta, out.AddressSets = whole, nil, false, sets
	return out, nil
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
			set = applySetDelta(old, set)
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

// applySetDelta returns set old with delta's additions and removals, at
// delta's revision.
func applySetDelta(old, delta AddressSet) AddressSet {
	removed := make(map[string]bool, len(delta.Removed))
	for _, a := range delta.Removed {
		removed[a] = true
	}
	addrs := make([]string, 0, len(old.Addresses)+len(delta.Addresses))
	for _, a := range old.Addresses {
		if !removed[a] {
			addrs = append(addrs, a)
		}
	}
	addrs = append(addrs, delta.Addresses...)
	slices.Sort(addrs)
	return AddressSet{Name: old.Name, Revision: delta.Revision, Addresses: slices.Compact(addrs)}
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
