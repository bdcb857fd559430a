package ecs

import (
	"context"
	"errors"
	"sync"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// watchProgress is how far a watch-fed index (taskIndex, usageIndex) has
// applied the store, so that a reader can wait until the index shows what
// etcd held when the reader asked: read-your-writes over an in-memory view.
type watchProgress struct {
	mu       sync.Mutex
	rev      int64         // revision applied (0: not built)
	advanced chan struct{} // closed (and replaced) whenever rev grows
	watcher  clientv3.Watcher
}

// errIndexBehind: an index could not show the store's current state in
// time; the caller reads etcd instead.
var errIndexBehind = errors.New("index is behind the store")

// started marks the index built at rev and following w.
func (p *watchProgress) started(w clientv3.Watcher, rev int64) {
	p.mu.Lock()
	p.watcher = w
	p.advanceLocked(rev)
	p.mu.Unlock()
}

// stopped marks the index unbuilt (its watch ended).
func (p *watchProgress) stopped() {
	p.mu.Lock()
	p.rev, p.watcher = 0, nil
	p.mu.Unlock()
}

// advance records that the index has applied rev.
func (p *watchProgress) advance(rev int64) {
	p.mu.Lock()
	p.advanceLocked(rev)
	p.mu.Unlock()
}

func (p *watchProgress) advanceLocked(rev int64) {
	if p.advanced == nil {
		p.advanced = make(chan struct{})
	}
	if rev > p.rev {
		p.rev = rev
		close(p.advanced)
		p.advanced = make(chan struct{})
	}
}

// applied is the revision the index has applied (0: not built).
func (p *watchProgress) applied() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rev
}

// built reports whether the index holds the store's state (at some revision).
func (p *watchProgress) built() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rev != 0
}

// catchUp asks etcd for its current revision and waits, at most timeout,
// until the index has applied it.
func (p *watchProgress) catchUp(ctx context.Context, st *store.Store, timeout time.Duration) error {
	resp, err := st.C.Get(ctx, store.Key("index-probe"), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	return p.catchUpTo(ctx, resp.Header.Revision, timeout)
}

// catchUpTo waits, at most timeout, until the index has applied revision
// want.
func (p *watchProgress) catchUpTo(ctx context.Context, want int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// A progress request sent before the watch's stream is up is lost: ask
	// again now and then.
	again := time.NewTicker(50 * time.Millisecond)
	defer again.Stop()
	for {
		p.mu.Lock()
		if p.advanced == nil {
			p.advanced = make(chan struct{})
		}
		rev, advanced, w := p.rev, p.advanced, p.watcher
		p.mu.Unlock()
		if rev != 0 && rev >= want {
			return nil
		}
		if w != nil {
			// A revision that touched nothing under the watched prefix
			// arrives as no event: ask the watch to report where it is.
			// The watch's stream is the one of its context's metadata
			// (WithRequireLeader), so the request must carry the same.
			_ = w.RequestProgress(clientv3.WithRequireLeader(ctx))
		}
		select {
		case <-advanced:
		case <-again.C:
		case <-deadline.C:
			return errIndexBehind
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// follow watches prefix from the revision after rev (the one the index was
// built at), marks the index built, and hands each response's events and
// revision to apply until the watch fails, apply fails or ctx ends; the
// index is marked unbuilt when it returns. prevKV asks for each event's
// previous value.
func (p *watchProgress) follow(ctx context.Context, st *store.Store, prefix string, rev int64, prevKV bool,
	apply func(evs []*clientv3.Event, rev int64) error) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The client's own watcher: an embedded etcd's in-process client has
	// no connection a watcher of its own could use.
	w := st.C.Watcher
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(rev + 1), clientv3.WithProgressNotify()}
	if prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	wch := w.Watch(wctx, prefix, opts...)
	p.started(w, rev)
	defer p.stopped()
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if err := apply(wr.Events, wr.Header.Revision); err != nil {
			return err
		}
	}
	return errors.New("watch closed")
}

// listAt reads every key under prefix at one revision, in pages (a page
// of a million keys would be one huge response), and returns that revision.
func listAt(ctx context.Context, st *store.Store, prefix string, each func(*mvccpb.KeyValue)) (int64, error) {
	var rev int64
	start, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := st.C.Get(ctx, start, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			each(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// runWatched runs follow until ctx ends, starting over (after a short
// pause) whenever its watch fails, e.g. because the store compacted the
// revision it had reached.
func runWatched(ctx context.Context, log interface{ Warn(string, ...any) }, what string, follow func(context.Context) error) {
	for ctx.Err() == nil {
		err := follow(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Warn(what+" watch restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// interner shares one copy of each of the few distinct strings (statuses,
// families, groups, zones) among the entries of an index of a million
// tasks. It stops taking new strings past a bound, so a caller with many
// distinct values (startedBy is free text) cannot grow it without limit.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	if len(in) < 100000 {
		in[s] = s
	}
	return s
}
