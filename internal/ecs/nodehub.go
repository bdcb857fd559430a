package ecs

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// nodeHub tells the agents' long polls when something of their node has
// changed: a task placed on it or its desired state (assign/<node>/…), an
// ENI firewall (fw/<node>/…), a load balancer (lbs/<node>/…), or an address
// set its firewalls name (sgsets/<name>: the poll tells the hub which, with
// refer).
//
// One etcd watch per prefix for the whole server, from the revision the hub
// started at, feeds a map of node → last revision that touched it. A poll
// that asks for changes after revision `since` returns at once if the map is
// already past it, and otherwise waits to be woken. This replaces a watch per
// poll, which etcd serves from its "unsynced" group when its start revision
// is in the past, i.e. only on its next 100 ms sync: every poll that follows
// an early answer paid up to 100 ms, and thousands of hosts would make
// thousands of watches.
type nodeHub struct {
	st       *store.Store
	prefixes []string

	log *slog.Logger

	mu       sync.Mutex
	ready    chan struct{}              // closed while the watch runs
	start    int64                      // revisions up to this are not known
	rev      map[string]int64           // node → last revision that changed it
	waiters  map[string][]waiter        // node → polls waiting for a change
	setSeen  map[string]int64           // address set → last revision that changed it
	seen     chan struct{}              // closed (and replaced) when setSeen grows
	setRev   map[string]int64           // address set → last change released to its nodes' polls
	setDue   map[string]bool            // address sets changed since the last release
	released time.Time                  // when set changes were last released
	setLog   map[string][]setChange     // address set → the changes the hub saw, oldest first
	setFloor map[string]int64           // address set → changes up to this were dropped from its log
	copies   map[string]setCopy         // address set → a whole copy, kept current (hubsets.go)
	nodeSets map[string][]string        // node → the sets its last poll's firewalls named
	setNodes map[string]map[string]bool // address set → the nodes that name it
}

// setPrefix is where address sets' revisions live (vpc.AddressSetPrefix).
var setPrefix = store.Prefix("sgsets")

// waiter is a poll waiting for a change of its node after revision since.
type waiter struct {
	ch    chan struct{}
	since int64
}

// unknown is the start of a hub whose watch is not running: every poll
// returns at once.
const unknown = int64(1) << 62

func newNodeHub(st *store.Store, log *slog.Logger, prefixes ...string) *nodeHub {
	return &nodeHub{st: st, log: log, prefixes: prefixes, ready: make(chan struct{}), start: unknown, rev: map[string]int64{},
		waiters: map[string][]waiter{}, seen: make(chan struct{}), setSeen: map[string]int64{}, setRev: map[string]int64{}, setDue: map[string]bool{}, setLog: map[string][]setChange{}, setFloor: map[string]int64{}, copies: map[string]setCopy{}, nodeSets: map[string][]string{}, setNodes: map[string]map[string]bool{}}
}

// refer records the address sets node's firewalls name, as of its poll:
// a change of one of them wakes the node's next poll.
func (h *nodeHub) refer(node string, sets []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.Equal(h.nodeSets[node], sets) {
		return
	}
	for _, name := range h.nodeSets[node] {
		delete(h.setNodes[name], node)
		if len(h.setNodes[name]) == 0 {
			delete(h.setNodes, name)
		}
	}
	if len(sets) == 0 {
		delete(h.nodeSets, node)
		return
	}
	h.nodeSets[node] = slices.Clone(sets)
	for _, name := range sets {
		if h.setNodes[name] == nil {
			h.setNodes[name] = map[string]bool{}
		}
		h.setNodes[name][node] = true
	}
}

// changedAfter reports whether the hub saw node or a set it names change
// after since. h.mu is held.
func (h *nodeHub) changedAfter(node string, since int64) bool {
	if h.rev[node] > since {
		return true
	}
	for _, name := range h.nodeSets[node] {
		if h.setRev[name] > since {
			return true
		}
	}
	return false
}

// changed records that node changed at rev and wakes its polls waiting
// for a change before it. h.mu is held.
func (h *nodeHub) changed(node string, rev int64) {
	if rev > h.rev[node] {
		h.rev[node] = rev
	}
	// Only a change after its since wakes a poll: the hub's events may
	// trail the poll's own read.
	kept := h.waiters[node][:0]
	for _, w := range h.waiters[node] {
		if rev > w.since {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		delete(h.waiters, node)
	} else {
		h.waiters[node] = kept
	}
}

// lastRev is the last revision the hub saw change node (0: none since it
// started).
func (h *nodeHub) lastRev(node string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev[node]
}

// run follows the watches until ctx ends, starting over (and waking every
// poll) when a watch fails.
func (h *nodeHub) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("agent long-poll watch restarting", "err", err)
		h.reset(unknown) // nothing is known until the watch is back
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (h *nodeHub) follow(ctx context.Context) error {
	resp, err := h.st.C.Get(ctx, store.Key("nodehub-start"), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	from := resp.Header.Revision
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	type event struct {
		node, set string // one of them
		rev       int64
		value     []byte // a set's change
	}
	events := make(chan []event)
	prefixes := append(slices.Clone(h.prefixes), setPrefix)
	errc := make(chan error, len(prefixes))
	for _, p := range prefixes {
		wch := h.st.C.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(from+1))
		go func() {
			for wr := range wch {
				if err := wr.Err(); err != nil {
					errc <- err
					return
				}
				var evs []event
				for _, ev := range wr.Events {
					rest := strings.TrimPrefix(string(ev.Kv.Key), p)
					if p == setPrefix {
						evs = append(evs, event{set: rest, rev: ev.Kv.ModRevision, value: ev.Kv.Value})
					} else if node, _, ok := strings.Cut(rest, "/"); ok {
						evs = append(evs, event{node: node, rev: ev.Kv.ModRevision})
					}
				}
				select {
				case events <- evs:
				case <-wctx.Done():
					return
				}
			}
			errc <- errors.New("watch closed")
		}()
	}
	h.reset(from)
	releaseTimer := time.NewTimer(time.Hour)
	releaseTimer.Stop()
	defer releaseTimer.Stop()
	var release <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-release:
			release = nil
			h.mu.Lock()
			h.releaseSets()
			h.mu.Unlock()
		case evs := <-events:
			h.mu.Lock()
			for _, ev := range evs {
				if ev.set == "" {
					h.changed(ev.node, ev.rev)
					continue
				}
				if ev.rev > h.setSeen[ev.set] {
					h.setSeen[ev.set] = ev.rev
					h.logSet(ev.set, ev.rev, ev.value)
					h.setDue[ev.set] = true
					close(h.seen)
					h.seen = make(chan struct{})
				}
			}
			if len(h.setDue) > 0 && release == nil {
				// At once if none went out lately, else together with
				// what else changes until setRelease after the last.
				wait := setRelease - time.Since(h.released)
				if wait <= 0 {
					h.releaseSets()
				} else {
					releaseTimer.Reset(wait)
					release = releaseTimer.C
				}
			}
			h.mu.Unlock()
		}
	}
}

// setRelease is how often changes of address sets wake the polls of the
// nodes that name them, at most: a set of every task in a group changes
// with every task that starts or stops, and each change would otherwise
// wake every host running one of them, each reading its node again.
const setRelease = time.Second

// releaseSets wakes the polls of the nodes naming a set that changed since
// the last release. h.mu is held.
func (h *nodeHub) releaseSets() {
	for name := range h.setDue {
		rev := h.setSeen[name]
		h.setRev[name] = rev
		for node := range h.setNodes[name] {
			h.changed(node, rev)
		}
	}
	h.setDue = map[string]bool{}
	h.released = time.Now()
}

// reset forgets what is known: revisions up to start are treated as
// changed, and every waiting poll is woken.
func (h *nodeHub) reset(start int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ready := h.ready; {
	case start == unknown && isClosed(ready):
		h.ready = make(chan struct{})
	case start != unknown && !isClosed(ready):
		close(ready)
	}
	h.start = start
	h.rev = map[string]int64{}
	h.setSeen = map[string]int64{}
	h.setRev = map[string]int64{}
	h.setDue = map[string]bool{}
	h.setLog = map[string][]setChange{}
	h.setFloor = map[string]int64{}
	h.copies = map[string]setCopy{}
	for _, ws := range h.waiters {
		for _, w := range ws {
			close(w.ch)
		}
	}
	h.waiters = map[string][]waiter{}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wait returns once something of node changed after revision since, or the
// hub cannot tell (a revision before it started), or wait has passed, or
// ctx ends. While the hub's watch is not running it first waits for it, so
// that agents do not spin.
func (h *nodeHub) wait(ctx context.Context, node string, since int64, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return
	case <-t.C:
		return
	}
	h.mu.Lock()
	if h.changedAfter(node, since) {
		h.mu.Unlock()
		return
	}
	if since < h.start {
		// The hub started after since: ask etcd whether a key of the node
		// was written since (a delete in between is seen at the next change
		// or timeout; this happens only at a (re)start of the hub).
		h.mu.Unlock()
		if changed, err := h.changedSince(ctx, node, since); err != nil || changed {
			return
		}
		h.mu.Lock()
		if h.changedAfter(node, since) {
			h.mu.Unlock()
			return
		}
	}
	ch := make(chan struct{})
	h.waiters[node] = append(h.waiters[node], waiter{ch: ch, since: since})
	h.mu.Unlock()
	select {
	case <-ch:
		return
	case <-ctx.Done():
	case <-t.C:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.waiters[node]
	for i, w := range ws {
		if w.ch == ch {
			h.waiters[node] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(h.waiters[node]) == 0 {
		delete(h.waiters, node)
	}
}

// changedSince reports whether a key of node, or of a set it names, was
// written after revision since.
func (h *nodeHub) changedSince(ctx context.Context, node string, since int64) (bool, error) {
	var keys []string
	for _, p := range h.prefixes {
		keys = append(keys, p+node+"/")
	}
	h.mu.Lock()
	for _, name := range h.nodeSets[node] {
		keys = append(keys, setPrefix+name)
	}
	h.mu.Unlock()
	for _, k := range keys {
		resp, err := h.st.C.Get(ctx, k, clientv3.WithPrefix(), clientv3.WithMinModRev(since+1), clientv3.WithCountOnly())
		if err != nil {
			return false, err
		}
		if resp.Count > 0 {
			return true, nil
		}
	}
	return false, nil
}
