package ecs

import "sync"

// recordCache hands a task record this server has just written to the next
// writer of the same task on this server, decoded, with the revision it was
// written at: RunTask's records to placement, placement's to the task's
// first report. Each of those read the record back from etcd and decoded
// it (about 5% of the CPU of a million-task run, and a tenth of its
// allocations) although this process had just encoded it.
//
// A record taken from the cache is the taker's own: nothing else holds it
// as writable. Its revision is what the taker's transaction compares, as
// it would a revision it had read, so a record another writer changed
// meanwhile (a StopTask, another replica) fails the comparison and the
// taker reads it from etcd as before: the cache can be stale, never wrong.
// Writers that change a record's slices copy them first (setENI,
// applyReport), because a cached record shares them with what its writer
// answered (RunTask's reply).
//
// It holds at most two generations of recordCacheGen records: a record not
// taken before two generations have filled is dropped, and read from etcd
// when its turn comes.
type recordCache struct {
	mu       sync.Mutex
	cur, old map[string]cachedRecord
}

type cachedRecord struct {
	rec *taskRecord
	rev int64
}

// recordCacheGen bounds the cache: in a million-task run fewer than a few
// thousand tasks are between RunTask and placement, or placement and their
// first report, at any time.
const recordCacheGen = 8192

// put offers rec, stored at key as of rev.
func (c *recordCache) put(key string, rev int64, rec *taskRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur = make(map[string]cachedRecord)
	}
	if len(c.cur) >= recordCacheGen {
		c.old, c.cur = c.cur, make(map[string]cachedRecord, recordCacheGen)
	}
	delete(c.old, key)
	c.cur[key] = cachedRecord{rec: rec, rev: rev}
}

// take removes and returns the record cached for key, if any.
func (c *recordCache) take(key string) (*taskRecord, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range []map[string]cachedRecord{c.cur, c.old} {
		if e, ok := m[key]; ok {
			delete(m, key)
			return e.rec, e.rev, true
		}
	}
	return nil, 0, false
}

// len is how many records are cached.
func (c *recordCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
