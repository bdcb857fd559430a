package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// The hub's part in address sets: the changes of each set it saw (for
// polls' deltas), and a whole copy of each set a poll needed whole, kept
// current from those changes. A set of every task in a group changes
// each time one starts or stops; reading it whole reads a key per member.

// setChange is one member's address joining (add) or leaving a set.
type setChange struct {
	rev  int64
	addr string
	add  bool
}

// setDeltaWait is how long setDelta waits for the hub to see a set's
// change before the poll sends the whole set instead; setWholeWait is how
// long a whole set from the hub's copy waits, before it is read from the
// store (a key per member: under load, far dearer than the wait).
const (
	setDeltaWait = 100 * time.Millisecond
	setWholeWait = 2 * time.Second
)

// maxSetLog is how many changes of a set the hub keeps for deltas; a poll
// further behind gets the whole set.
const maxSetLog = 16384

// setCopy is the hub's whole copy of an address set: the set as of its
// last change (set.Revision), unchanged through asOf, the revision it was
// read at or brought forward to. A set that last changed before the hub
// started can still be kept, if it was read after.
type setCopy struct {
	set  agentapi.AddressSet
	asOf int64
}

// maxSetCopies bounds the whole copies the hub keeps; past it, it starts
// over.
const maxSetCopies = 4096

// waitSeen waits up to wait for the hub to have seen set name's changes
// up to upto, and reports whether it can tell those after since (it
// started after since or dropped some: no). h.mu is held, and released
// while it waits.
func (h *nodeHub) waitSeen(ctx context.Context, name string, since, upto int64, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for h.setSeen[name] < upto && since >= max(h.start, h.setFloor[name]) {
		seen := h.seen
		h.mu.Unlock()
		select {
		case <-seen:
			h.mu.Lock()
		case <-t.C:
			h.mu.Lock()
			return false
		case <-ctx.Done():
			h.mu.Lock()
			return false
		}
	}
	return since >= max(h.start, h.setFloor[name]) && h.setSeen[name] >= upto
}

// netChange is the net change of log after revision since up to upto.
func netChange(log []setChange, since, upto int64) (added, removed []string) {
	lo := sort.Search(len(log), func(i int) bool { return log[i].rev > since })
	hi := lo + sort.Search(len(log)-lo, func(i int) bool { return log[lo+i].rev > upto })
	span := log[lo:hi]
	if len(span) == 0 {
		return nil, nil
	}
	if !slices.ContainsFunc(span, func(c setChange) bool { return !c.add }) {
		// Only joins, the common case while tasks start: no map of the
		// last change of each address (one per poll was 4% of a loaded
		// server's CPU).
		added = make([]string, len(span))
		for i, c := range span {
			added[i] = c.addr
		}
		slices.Sort(added)
		return slices.Compact(added), nil
	}
	net := map[string]bool{}
	for _, c := range span {
		net[c.addr] = c.add
	}
	for a, add := range net {
		if add {
			added = append(added, a)
		} else {
			removed = append(removed, a)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// setDelta returns the net change of set name after revision since up to
// upto, from the changes the hub saw, waiting up to a moment for the hub's
// watch to bring upto (a poll's read is often ahead of it). ok is false
// when the hub cannot tell (it started after since, dropped some, or has
// not seen upto in time).
func (h *nodeHub) setDelta(ctx context.Context, name string, since, upto int64) (added, removed []string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.waitSeen(ctx, name, since, upto, setDeltaWait) {
		return nil, nil, false
	}
	added, removed = netChange(h.setLog[name], since, upto)
	return added, removed, true
}

// logSet records a change of set name. h.mu is held.
func (h *nodeHub) logSet(name string, rev int64, value []byte) {
	var c agentapi.AddressSetChange
	addrs, add, ok := []string(nil), false, false
	if len(value) > 0 && json.Unmarshal(value, &c) == nil {
		addrs, add, ok = c.Members()
	}
	if !ok {
		// Not a member's change (the set was deleted): deltas across it
		// cannot be told.
		delete(h.setLog, name)
		delete(h.copies, name)
		h.setFloor[name] = rev
		return
	}
	log := h.setLog[name]
	for _, a := range addrs {
		log = append(log, setChange{rev: rev, addr: a, add: add})
	}
	if len(log) > maxSetLog {
		floor := log[len(log)-maxSetLog/2-1].rev
		// The copy must not fall behind what the log can tell: bring it
		// to the new floor with the changes about to be dropped.
		if cp, ok := h.copies[name]; ok && cp.asOf < floor {
			// floor is a change's revision: the set's last as of floor.
			added, removed := netChange(log, cp.asOf, floor)
			h.copies[name] = setCopy{set: agentapi.ApplySetDelta(cp.set, agentapi.AddressSet{Revision: floor, Addresses: added, Removed: removed}), asOf: floor}
		}
		h.setFloor[name] = floor
		log = slices.Clone(log[len(log)-maxSetLog/2:])
	}
	h.setLog[name] = log
}

// wholeSet returns set name whole as of its revision rev (its last change
// as of a poll's read), from the copy the hub keeps and the changes it saw
// since (waiting up to setWholeWait for the hub to see rev). ok is false
// if it has no copy as old as rev, or cannot tell the changes in time.
func (h *nodeHub) wholeSet(ctx context.Context, name string, rev int64) (agentapi.AddressSet, bool) {
	h.mu.Lock()
	cp, ok := h.copies[name]
	switch {
	case !ok || rev < cp.set.Revision || (rev > cp.set.Revision && rev <= cp.asOf):
		h.mu.Unlock()
		return agentapi.AddressSet{}, false
	case rev == cp.set.Revision:
		h.mu.Unlock()
		return cp.set, true
	}
	if !h.waitSeen(ctx, name, cp.asOf, rev, setWholeWait) {
		h.mu.Unlock()
		return agentapi.AddressSet{}, false
	}
	if cp, ok = h.copies[name]; !ok || rev <= cp.asOf { // moved on while it waited
		h.mu.Unlock()
		return agentapi.AddressSet{}, false
	}
	added, removed := netChange(h.setLog[name], cp.asOf, rev)
	h.mu.Unlock()
	set := agentapi.ApplySetDelta(cp.set, agentapi.AddressSet{Revision: rev, Addresses: added, Removed: removed})
	h.keepCopy(set, rev)
	return set, true
}

// keepCopy keeps set (whole, its addresses in order, never changed after),
// read as of revision asOf, as the hub's copy of it, unless the copy is as
// new or the hub could not keep it current (it cannot tell the set's
// changes after asOf).
func (h *nodeHub) keepCopy(set agentapi.AddressSet, asOf int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if asOf < max(h.start, h.setFloor[set.Name]) || asOf < set.Revision {
		return
	}
	if cp, ok := h.copies[set.Name]; ok && cp.asOf >= asOf {
		return
	}
	if len(h.copies) >= maxSetCopies {
		h.copies = map[string]setCopy{}
	}
	h.copies[set.Name] = setCopy{set: set, asOf: asOf}
}
