package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/klauspost/compress/s2"
)

// How a task record is stored: its JSON, compressed with S2 (Snappy's
// faster successor, github.com/klauspost/compress/s2) behind a one-byte
// tag. A record is written three or four times in a task's life (RunTask,
// placement, its reports) and etcd copies each write about seven times on
// its way (the request, raft's entry, the write-ahead log, the backend,
// the watchers); in a million-task run those copies were over a third of
// all the bytes allocated, and each copy is collected. S2 halves a record
// (2.9 KiB to 1.3 KiB for a RUNNING awsvpc task) in ~3 µs and restores it
// in ~2 µs, a fifth of the time its JSON takes to decode. It also halves
// the records' share of etcd's quota.
//
// A record written before this (plain JSON, which starts with '{') reads
// as it always did, so a store needs no migration.

// compressedRecord tags a compressed record; JSON never starts with it.
const compressedRecord = 0x01

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
	buf := getBuf()
	defer putBuf(buf)
	// Encode writes what Marshal returns, and a newline.
	if err := json.NewEncoder(buf).Encode(r); err != nil {
		return nil, err
	}
	return compressRecord(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// StoredTaskRecord is a task record's JSON as berth stores it, for those
// that seed a store with records directly (the API benchmark).
func StoredTaskRecord(recordJSON []byte) []byte {
	return compressRecord(recordJSON)
}

// compressRecord compresses b into a scratch buffer as large as the worst
// case, then copies the result out at its size (about half of b's).
func compressRecord(b []byte) []byte {
	buf := getBuf()
	defer putBuf(buf)
	buf.Grow(s2.MaxEncodedLen(len(b)))
	enc := s2.Encode(buf.AvailableBuffer()[:s2.MaxEncodedLen(len(b))], b) // in the scratch, which is large enough
	out := make([]byte, 1+len(enc))
	out[0] = compressedRecord
	copy(out[1:], enc)
	return out
}

// taskJSON is the JSON of a stored task record, in memory of its own (a
// caller may keep it).
func taskJSON(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != compressedRecord {
		return stored, nil
	}
	b, err := s2.Decode(nil, stored[1:])
	if err != nil {
		return nil, fmt.Errorf("decompress task record: %w", err)
	}
	return b, nil
}

// withTaskJSON calls use with the JSON of a stored task record, restored
// into a scratch buffer when it is compressed: use must not keep it.
func withTaskJSON(stored []byte, use func([]byte) error) error {
	if len(stored) == 0 || stored[0] != compressedRecord {
		return use(stored)
	}
	n, err := s2.DecodedLen(stored[1:])
	if err != nil {
		return fmt.Errorf("decompress task record: %w", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	buf.Grow(n)
	b, err := s2.Decode(buf.AvailableBuffer()[:n], stored[1:])
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
