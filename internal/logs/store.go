package logs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The store is one bbolt file. Layout (version 1):
//
//	meta/
//	  version                              → "1"
//	groups/
//	  <acct>\0<region>\0<group>            → groupRecord (JSON)
//	streams/
//	  <acct>\0<region>\0<group>\0<stream>  → streamRecord (JSON)
//	events/
//	  <stream id: 8 bytes BE>/             (one bucket per stream)
//	    <timestamp ms: 8 BE><seq: 8 BE>    → <ingestion ms: 8 BE><message>
//	    <timestamp ms: 8 BE><first seq: 8 BE><last seq: 8 BE>
//	                                       → a run: events of one Append with the
//	                                         same timestamp under one key (runs.go)
//
// seq comes from the events bucket's sequence: it grows with every event
// stored, so keys order a stream's events by timestamp, then ingestion
// order, and (timestamp, seq) orders the events of a whole group too.
// Timestamps are stored as unsigned milliseconds (negative ones are refused
// by the API).
var (
	bucketMeta    = []byte("meta")
	bucketGroups  = []byte("groups")
	bucketStreams = []byte("streams")
	bucketEvents  = []byte("events")
	storeVersion  = []byte("1")
)

// Errors of the store; the API maps them to CloudWatch Logs' exceptions.
var (
	ErrGroupNotFound  = errors.New("log group not found")
	ErrStreamNotFound = errors.New("log stream not found")
	ErrGroupExists    = errors.New("log group exists")
	ErrStreamExists   = errors.New("log stream exists")
)

// Scope is the account and region a log group belongs to.
type Scope struct {
	Account string
	Region  string
}

func (s Scope) prefix() string { return s.Account + "\x00" + s.Region + "\x00" }

func groupKey(s Scope, group string) []byte { return []byte(s.prefix() + group) }

func streamKey(s Scope, group, stream string) []byte {
	return []byte(s.prefix() + group + "\x00" + stream)
}

// groupRecord is a log group as stored.
type groupRecord struct {
	Name            string `json:"name"`
	CreationTime    int64  `json:"creationTime"`
	RetentionInDays int    `json:"retentionInDays,omitempty"`
}

// streamRecord is a log stream as stored.
type streamRecord struct {
	Name                string `json:"name"`
	ID                  uint64 `json:"id"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   int64  `json:"lastIngestionTime,omitempty"`
	StoredBytes         int64  `json:"storedBytes"`
	Events              int64  `json:"events"`
	// AgentOffset is the end (in bytes of the container's output) of the
	// last batch an agent shipped into this stream: a retried batch that
	// ends at or before it was stored already.
	AgentOffset int64 `json:"agentOffset,omitempty"`
}

// Event is one log event.
type Event struct {
	Timestamp     int64 // ms since the epoch
	IngestionTime int64
	Seq           uint64
	Message       string
	Stream        string // set by reads over a group
}

// pos is a position in a stream or group: the key of an event.
type pos struct {
	ts  uint64
	seq uint64
}

func (p pos) key() []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], p.ts)
	binary.BigEndian.PutUint64(b[8:], p.seq)
	return b[:]
}

func posOf(k []byte) pos {
	return pos{ts: binary.BigEndian.Uint64(k[:8]), seq: binary.BigEndian.Uint64(k[8:16])}
}

func (p pos) less(q pos) bool { return p.ts < q.ts || p.ts == q.ts && p.seq < q.seq }

// next is the smallest position after p.
func (p pos) next() pos {
	if p.seq == ^uint64(0) {
		return pos{ts: p.ts + 1}
	}
	return pos{ts: p.ts, seq: p.seq + 1}
}

func streamBucketName(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

// Store keeps log groups, streams and events in one bbolt file. It is safe
// for concurrent use: bbolt serialises writers, and each write is one short
// transaction, so a busy stream's batches interleave with everyone else's.
type Store struct {
	db *bolt.DB
}

// OpenStore opens (creating if needed) the store at path.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("logs store dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open logs store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketGroups, bucketStreams, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("version")); v != nil && !bytes.Equal(v, storeVersion) {
			return fmt.Errorf("logs store version %q, want %q", v, storeVersion)
		}
		return meta.Put([]byte("version"), storeVersion)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init logs store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func getJSON(b *bolt.Bucket, k []byte, v any) bool {
	raw := b.Get(k)
	if raw == nil {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

// CreateGroup creates a log group.
func (s *Store) CreateGroup(sc Scope, name string, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups)
		k := groupKey(sc, name)
		if b.Get(k) != nil {
			return ErrGroupExists
		}
		return putJSON(b, k, groupRecord{Name: name, CreationTime: now.UnixMilli()})
	})
}

// GroupInfo is a log group with its totals.
type GroupInfo struct {
	groupRecord
	StoredBytes int64
}

// Group returns one log group.
func (s *Store) Group(sc Scope, name string) (GroupInfo, error) {
	var g GroupInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		if !getJSON(tx.Bucket(bucketGroups), groupKey(sc, name), &g.groupRecord) {
			return ErrGroupNotFound
		}
		g.StoredBytes = groupBytes(tx, sc, name)
		return nil
	})
	return g, err
}

func groupBytes(tx *bolt.Tx, sc Scope, name string) int64 {
	var n int64
	forStreams(tx, sc, name, "", func(_ []byte, r streamRecord) bool {
		n += r.StoredBytes
		return true
	})
	return n
}

// Groups lists the groups of sc whose names start with prefix and come
// after after, in name order, at most limit.
func (s *Store) Groups(sc Scope, prefix, after string, limit int) ([]GroupInfo, bool, error) {
	var out []GroupInfo
	more := false
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketGroups).Cursor()
		p := []byte(sc.prefix() + prefix)
		start := p
		if after != "" {
			start = append(groupKey(sc, after), 0)
		}
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			var g GroupInfo
			if json.Unmarshal(v, &g.groupRecord) != nil {
				continue
			}
			g.StoredBytes = groupBytes(tx, sc, g.Name)
			out = append(out, g)
		}
		return nil
	})
	return out, more, err
}

// SetRetention sets (days > 0) or removes (0) a group's retention.
func (s *Store) SetRetention(sc Scope, name string, days int) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups)
		var g groupRecord
		if !getJSON(b, groupKey(sc, name), &g) {
			return ErrGroupNotFound
		}
		g.RetentionInDays = days
		return putJSON(b, groupKey(sc, name), g)
	})
}

// DeleteGroup deletes a group with its streams and events.
func (s *Store) DeleteGroup(sc Scope, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups)
		if b.Get(groupKey(sc, name)) == nil {
			return ErrGroupNotFound
		}
		var keys [][]byte
		var ids []uint64
		forStreams(tx, sc, name, "", func(k []byte, r streamRecord) bool {
			keys = append(keys, bytes.Clone(k))
			ids = append(ids, r.ID)
			return true
		})
		for i, k := range keys {
			if err := deleteStream(tx, k, ids[i]); err != nil {
				return err
			}
		}
		return b.Delete(groupKey(sc, name))
	})
}

func deleteStream(tx *bolt.Tx, k []byte, id uint64) error {
	if err := tx.Bucket(bucketEvents).DeleteBucket(streamBucketName(id)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	return tx.Bucket(bucketStreams).Delete(k)
}

// forStreams calls f for each stream of a group whose name starts with
// prefix, in name order, until f returns false.
func forStreams(tx *bolt.Tx, sc Scope, group, prefix string, f func(k []byte, r streamRecord) bool) {
	c := tx.Bucket(bucketStreams).Cursor()
	p := []byte(sc.prefix() + group + "\x00" + prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		var r streamRecord
		if json.Unmarshal(v, &r) != nil {
			continue
		}
		if !f(k, r) {
			return
		}
	}
}

// CreateStream creates a stream in a group.
func (s *Store) CreateStream(sc Scope, group, name string, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		_, err := createStream(tx, sc, group, name, now)
		return err
	})
}

func createStream(tx *bolt.Tx, sc Scope, group, name string, now time.Time) (streamRecord, error) {
	if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
		return streamRecord{}, ErrGroupNotFound
	}
	b := tx.Bucket(bucketStreams)
	k := streamKey(sc, group, name)
	if b.Get(k) != nil {
		return streamRecord{}, ErrStreamExists
	}
	id, err := b.NextSequence()
	if err != nil {
		return streamRecord{}, err
	}
	r := streamRecord{Name: name, ID: id, CreationTime: now.UnixMilli()}
	return r, putJSON(b, k, r)
}

// EnsureStream creates the stream (and, if createGroup, the group) unless
// they exist, and returns the stream's AgentOffset. It returns
// ErrGroupNotFound for a missing group it may not create.
func (s *Store) EnsureStream(sc Scope, group, name string, createGroup bool, now time.Time) (int64, error) {
	var offset int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		gb := tx.Bucket(bucketGroups)
		if gb.Get(groupKey(sc, group)) == nil {
			if !createGroup {
				return ErrGroupNotFound
			}
			if err := putJSON(gb, groupKey(sc, group), groupRecord{Name: group, CreationTime: now.UnixMilli()}); err != nil {
				return err
			}
		}
		var r streamRecord
		if getJSON(tx.Bucket(bucketStreams), streamKey(sc, group, name), &r) {
			offset = r.AgentOffset
			return nil
		}
		_, err := createStream(tx, sc, group, name, now)
		return err
	})
	return offset, err
}

// StreamInfo is a stream as described.
type StreamInfo = streamRecord

// Streams lists a group's streams whose names start with prefix, in name
// order. It returns ErrGroupNotFound for a missing group.
func (s *Store) Streams(sc Scope, group, prefix string) ([]StreamInfo, error) {
	var out []StreamInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
			return ErrGroupNotFound
		}
		forStreams(tx, sc, group, prefix, func(_ []byte, r streamRecord) bool {
			out = append(out, r)
			return true
		})
		return nil
	})
	return out, err
}

// DeleteStream deletes a stream and its events.
func (s *Store) DeleteStream(sc Scope, group, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
			return ErrGroupNotFound
		}
		k := streamKey(sc, group, name)
		var r streamRecord
		if !getJSON(tx.Bucket(bucketStreams), k, &r) {
			return ErrStreamNotFound
		}
		return deleteStream(tx, k, r.ID)
	})
}

// PutOptions qualify an append.
type PutOptions struct {
	// AgentOffset, if > 0, is where the batch ends in the container's
	// output; a batch ending at or before the stream's recorded offset is
	// a retry and is not stored again.
	AgentOffset int64
}

// Append stores events (timestamps already validated) in a stream, in
// order, stamped with ingestion time now. It returns the sequence number
// of the last event stored.
func (s *Store) Append(sc Scope, group, stream string, events []Event, now time.Time, o PutOptions) (uint64, error) {
	var last uint64
	// The slab goes back to the pool once bbolt is done with it: after
	// the transaction has committed, not when the function given to
	// Update returns.
	buf := getBuf(entriesSize(events))
	defer putBuf(buf)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
			return ErrGroupNotFound
		}
		sb := tx.Bucket(bucketStreams)
		k := streamKey(sc, group, stream)
		var r streamRecord
		if !getJSON(sb, k, &r) {
			return ErrStreamNotFound
		}
		if o.AgentOffset > 0 && o.AgentOffset <= r.AgentOffset {
			return nil // a retry of a batch already stored
		}
		eb := tx.Bucket(bucketEvents)
		b, err := eb.CreateBucketIfNotExists(streamBucketName(r.ID))
		if err != nil {
			return err
		}
		b.FillPercent = 0.9 // keys mostly arrive in order
		seq := eb.Sequence()
		ing := now.UnixMilli()
		// bbolt keeps keys and values until the transaction ends: one slab
		// holds them all. Events with the same timestamp share a key (runs.go).
		slab := *buf
		for rest := events; len(rest) > 0; {
			n := runLen(rest)
			var ek, ev []byte
			slab, ek, ev = appendEntry(slab, rest[:n], seq+1, ing)
			if err := b.Put(ek, ev); err != nil {
				return err
			}
			for _, e := range rest[:n] {
				if r.Events == 0 || e.Timestamp < r.FirstEventTimestamp {
					r.FirstEventTimestamp = e.Timestamp
				}
				if e.Timestamp > r.LastEventTimestamp {
					r.LastEventTimestamp = e.Timestamp
				}
				r.Events++
				r.StoredBytes += int64(len(e.Message))
			}
			seq += uint64(n)
			rest = rest[n:]
		}
		if err := eb.SetSequence(seq); err != nil {
			return err
		}
		last = seq
		r.LastIngestionTime = ing
		if o.AgentOffset > r.AgentOffset {
			r.AgentOffset = o.AgentOffset
		}
		return putJSON(sb, k, r)
	})
	return last, err
}

// eventCost is what an event counts against a read's byte budget: its
// message and the 26 bytes of overhead CloudWatch Logs counts.
func eventCost(e Event) int { return len(e.Message) + 26 }

// readStream reads a stream's events in [from, to): forward from from, or
// backward from to, at most limit events and about maxBytes. Events are
// returned in ascending order either way.
func (s *Store) readStream(sc Scope, group, stream string, from, to pos, forward bool, limit, maxBytes int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
			return ErrGroupNotFound
		}
		var r streamRecord
		if !getJSON(tx.Bucket(bucketStreams), streamKey(sc, group, stream), &r) {
			return ErrStreamNotFound
		}
		b := tx.Bucket(bucketEvents).Bucket(streamBucketName(r.ID))
		if b == nil {
			return nil
		}
		it := newEvCursor(b)
		size := 0
		if forward {
			it.seek(from)
		} else {
			it.seekBefore(to)
		}
		for it.valid() && len(out) < limit {
			if p := it.pos(); forward && !p.less(to) || !forward && p.less(from) {
				break
			}
			e := it.event()
			if size+eventCost(e) > maxBytes && len(out) > 0 {
				break
			}
			size += eventCost(e)
			out = append(out, e)
			if forward {
				it.next()
			} else {
				it.prev()
			}
		}
		return nil
	})
	if !forward {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, err
}

// scanGroup walks the events of the chosen streams of a group in (timestamp,
// seq) order from from up to (not including) to, calling f for each until f
// returns false or scanLimit events have been looked at. It returns the
// position after the last event looked at, and whether events remain.
func (s *Store) scanGroup(sc Scope, group string, streams func(name string) bool, from, to pos, scanLimit int, f func(Event) bool) (pos, bool, error) {
	next, more := from, false
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Get(groupKey(sc, group)) == nil {
			return ErrGroupNotFound
		}
		type head struct {
			name string
			it   *evCursor
		}
		var heads []*head
		eb := tx.Bucket(bucketEvents)
		forStreams(tx, sc, group, "", func(_ []byte, r streamRecord) bool {
			if !streams(r.Name) {
				return true
			}
			b := eb.Bucket(streamBucketName(r.ID))
			if b == nil {
				return true
			}
			h := &head{name: r.Name, it: newEvCursor(b)}
			h.it.seek(from)
			if h.it.valid() && h.it.pos().less(to) {
				heads = append(heads, h)
			}
			return true
		})
		// Few streams per group in practice: a linear pick of the smallest
		// head is simpler than a heap and as fast.
		for scanned := 0; len(heads) > 0; scanned++ {
			min := 0
			for i := 1; i < len(heads); i++ {
				if heads[i].it.pos().less(heads[min].it.pos()) {
					min = i
				}
			}
			h := heads[min]
			if scanned == scanLimit {
				next, more = h.it.pos(), true
				return nil
			}
			e := h.it.event()
			e.Stream = h.name
			if !f(e) {
				next, more = h.it.pos(), true
				return nil
			}
			next = h.it.pos().next()
			h.it.next()
			if !h.it.valid() || !h.it.pos().less(to) {
				heads = append(heads[:min], heads[min+1:]...)
			}
		}
		return nil
	})
	return next, more, err
}

// Expire deletes the events older than their group's retention, at most
// batch events per transaction so writers are not held up. It returns how
// many events it deleted.
func (s *Store) Expire(now time.Time, batch int) (int, error) {
	type target struct {
		key    []byte
		id     uint64
		cutoff uint64
	}
	var targets []target
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketGroups).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var g groupRecord
			if json.Unmarshal(v, &g) != nil || g.RetentionInDays <= 0 {
				continue
			}
			parts := strings.SplitN(string(k), "\x00", 3)
			if len(parts) != 3 {
				continue
			}
			cutoff := now.Add(-time.Duration(g.RetentionInDays) * 24 * time.Hour).UnixMilli()
			if cutoff <= 0 {
				continue
			}
			forStreams(tx, Scope{Account: parts[0], Region: parts[1]}, g.Name, "", func(sk []byte, r streamRecord) bool {
				if r.Events > 0 && r.FirstEventTimestamp < cutoff {
					targets = append(targets, target{key: bytes.Clone(sk), id: r.ID, cutoff: uint64(cutoff)})
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("find expired log events: %w", err)
	}
	total := 0
	for _, t := range targets {
		for {
			n, done, err := s.expireStream(t.key, t.id, t.cutoff, batch)
			total += n
			if err != nil {
				return total, fmt.Errorf("expire log events: %w", err)
			}
			if done {
				break
			}
		}
	}
	return total, nil
}

// expireStream deletes about batch events (whole keys) of one stream older than cutoff
// and keeps the stream's totals right.
func (s *Store) expireStream(sk []byte, id uint64, cutoff uint64, batch int) (int, bool, error) {
	n, done := 0, true
	err := s.db.Update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketStreams)
		var r streamRecord
		if !getJSON(sb, sk, &r) || r.ID != id {
			return nil // deleted meanwhile
		}
		b := tx.Bucket(bucketEvents).Bucket(streamBucketName(id))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var bytesFreed int64
		var msgs [][2]int
		k, v := c.First()
		for ; k != nil && posOf(k).ts < cutoff; k, v = c.First() {
			if n >= batch {
				done = false
				break
			}
			if isRun(k) {
				msgs = runMessages(v, msgs[:0])
				for _, m := range msgs {
					bytesFreed += int64(m[1] - m[0])
				}
			} else {
				bytesFreed += int64(len(v) - 8)
			}
			n += keyEvents(k)
			if err := c.Delete(); err != nil {
				return err
			}
		}
		r.Events -= int64(n)
		r.StoredBytes -= bytesFreed
		if k != nil {
			r.FirstEventTimestamp = int64(posOf(k).ts)
		} else {
			r.FirstEventTimestamp, r.Events, r.StoredBytes = 0, 0, 0
		}
		return putJSON(sb, sk, r)
	})
	return n, done, err
}

// sortStreams orders streams for DescribeLogStreams.
func sortStreams(list []StreamInfo, byLastEvent, descending bool) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if byLastEvent && a.LastEventTimestamp != b.LastEventTimestamp {
			if descending {
				return a.LastEventTimestamp > b.LastEventTimestamp
			}
			return a.LastEventTimestamp < b.LastEventTimestamp
		}
		if descending {
			return a.Name > b.Name
		}
		return a.Name < b.Name
	})
}
