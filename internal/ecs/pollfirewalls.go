package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// The firewalls and address sets of an agent's poll.

// fwNames remembers the address sets each stored firewall names, by its
// key and revision: a poll that is not a firewall delta sends a node's
// firewalls as stored, and would otherwise decode every one of them each
// time the node is woken. (A firewall delta has them from the firewall key
// index.)
type fwNames struct {
	mu    sync.RWMutex
	names map[string]fwNamesEntry
}

type fwNamesEntry struct {
	rev   int64
	names []string
}

// maxFWNames bounds the cache; past it, it starts over.
const maxFWNames = 1 << 17

// cached returns the sets the firewall stored under key at rev names, if
// this cache knows.
func (c *fwNames) cached(key string, rev int64) ([]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, hit := c.names[key]
	return e.names, hit && e.rev == rev
}

// of returns the sets the firewall kv names (ok false: not a firewall).
func (c *fwNames) of(kv *mvccpb.KeyValue) ([]string, bool) {
	key := string(kv.Key)
	if names, hit := c.cached(key, kv.ModRevision); hit {
		return names, true
	}
	names, ok := firewallSets(kv.Value)
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || len(c.names) >= maxFWNames {
		c.names = map[string]fwNamesEntry{}
	}
	c.names[key] = fwNamesEntry{rev: kv.ModRevision, names: names}
	return names, true
}

// firewallSets returns the address sets a stored firewall names (ok false:
// the value is not a firewall).
func firewallSets(val []byte) ([]string, bool) {
	var fw agentapi.Firewall
	if json.Unmarshal(val, &fw) != nil {
		return nil, false
	}
	return agentapi.SetNames([]agentapi.Firewall{fw}), true
}

// deltaFirewalls fills read's firewalls for a firewall delta from the
// firewall key index, once it has applied rev: the firewalls changed after
// since (read as of the revision the index had applied, so that each is
// the one the index gave: a firewall that changed after rev goes out now,
// and again in the next poll), the sets they name and those every firewall
// of the node names, and the ENIs of all unless keep and none left. It
// reports false if the index cannot tell, and the poll reads the node's
// whole fw/ prefix instead.
func (s *Service) deltaFirewalls(ctx context.Context, node string, since, rev int64, keep bool, read *nodeRead) bool {
	d, ok := s.fwKeys.delta(ctx, node, since, rev, keep, 2*time.Second)
	if !ok {
		return false
	}
	prefix := store.Prefix("fw", node)
	keys := make([]*mvccpb.KeyValue, len(d.changed))
	for i, k := range d.changed {
		keys[i] = &mvccpb.KeyValue{Key: []byte(prefix + k.id)}
	}
	got, err := s.valuesAt(ctx, keys, d.rev)
	if err != nil {
		s.log.Warn("read changed firewalls", "node", node, "err", err)
		return false
	}
	if len(got) != len(keys) { // the index and the store disagree
		s.log.Warn("firewall key index lacks a value the store has", "node", node, "rev", d.rev)
		return false
	}
	read.firewalls, read.fwNames = got, d.refs
	read.fwPresent, read.fwPresentSame = d.all, d.same && keep
	read.fwSets, read.fwHeld = d.names, d.held
	return true
}

// pollFirewalls returns a poll's firewalls as stored and the address sets
// they name (see addressSets). A firewall delta returns only the firewalls
// changed after since.
func (s *Service) pollFirewalls(ctx context.Context, node string, read nodeRead, since int64, delta bool) ([]json.RawMessage, []agentapi.AddressSet, error) {
	var firewalls []json.RawMessage
	// The sets that firewalls changed after since name, less those that
	// firewalls the agent had at since name (it holds those).
	var all, forced, held []string
	if read.fwDelta {
		for i, kv := range read.firewalls {
			firewalls = append(firewalls, kv.Value)
			forced = append(forced, read.fwNames[i]...)
		}
		all, held = read.fwSets, read.fwHeld
	} else {
		for _, kv := range read.firewalls {
			names, ok := s.fwNames.of(kv)
			if !ok {
				continue
			}
			firewalls = append(firewalls, kv.Value)
			all = append(all, names...)
			if kv.ModRevision > since {
				forced = append(forced, names...)
			} else {
				held = append(held, names...)
			}
		}
		slices.Sort(all)
		all = slices.Compact(all)
	}
	forced = slices.DeleteFunc(forced, func(n string) bool { return slices.Contains(held, n) })
	sets, err := s.addressSets(ctx, node, all, forced, read.rev, since, delta)
	s.metrics.sentSets(sets)
	return firewalls, sets, err
}

// addressSets reads the address sets node's firewalls name, as of rev,
// and tells the hub which they are. A delta sends only those that changed
// after since, and those named by a firewall that changed after since (the
// agent may not have them); the agent keeps the rest.
func (s *Service) addressSets(ctx context.Context, node string, names, forced []string, rev, since int64, delta bool) ([]agentapi.AddressSet, error) {
	s.hub.refer(node, names)
	if len(names) == 0 || s.cfg.Networks == nil {
		return nil, nil
	}
	if !delta {
		return s.wholeSets(ctx, names, rev)
	}
	slices.Sort(forced)
	forced = slices.Compact(forced)
	out, err := s.wholeSets(ctx, forced, rev)
	if err != nil {
		return nil, err
	}
	// The agent holds the other sets as of since: send what changed, as
	// the hub saw it when it saw it all. A set of every task in a group
	// would otherwise go whole to every node naming it each time one task
	// starts or stops.
	rest := slices.DeleteFunc(names, func(n string) bool { _, found := slices.BinarySearch(forced, n); return found })
	revs, err := s.cfg.Networks.AddressSetRevisions(ctx, rest, rev)
	if err != nil {
		return nil, err
	}
	var whole []string
	var wholeRevs []int64
	for i, name := range rest {
		if revs[i] <= since {
			continue
		}
		if added, removed, ok := s.hub.setDelta(ctx, name, since, revs[i]); ok {
			out = append(out, agentapi.AddressSet{Name: name, Revision: revs[i], Delta: true, Addresses: added, Removed: removed})
		} else {
			whole, wholeRevs = append(whole, name), append(wholeRevs, revs[i])
		}
	}
	sets, err := s.wholeSetsAt(ctx, whole, wholeRevs, rev)
	return append(out, sets...), err
}

// wholeSets returns the named address sets whole, as of rev. A set the
// hub keeps a copy of is that copy with the changes the hub saw since
// applied; only the others are read, one read of each at a time however
// many polls want it. Reading a set whole reads a key per member: a set
// of every task in a group, read for each host that needed it whole (its
// first task in the group, or a poll whose delta the hub could not tell),
// was most of a loaded server's work.
func (s *Service) wholeSets(ctx context.Context, names []string, rev int64) ([]agentapi.AddressSet, error) {
	if len(names) == 0 {
		return nil, nil
	}
	revs, err := s.cfg.Networks.AddressSetRevisions(ctx, names, rev)
	if err != nil {
		return nil, err
	}
	return s.wholeSetsAt(ctx, names, revs, rev)
}

// wholeSetsAt is wholeSets for a caller that has read the sets' revisions
// as of rev (revs[i] is names[i]'s).
func (s *Service) wholeSetsAt(ctx context.Context, names []string, revs []int64, rev int64) ([]agentapi.AddressSet, error) {
	var out []agentapi.AddressSet
	for i, name := range names {
		set, ok := s.hub.wholeSet(ctx, name, revs[i])
		if !ok {
			var err error
			if set, ok, err = s.readSet(ctx, name, revs[i], rev); err != nil {
				return nil, err
			}
		}
		if ok {
			out = append(out, set)
		}
	}
	return out, nil
}

// readSet reads set name whole as of rev (its revision then is setRev)
// and gives the hub a copy; ok is false if name is not a set. A poll that
// finds another reading the set waits for that read, and takes its copy
// if that is as of setRev, or from the hub if that is older (the hub
// brings it to setRev); otherwise it reads the set itself.
func (s *Service) readSet(ctx context.Context, name string, setRev, rev int64) (set agentapi.AddressSet, ok bool, err error) {
	read := func() (any, error) {
		sets, err := s.cfg.Networks.AddressSets(ctx, []string{name}, rev, 0)
		if err != nil {
			return nil, err
		}
		for _, set := range sets {
			s.hub.keepCopy(set, rev)
		}
		return sets, nil
	}
	first := func(v any) (agentapi.AddressSet, bool) {
		if sets := v.([]agentapi.AddressSet); len(sets) > 0 {
			return sets[0], true
		}
		return agentapi.AddressSet{}, false
	}
	v, err, _ := s.setReads.Do(name, read)
	if err == nil {
		if set, ok := first(v); !ok || set.Revision == setRev {
			return set, ok, nil
		}
	}
	if set, ok := s.hub.wholeSet(ctx, name, setRev); ok {
		return set, true, nil
	}
	if v, err = read(); err != nil {
		return agentapi.AddressSet{}, false, err
	}
	set, ok = first(v)
	return set, ok, nil
}
