package vpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
)

// The firewall reconciler: it keeps fw/<node>/<eni-id> equal to what the
// ENI's groups compile to (members of source groups are address sets, which
// AttachENI and ReleaseENI keep: no firewall changes with them).
//
// It watches the VPC state of every account (security groups); a change
// marks its scope dirty, and after a short debounce every dirty
// scope is recomputed from one consistent snapshot. Each firewall is
// written only when its content changed, in a transaction that requires the
// firewall and its ENI unchanged since the snapshot, so two reconcilers (two
// replicas, or a restart) never put an older policy over a newer one and
// never resurrect the firewall of a released ENI. A firewall's Revision is
// the etcd revision of the snapshot it was computed from, so it only grows.

// retryDelay is how long the reconciler waits after a failure.
const retryDelay = time.Second

// errStale reports that a firewall or its ENI changed while it was being
// recomputed: the scope is recomputed again.
var errStale = errors.New("firewalls changed while being recomputed")

// Run runs the firewall reconciler until ctx ends: a full pass over every
// scope, then incremental passes as groups and ENIs change.
func (s *Service) Run(ctx context.Context) error {
	for {
		err := s.reconcileLoop(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("vpc firewall reconciler restarting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryDelay):
		}
	}
}

// reconcileLoop does a full pass, then follows the watch until it fails.
func (s *Service) reconcileLoop(ctx context.Context) error {
	rev, dirty, err := s.fullPass(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.st.C.Watch(wctx, acctPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	var timer *time.Timer
	var fire <-chan time.Time
	arm := func(d time.Duration) {
		if fire == nil {
			timer = time.NewTimer(d)
			fire = timer.C
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	if len(dirty) > 0 {
		arm(s.cfg.Debounce)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch vpc state: %w", err)
			}
			for _, ev := range wr.Events {
				// An ENI's firewall depends on its groups' rules only (a
				// group's members are an address set): a new ENI comes with
				// its firewall, and only a change of rules recomputes.
				if sc, kind, ok := watchedKind(string(ev.Kv.Key)); ok && kind == "sgs" {
					dirty[sc] = true
				}
			}
			if len(dirty) > 0 {
				arm(s.cfg.Debounce)
			}
		case <-fire:
			fire = nil
			for sc := range dirty {
				if err := s.reconcileScope(ctx, sc); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					level := slog.LevelWarn
					if errors.Is(err, errStale) {
						level = slog.LevelDebug
					}
					s.log.Log(ctx, level, "recompute firewalls", "account", sc.account, "region", sc.region, "err", err)
					continue // stays dirty: try again
				}
				delete(dirty, sc)
			}
			if len(dirty) > 0 {
				arm(retryDelay / 4)
			}
		}
	}
}

// fullPass recomputes every scope's firewalls and removes firewalls whose
// ENI is gone. It returns the revision from which changes must be watched
// and the scopes to recompute again (they changed meanwhile).
func (s *Service) fullPass(ctx context.Context) (int64, map[scope]bool, error) {
	scopes, rev, err := listRev[scopeIndexRecord](ctx, s.st, scopeIndexPrefix(), 0)
	if err != nil {
		return 0, nil, err
	}
	dirty := map[scope]bool{}
	live := map[string]bool{} // firewall keys of every ENI at rev
	for _, si := range scopes {
		sc := scope{account: si.v.Account, region: si.v.Region}
		if err := s.reconcileScope(ctx, sc); errors.Is(err, errStale) {
			dirty[sc] = true
		} else if err != nil {
			return 0, nil, err
		}
		enis, _, err := listRev[eniRecord](ctx, s.st, sc.prefix("enis"), rev)
		if err != nil {
			return 0, nil, err
		}
		for _, e := range enis {
			live[fwKey(e.v.Node, e.v.ENI.ID)] = true
		}
	}
	if err := s.removeOrphans(ctx, rev, live); err != nil {
		return 0, nil, err
	}
	return rev, dirty, nil
}

// removeOrphans deletes the firewalls (as of revision rev) whose ENI did
// not exist at rev. Nothing makes them but a crash of an older version or a
// hand edit; the check keeps agents from enforcing stale policy forever.
func (s *Service) removeOrphans(ctx context.Context, rev int64, live map[string]bool) error {
	resp, err := s.st.C.Get(ctx, fwPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
	if err != nil {
		return fmt.Errorf("list firewalls: %w", err)
	}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if live[k] {
			continue
		}
		t := &txn{}
		t.ifRev(k, kv.ModRevision)
		t.del(k)
		if _, _, err := s.commit(ctx, t); err != nil {
			return err
		}
		s.log.Info("removed firewall of a released eni", "key", strings.TrimPrefix(k, fwPrefix()))
	}
	return nil
}

// reconcileScope recomputes the firewalls of a scope's ENIs from one
// snapshot and writes those that changed.
func (s *Service) reconcileScope(ctx context.Context, sc scope) error {
	enis, rev, err := listRev[eniRecord](ctx, s.st, sc.prefix("enis"), 0)
	if err != nil {
		return err
	}
	if len(enis) == 0 {
		return nil
	}
	groupList, _, err := listRev[groupRecord](ctx, s.st, sc.prefix("sgs"), rev)
	if err != nil {
		return err
	}
	groups := make(map[string]*groupRecord, len(groupList))
	for _, g := range groupList {
		groups[g.v.ID] = g.v
	}
	var conflicts int
	for _, e := range enis {
		want := computeFirewall(sc, &e.v.ENI, groups)
		key := fwKey(e.v.Node, e.v.ENI.ID)
		resp, err := s.st.C.Get(ctx, key, clientv3.WithRev(rev))
		if err != nil {
			return fmt.Errorf("get %s: %w", key, err)
		}
		var haveRev int64
		if len(resp.Kvs) > 0 {
			haveRev = resp.Kvs[0].ModRevision
			var have agentapi.Firewall
			if err := json.Unmarshal(resp.Kvs[0].Value, &have); err == nil && sameFirewall(have, want) {
				continue
			}
		}
		want.Revision = rev
		t := &txn{}
		t.ifRev(key, haveRev)
		t.ifRev(sc.eniKey(e.v.ENI.AttachmentID), e.rev)
		t.put(key, want)
		ok, _, err := s.commit(ctx, t)
		if err != nil {
			return err
		}
		if !ok {
			conflicts++ // newer state exists: its own event brings us back
			continue
		}
		s.log.Debug("updated firewall", "account", sc.account, "region", sc.region, "eni", e.v.ENI.ID,
			"node", e.v.Node, "revision", rev)
	}
	if conflicts > 0 {
		return fmt.Errorf("%d of %d: %w", conflicts, len(enis), errStale)
	}
	return nil
}
