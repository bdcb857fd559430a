package lbproxy

import (
	"cmp"
	"context"
	"errors"
	"hash/fnv"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// errNoTargets means a target group has no registered (non-draining) target:
// the ALB answers 503, the NLB resets the connection.
var errNoTargets = errors.New("no registered targets")

// targetKey identifies a registration: the same IP on two ports is two
// targets, as in ELBv2.
type targetKey struct {
	ip   string
	port int
}

// target is one registered (or draining) target of a target group.
//
// Its ctx lives as long as the registration; cancelling it aborts the
// target's in-flight requests and connections (end of draining, Close).
type target struct {
	key  targetKey
	addr string // ip:port
	hash uint64 // of addr, for the flow hash
	tg   *targetGroup

	ctx    context.Context
	cancel context.CancelFunc
	// transport is this target's keep-alive pool for the ALB's slow path
	// (ReverseProxy), pool the fast path's (fast.go).
	transport *http.Transport
	pool      connPool

	// inflight counts requests (ALB) and connections (NLB) in progress.
	inflight atomic.Int64
	// idle is signalled when inflight drops to zero while draining.
	idle chan struct{}
	// shunUntil (unix nanoseconds) is set when a connection to the target
	// failed: until then pick prefers other targets (see dialFailed).
	shunUntil atomic.Int64

	// Guarded by tg.mu.
	state, reason, desc  string
	draining             bool
	checking             bool // a health loop runs
	okStreak, failStreak int
}

// release ends one request or connection begun by pick.
func (t *target) release() {
	if t.inflight.Add(-1) == 0 {
		select {
		case t.idle <- struct{}{}:
		default:
		}
	}
}

// targetGroup is the running form of a TargetGroup.
type targetGroup struct {
	e   *Engine
	arn string
	rr  atomic.Uint64

	mu       sync.Mutex
	cfg      TargetGroup
	hc       HealthCheck // with defaults
	matcher  []codeRange
	active   map[targetKey]*target // registered, in registration order below
	order    []*target
	draining map[*target]struct{}
	retired  bool
}

func newTargetGroup(e *Engine, cfg TargetGroup) *targetGroup {
	tg := &targetGroup{
		e:        e,
		arn:      cfg.ARN,
		active:   map[targetKey]*target{},
		draining: map[*target]struct{}{},
	}
	tg.update(cfg)
	return tg
}

// update applies a new configuration: new targets start (initial, checked),
// removed targets drain, settings change in place.
func (tg *targetGroup) update(cfg TargetGroup) {
	hc := cfg.HealthCheck.withDefaults(cfg.Protocol)
	matcher, _ := parseMatcher(hc.Matcher) // validated by Apply

	tg.mu.Lock()
	wasEnabled := tg.hc.Enabled && tg.cfg.ARN != ""
	tg.cfg = cfg
	tg.hc = hc
	tg.matcher = matcher
	var recheck []*target
	if hc.Enabled && !wasEnabled {
		// Checks turned on: running targets start being checked.
		recheck = slices.Clone(tg.order)
	} else if !hc.Enabled {
		// Checks off: every target counts as healthy.
		for _, t := range tg.order {
			t.state, t.reason, t.desc = StateHealthy, "", ""
		}
	}
	want := map[targetKey]bool{}
	var added []*target
	for _, t := range cfg.Targets {
		k := targetKey{t.ID, targetPort(&cfg, t)}
		if want[k] {
			continue
		}
		want[k] = true
		if _, ok := tg.active[k]; ok {
			continue
		}
		nt := tg.newTargetLocked(k, cmp.Or(t.Address, t.ID))
		tg.active[k] = nt
		tg.order = append(tg.order, nt)
		added = append(added, nt)
	}
	var removed []*target
	kept := tg.order[:0]
	for _, t := range tg.order {
		if want[t.key] {
			kept = append(kept, t)
			continue
		}
		delete(tg.active, t.key)
		removed = append(removed, t)
	}
	clear(tg.order[len(kept):])
	tg.order = kept
	for _, t := range removed {
		tg.startDrainLocked(t)
	}
	tg.mu.Unlock()

	for _, t := range append(recheck, added...) {
		tg.e.log.Debug("target registered", "targetGroup", tg.arn, "target", t.addr)
		tg.startHealthCheck(t)
	}
	if len(added) > 0 || len(removed) > 0 || len(recheck) > 0 || !hc.Enabled {
		tg.e.healthChanged(tg.arn)
	}
}

// newTargetLocked makes the target k, dialed at host (its IP, or an
// instance target's address).
func (tg *targetGroup) newTargetLocked(k targetKey, host string) *target {
	addr := net.JoinHostPort(host, strconv.Itoa(k.port))
	h := fnv.New64a()
	h.Write([]byte(addr))
	ctx, cancel := context.WithCancel(tg.e.ctx)
	t := &target{
		key:    k,
		addr:   addr,
		hash:   h.Sum64(),
		tg:     tg,
		ctx:    ctx,
		cancel: cancel,
		idle:   make(chan struct{}, 1),
		state:  StateInitial,
		reason: ReasonRegistrationInProgress,
		desc:   "Target registration is in progress",
	}
	if tg.cfg.Protocol == ProtocolHTTP {
		t.transport = tg.e.newTransport()
		t.pool.init(tg.e.opts.MaxIdleConnsPerTarget)
	}
	if !tg.hc.Enabled {
		t.state, t.reason, t.desc = StateHealthy, "", ""
	}
	return t
}

// isRetired reports whether the group is gone from the configuration.
func (tg *targetGroup) isRetired() bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.retired
}

// retire drains every target; the group is gone from the configuration.
func (tg *targetGroup) retire() {
	tg.mu.Lock()
	tg.retired = true
	for _, t := range tg.order {
		delete(tg.active, t.key)
		tg.startDrainLocked(t)
	}
	tg.order = nil
	tg.mu.Unlock()
	tg.e.healthChanged(tg.arn)
}

// pick chooses a target for a new request or connection and counts it in
// flight; the caller must call release. With flow != nil the choice is the
// flow hash (NLB), otherwise the group's algorithm. Healthy targets are
// preferred; when none is healthy the group fails open to every registered
// target, as ELBv2 does. Among those, targets a connection recently failed
// to reach (see dialFailed) and those in skip are left out while another
// remains.
func (tg *targetGroup) pick(flow *uint64, skip ...*target) (*target, error) {
	now := time.Now().UnixNano()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	cands := tg.order
	for _, keep := range []func(*target) bool{
		func(t *target) bool { return t.state == StateHealthy },
		func(t *target) bool { return t.shunUntil.Load() <= now },
		func(t *target) bool { return !slices.Contains(skip, t) },
	} {
		cands = narrow(cands, keep)
	}
	if len(cands) == 0 || slices.Contains(skip, cands[0]) {
		return nil, errNoTargets
	}
	var best *target
	switch {
	case flow != nil:
		var bestScore uint64
		for _, t := range cands {
			if s := mix64(*flow ^ t.hash); best == nil || s > bestScore {
				best, bestScore = t, s
			}
		}
	case tg.cfg.Algorithm == AlgorithmLeastOutstandingRequests:
		start := int(tg.rr.Add(1) % uint64(len(cands)))
		for i := range cands {
			t := cands[(start+i)%len(cands)]
			if best == nil || t.inflight.Load() < best.inflight.Load() {
				best = t
			}
		}
	default:
		best = cands[int(tg.rr.Add(1)%uint64(len(cands)))]
	}
	best.inflight.Add(1)
	return best, nil
}

// narrow returns the targets of ts that keep accepts, or ts itself when it
// accepts none or all (a preference, never an empty choice).
func narrow(ts []*target, keep func(*target) bool) []*target {
	n := 0
	for _, t := range ts {
		if keep(t) {
			n++
		}
	}
	if n == 0 || n == len(ts) {
		return ts
	}
	out := make([]*target, 0, n)
	for _, t := range ts {
		if keep(t) {
			out = append(out, t)
		}
	}
	return out
}

// shunFor is how long a target that refused a connection is avoided: about
// the time the control plane needs to notice a stopped task and deregister
// it, well below a health check's unhealthy threshold.
const shunFor = 5 * time.Second

// dialFailed records that a connection to t could not be made (refused,
// unreachable, timed out): new requests prefer other targets for shunFor.
// ALB itself keeps sending to such a target until its health check fails;
// berth steers around it at once, which is what keeps a service's requests
// from failing when one of its tasks dies.
func (t *target) dialFailed() {
	t.shunUntil.Store(time.Now().Add(shunFor).UnixNano())
}

// isDialError reports whether err is a failure to connect, so that nothing
// of the request reached the target and it may be sent elsewhere.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// mix64 is splitmix64's finalizer: a cheap, well-spread hash of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// statuses reports every target of the group, draining ones included.
func (tg *targetGroup) statuses() []TargetStatus {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make([]TargetStatus, 0, len(tg.order)+len(tg.draining))
	for _, t := range tg.order {
		out = append(out, TargetStatus{ID: t.key.ip, Port: t.key.port, State: t.state, Reason: t.reason, Description: t.desc})
	}
	for t := range tg.draining {
		if _, again := tg.active[t.key]; again {
			continue // re-registered: the new registration is reported
		}
		out = append(out, TargetStatus{ID: t.key.ip, Port: t.key.port, State: t.state, Reason: t.reason, Description: t.desc})
	}
	sortStatuses(out)
	return out
}

// newTransport is one target's keep-alive pool.
func (e *Engine) newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           e.dialTarget,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   e.opts.MaxIdleConnsPerTarget,
		IdleConnTimeout:       targetIdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// dialTarget dials with the engine's connect timeout.
func (e *Engine) dialTarget(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ConnectTimeout)
	defer cancel()
	return e.opts.Dial(ctx, network, addr)
}
