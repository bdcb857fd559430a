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
// key and revision: a poll sends a node's firewalls as stored, and would
// otherwise decode every one of them each time the node is woken.
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
	var fw agentapi.Firewall
	if json.Unmarshal(kv.Value, &fw) != nil {
		return nil, false
	}
	names := agentapi.SetNames([]agentapi.Firewall{fw})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || len(c.names) >= maxFWNames {
		c.names = map[string]fwNamesEntry{}
	}
	c.names[key] = fwNamesEntry{rev: kv.ModRevision, names: names}
	return names, true
}

// deltaFirewalls fills read's firewalls for a firewall delta from the
// firewall key index, once it has applied rev: every firewall of node by
// key and mod revision, with the value of those changed after since (the
// poll sends them) and of those whose set names the cache lacks. It
// reports false if the index cannot tell, and the poll reads the node's
// whole fw/ prefix instead.
func (s *Service) deltaFirewalls(ctx context.Context, node string, since, rev int64, read *nodeRead) bool {
	keys, at, ok := s.fwKeys.node(ctx, node, rev, 2*time.Second)
	if !ok {
		return false
	}
	prefix := store.Prefix("fw", node)
	kvs := make([]*mvccpb.KeyValue, len(keys))
	names := make([][]string, len(keys))
	present := make([]string, len(keys))
	var need []*mvccpb.KeyValue
	for i, k := range keys {
		kv := &mvccpb.KeyValue{Key: []byte(prefix + k.id), ModRevision: k.rev}
		kvs[i], present[i] = kv, k.id
		var hit bool
		if names[i], hit = s.fwNames.cached(string(kv.Key), k.rev); !hit || k.rev > since {
			need = append(need, kv)
		}
	}
	// The index had applied at, not rev: the values are read as of at, so
	// that each is the one of the revision the index gave. A firewall that
	// changed after rev goes out now, and again in the next poll.
	got, err := s.valuesAt(ctx, need, at)
	if err != nil {
		s.log.Warn("read changed firewalls", "node", node, "err", err)
		return false
	}
	byKey := make(map[string]*mvccpb.KeyValue, len(got))
	for _, kv := range got {
		byKey[string(kv.Key)] = kv
	}
	for i, kv := range kvs {
		v, ok := byKey[string(kv.Key)]
		if !ok {
			continue
		}
		kvs[i] = v
		if names[i], ok = s.fwNames.of(v); !ok {
			names[i] = nil
		}
	}
	read.firewalls, read.fwNames, read.fwPresent = kvs, names, present
	return true
}

// pollFirewalls returns a poll's firewalls as stored and the address sets
// they name (see addressSets). A firewall delta returns only the firewalls
// changed after since (read.fwPresent names them all).
func (s *Service) pollFirewalls(ctx context.Context, node string, read nodeRead, since int64, delta bool) ([]json.RawMessage, []agentapi.AddressSet, error) {
	var firewalls []json.RawMessage
	// The sets that firewalls changed after since name, less those that
	// firewalls the agent had at since name (it holds those).
	var all, forced, held []string
	for i, kv := range read.firewalls {
		var names []string
		if read.fwDelta {
			names = read.fwNames[i]
			if kv.ModRevision > since && kv.Value != nil {
				firewalls = append(firewalls, kv.Value)
			}
		} else {
			var ok bool
			if names, ok = s.fwNames.of(kv); !ok {
				continue
			}
			firewalls = append(firewalls, kv.Value)
		}
		all = append(all, names...)
		if kv.ModRevision > since {
			forced = append(forced, names...)
		} else {
			held = append(held, names...)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
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

// wholeSets returns the named address sets whole, as of rev. A set this
// server sent whole before is that copy with the changes the hub saw since
// applied; only the others are read. Reading a set whole reads a key per
// member: a set of every task in a group, read for each host that needed
// it whole (its first task in the group, or a poll whose delta the hub
// could not tell), was most of a loaded server's work.
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
	if len(names) == 0 {
		return nil, nil
	}
	var out []agentapi.AddressSet
	var read []string
	for i, name := range names {
		if set, ok := s.setCopy(ctx, name, revs[i]); ok {
			out = append(out, set)
		} else {
			read = append(read, name)
		}
	}
	sets, err := s.cfg.Networks.AddressSets(ctx, read, rev, 0)
	if err != nil {
		return nil, err
	}
	s.wholeSetsMu.Lock()
	if s.wholeSetCopies == nil || len(s.wholeSetCopies) >= maxWholeSetCopies {
		s.wholeSetCopies = map[string]agentapi.AddressSet{}
	}
	for _, set := range sets {
		if c, ok := s.wholeSetCopies[set.Name]; !ok || c.Revision < set.Revision {
			s.wholeSetCopies[set.Name] = set
		}
	}
	s.wholeSetsMu.Unlock()
	return append(out, sets...), nil
}

// maxWholeSetCopies bounds the copies wholeSets keeps; past it, it starts
// over.
const maxWholeSetCopies = 4096

// setCopy is set name whole at revision rev from the copy kept, if the
// copy is at rev or the hub can tell the changes from its revision to rev.
func (s *Service) setCopy(ctx context.Context, name string, rev int64) (agentapi.AddressSet, bool) {
	s.wholeSetsMu.Lock()
	c, ok := s.wholeSetCopies[name]
	s.wholeSetsMu.Unlock()
	if !ok || c.Revision > rev {
		return agentapi.AddressSet{}, false
	}
	if c.Revision == rev {
		return c, true
	}
	added, removed, ok := s.hub.setDelta(ctx, name, c.Revision, rev)
	if !ok {
		return agentapi.AddressSet{}, false
	}
	set := agentapi.ApplySetDelta(c, agentapi.AddressSet{Revision: rev, Addresses: added, Removed: removed})
	s.wholeSetsMu.Lock()
	if cur, ok := s.wholeSetCopies[name]; ok && cur.Revision < rev {
		s.wholeSetCopies[name] = set
	}
	s.wholeSetsMu.Unlock()
	return set, true
}
