package ecs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/klauspost/compress/s2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// How a task record is stored: a summary of the fields the task index
// reads, then the record's JSON compressed with S2 (Snappy's faster
// successor, github.com/klauspost/compress/s2), behind a one-byte tag.
//
// The compression: a record is written three or four times in a task's
// life (RunTask, placement, its reports) and etcd copies each write about
// seven times on its way (the request, raft's entry, the write-ahead log,
// the backend, the watchers); in a million-task run those copies were over
// a third of all the bytes allocated, and each copy is collected. S2
// halves a record (2.9 KiB to 1.3 KiB for a RUNNING awsvpc task) in ~3 µs
// and restores it in ~2 µs, a fifth of the time its JSON takes to decode.
// It also halves the records' share of etcd's quota.
//
// The summary: the task index applies every write of every record (three
// or four a task), and restoring and decoding each was most of its cost
// (3% of a million-task run's CPU). It reads the summary instead: the
// task's ARN, container instance, last and desired status, startedBy,
// group, launch type, family and host (the node it is placed on: none
// while it waits for placement), each a uvarint length and its bytes.
//
// Records written before this read as they always did: plain JSON (which
// starts with '{'), compressed JSON without a summary (tag
// compressedRecord), and summaries without the host (their first eight
// fields: the index decodes such a record's JSON, as it does one without a
// summary). A store needs no migration, and a berth that knows eight
// fields reads nine: it stops after its eighth.

// The tags of a stored record; JSON never starts with either.
const (
	compressedRecord = 0x01 // s2(JSON): read, no longer written
	summarizedRecord = 0x02 // uvarint n, summary (n bytes), s2(JSON)
)

// summaryFields is how many strings a summary holds (see appendSummary);
// summaries written before the host was added hold the first hostlessFields.
const (
	summaryFields  = 9
	hostlessFields = 8
)

// appendSummary appends the summary of r's indexed fields to dst.
func appendSummary(dst []byte, r *indexedRecord) []byte {
	for _, f := range r.fields() {
		dst = binary.AppendUvarint(dst, uint64(len(*f)))
		dst = append(dst, *f...)
	}
	return dst
}

// fields are the summary's strings in their stored order.
func (r *indexedRecord) fields() [summaryFields]*string {
	t := &r.Task
	return [summaryFields]*string{&t.TaskArn, &t.ContainerInstanceArn, &t.LastStatus, &t.DesiredStatus,
		&t.StartedBy, &t.Group, &t.LaunchType, &r.Spec.Family, &r.Node}
}

// indexed is the summary of r.
func (r *taskRecord) indexed() indexedRecord {
	var x indexedRecord
	t := &r.Task
	x.Task.TaskArn, x.Task.ContainerInstanceArn, x.Task.LastStatus, x.Task.DesiredStatus = t.TaskArn, t.ContainerInstanceArn, t.LastStatus, t.DesiredStatus
	x.Task.StartedBy, x.Task.Group, x.Task.LaunchType, x.Spec.Family = t.StartedBy, t.Group, t.LaunchType, r.Spec.Family
	x.Node = r.Node
	return x
}

// parseSummary reads a stored record's summary into r; ok is false for a
// record stored without one, or with one written before it held the host.
func parseSummary(stored []byte, r *indexedRecord) (ok bool, err error) {
	sum, _, ok, err := splitRecord(stored)
	if !ok || err != nil || sum == nil {
		return false, err
	}
	for i, f := range r.fields() {
		if i == hostlessFields && len(sum) == 0 {
			return false, nil
		}
		n, w := binary.Uvarint(sum)
		if w <= 0 || uint64(len(sum)-w) < n {
			return false, errors.New("task record: bad summary")
		}
		*f = string(sum[w : w+int(n)])
		sum = sum[w+int(n):]
	}
	return true, nil
}

// splitRecord splits a stored record into its summary (nil if it has none)
// and its compressed JSON; ok is false for plain JSON.
func splitRecord(stored []byte) (summary, compressed []byte, ok bool, err error) {
	if len(stored) == 0 {
		return nil, nil, false, nil
	}
	switch stored[0] {
	case compressedRecord:
		return nil, stored[1:], true, nil
	case summarizedRecord:
		n, w := binary.Uvarint(stored[1:])
		if w <= 0 || uint64(len(stored)-1-w) < n {
			return nil, nil, false, errors.New("task record: bad summary length")
		}
		at := 1 + w
		return stored[at : at+int(n)], stored[at+int(n):], true, nil
	}
	return nil, nil, false, nil
}

// recordBufs are the scratch buffers of encoding and decoding records:
// a record's JSON on its way to being compressed, its compressed form
// before it is copied out at its size, and a compressed record restored
// for decoding. Each was an allocation as large as the record, on every
// write and read of a task (over a sixth of the bytes a million-task run
// allocated); none outlives the call that takes it.
var recordBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps an unusually large buffer out of the pool.
const maxPooled = 64 << 10

func getBuf() *bytes.Buffer { b := recordBufs.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooled {
		recordBufs.Put(b)
	}
}

// encodeTask is a task record as stored.
func encodeTask(r *taskRecord) ([]byte, error) {
	var out []byte
	err := encodeJSON(r, func(js []byte) {
		sum := r.indexed()
		out = packRecord(&sum, js)
	})
	return out, err
}

// putJSON is the op that puts v's JSON, as json.Marshal writes it, at key
// (OpPut copies what it stores).
func putJSON(key string, v any) (clientv3.Op, error) {
	var op clientv3.Op
	err := encodeJSON(v, func(js []byte) { op = store.OpPutBytes(key, js) })
	return op, err
}

// encodeJSON calls use with v's JSON, as json.Marshal writes it, encoded
// into a scratch buffer: use must not keep it.
func encodeJSON(v any, use func([]byte)) error {
	buf := getBuf()
	defer putBuf(buf)
	// Encode writes what Marshal returns, and a newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	use(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return nil
}

// StoredTaskRecord is a task record's JSON as berth stores it, for those
// that seed a store with records directly (the API benchmark).
func StoredTaskRecord(recordJSON []byte) ([]byte, error) {
	var x indexedRecord
	if err := jsonv2.Unmarshal(recordJSON, &x); err != nil {
		return nil, fmt.Errorf("task record: %w", err)
	}
	return packRecord(&x, recordJSON), nil
}

// packRecord is the stored form of a record's summary and JSON. It
// compresses into a scratch buffer as large as the worst case, then copies
// the result out at its size (about half of the JSON's).
func packRecord(sum *indexedRecord, js []byte) []byte {
	var head [256]byte
	summary := appendSummary(head[:0], sum)
	buf := getBuf()
	defer putBuf(buf)
	buf.Grow(s2.MaxEncodedLen(len(js)))
	enc := s2.Encode(buf.AvailableBuffer()[:s2.MaxEncodedLen(len(js))], js) // in the scratch, which is large enough
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(summary)+len(enc))
	out = append(out, summarizedRecord)
	out = binary.AppendUvarint(out, uint64(len(summary)))
	out = append(out, summary...)
	return append(out, enc...)
}

// withTaskJSON calls use with the JSON of a stored task record, restored
// into a scratch buffer when it is compressed: use must not keep it.
func withTaskJSON(stored []byte, use func([]byte) error) error {
	_, compressed, ok, err := splitRecord(stored)
	if err != nil {
		return err
	}
	if !ok {
		return use(stored)
	}
	n, err := s2.DecodedLen(compressed)
	if err != nil {
		return fmt.Errorf("decompress task record: %w", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	buf.Grow(n)
	b, err := s2.Decode(buf.AvailableBuffer()[:n], compressed)
	if err != nil {
		return fmt.Errorf("decompress task record: %w", err)
	}
	return use(b)
}

// unmarshalTask decodes a stored task record. Records are read on every
// agent report, placement and DescribeTasks, and encoding/json's decoding
// was the largest cost of a million-task run; the JSON v2 prototype
// (go-json-experiment/json, the design of Go's encoding/json/v2) decodes
// them in half the time. The records are written by encoding/json, and
// TestTaskRecordDecoders checks both decoders read them alike. The decoder
// copies what it keeps (strings; RawMessage fields copy in their
// UnmarshalJSON), so the restored JSON can be a scratch buffer.
func unmarshalTask(stored []byte, r *taskRecord) error {
	return withTaskJSON(stored, func(b []byte) error { return jsonv2.Unmarshal(b, r) })
}

// DecodeStored implements store.StoredDecoder.
func (r *taskRecord) DecodeStored(b []byte) error { return unmarshalTask(b, r) }

// EncodeStored implements store.StoredEncoder.
func (r *taskRecord) EncodeStored() ([]byte, error) { return encodeTask(r) }
