package logs

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Runs. Events of one Append that follow each other with the same
// timestamp (as a flooding container's lines do: the shipper stamps a
// whole read of its log file with the same millisecond) are stored as one
// key, a run, rather than one key each: bbolt's cost is per key (a tree
// search, allocations, a node entry), and one key per event made storing a
// line cost several times what shipping it did. A run's events keep their
// own sequence numbers, so positions, tokens and the order of a group's
// events do not change.
//
//	<timestamp ms: 8 BE><seq: 8 BE>                  → <ingestion ms: 8 BE><message>
//	<timestamp ms: 8 BE><first seq: 8 BE><last seq: 8 BE>
//	                                                 → <ingestion ms: 8 BE>(<uvarint length><message>)…
//
// A key of 16 bytes is one event (the only kind stores written before runs
// have), one of 24 bytes a run of last-first+1 ≥ 2 events. Keys still
// order by (timestamp, first seq): a run's 16-byte prefix is its first
// event's position, and the run sorts after a single key equal to that
// prefix, which cannot exist (seqs are unique).

// A run holds at most this many events and bytes of messages, so that
// reading from a position inside one decodes little.
const (
	maxRunEvents = 1000
	maxRunBytes  = 64 << 10
)

func isRun(k []byte) bool { return len(k) == 24 }

// keyEvents is the number of events under key k.
func keyEvents(k []byte) int {
	if !isRun(k) {
		return 1
	}
	return int(binary.BigEndian.Uint64(k[16:24])-binary.BigEndian.Uint64(k[8:16])) + 1
}

// appendEntry appends to slab the key and value of events (one, or a run:
// all with the same timestamp) with sequence numbers from first on,
// ingested at ing; k and v lie in the returned slab, which must not grow
// while bbolt holds them (the caller sizes it with entrySize).
func appendEntry(slab []byte, events []Event, first uint64, ing int64) (out, k, v []byte) {
	at := len(slab)
	slab = append(slab, pos{ts: uint64(events[0].Timestamp), seq: first}.key()...)
	if len(events) > 1 {
		slab = binary.BigEndian.AppendUint64(slab, first+uint64(len(events))-1)
	}
	kEnd := len(slab)
	slab = binary.BigEndian.AppendUint64(slab, uint64(ing))
	if len(events) == 1 {
		slab = append(slab, events[0].Message...)
	} else {
		for _, e := range events {
			slab = binary.AppendUvarint(slab, uint64(len(e.Message)))
			slab = append(slab, e.Message...)
		}
	}
	return slab, slab[at:kEnd:kEnd], slab[kEnd:]
}

// entriesSize bounds what appendEntry adds for all events, in keys of
// runLen events.
func entriesSize(events []Event) int {
	size := 0
	for rest := events; len(rest) > 0; {
		n := runLen(rest)
		size += 24 + 8
		for _, e := range rest[:n] {
			size += binary.MaxVarintLen64 + len(e.Message)
		}
		rest = rest[n:]
	}
	return size
}

// runLen is how many of events, from the first, go into one key: those
// with the first's timestamp, within maxRunEvents and maxRunBytes.
func runLen(events []Event) int {
	n, size := 1, len(events[0].Message)
	for n < len(events) && n < maxRunEvents && events[n].Timestamp == events[0].Timestamp && size+len(events[n].Message) <= maxRunBytes {
		size += len(events[n].Message)
		n++
	}
	return n
}

// evCursor walks a stream's events one by one, over single-event keys and
// runs alike.
type evCursor struct {
	c           *bolt.Cursor
	k, v        []byte // the current key (nil: no event)
	ts          uint64
	first, last uint64 // the current key's sequence numbers
	msgs        [][2]int
	i           int // the current event: the key's i-th
}

func newEvCursor(b *bolt.Bucket) *evCursor { return &evCursor{c: b.Cursor()} }

// load makes k the current key, at its event i (-1: its last).
func (it *evCursor) load(k, v []byte, i int) {
	it.k, it.v, it.msgs = k, v, it.msgs[:0]
	if k == nil {
		return
	}
	p := posOf(k)
	it.ts, it.first, it.last = p.ts, p.seq, p.seq
	if isRun(k) {
		it.last = binary.BigEndian.Uint64(k[16:24])
		it.msgs = runMessages(v, it.msgs)
	} else if len(v) >= 8 {
		it.msgs = append(it.msgs, [2]int{8, len(v)})
	}
	if len(it.msgs) != int(it.last-it.first)+1 { // a damaged value: its events read as empty
		it.msgs = it.msgs[:0]
		for int(it.last-it.first)+1 > len(it.msgs) {
			it.msgs = append(it.msgs, [2]int{len(v), len(v)})
		}
	}
	if i < 0 {
		i = len(it.msgs) - 1
	}
	it.i = i
}

// runMessages appends where each message of run value v lies in v.
func runMessages(v []byte, out [][2]int) [][2]int {
	for at := 8; at < len(v); {
		l, n := binary.Uvarint(v[at:])
		if n <= 0 || l > uint64(len(v)-at-n) {
			return out
		}
		at += n
		out = append(out, [2]int{at, at + int(l)})
		at += int(l)
	}
	return out
}

func (it *evCursor) valid() bool { return it.k != nil }

func (it *evCursor) pos() pos { return pos{ts: it.ts, seq: it.first + uint64(it.i)} }

func (it *evCursor) event() Event {
	m := it.msgs[it.i]
	return Event{Timestamp: int64(it.ts), Seq: it.first + uint64(it.i),
		IngestionTime: int64(binary.BigEndian.Uint64(it.v[:8])), Message: string(it.v[m[0]:m[1]])}
}

// seek moves to the first event at or after p.
func (it *evCursor) seek(p pos) {
	k, _ := it.c.Seek(p.key())
	var pk, pv []byte
	if k == nil {
		pk, pv = it.c.Last()
	} else {
		pk, pv = it.c.Prev()
	}
	// The key before p's may be a run that p falls inside.
	if pk != nil && isRun(pk) {
		q := posOf(pk)
		if last := binary.BigEndian.Uint64(pk[16:24]); q.ts == p.ts && q.seq < p.seq && p.seq <= last {
			it.load(pk, pv, int(p.seq-q.seq))
			return
		}
	}
	k, v := it.c.Seek(p.key())
	it.load(k, v, 0)
}

// seekBefore moves to the last event before p.
func (it *evCursor) seekBefore(p pos) {
	k, _ := it.c.Seek(p.key())
	var v []byte
	if k == nil {
		k, v = it.c.Last()
	} else {
		k, v = it.c.Prev()
	}
	it.load(k, v, -1)
	if k != nil && it.ts == p.ts && it.last >= p.seq { // a run p falls inside
		it.i = int(p.seq - 1 - it.first)
	}
}

func (it *evCursor) next() {
	if it.i+1 < len(it.msgs) {
		it.i++
		return
	}
	k, v := it.c.Next()
	it.load(k, v, 0)
}

func (it *evCursor) prev() {
	if it.i > 0 {
		it.i--
		return
	}
	k, v := it.c.Prev()
	it.load(k, v, -1)
}
