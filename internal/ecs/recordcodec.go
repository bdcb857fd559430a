package ecs

import (
	"encoding/json"
	"fmt"

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

// encodeTask is a task record as stored.
func encodeTask(r *taskRecord) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return compressRecord(b), nil
}

// StoredTaskRecord is a task record's JSON as berth stores it, for those
// that seed a store with records directly (the API benchmark).
func StoredTaskRecord(recordJSON []byte) []byte {
	return compressRecord(recordJSON)
}

func compressRecord(b []byte) []byte {
	out := make([]byte, 1+s2.MaxEncodedLen(len(b)))
	out[0] = compressedRecord
	enc := s2.Encode(out[1:], b) // in out, which is large enough
	return out[:1+len(enc)]
}

// taskJSON is the JSON of a stored task record.
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

// unmarshalTask decodes a stored task record. Records are read on every
// agent report, placement and DescribeTasks, and encoding/json's decoding
// was the largest cost of a million-task run; the JSON v2 prototype
// (go-json-experiment/json, the design of Go's encoding/json/v2) decodes
// them in half the time. The records are written by encoding/json, and
// TestTaskRecordDecoders checks both decoders read them alike.
func unmarshalTask(stored []byte, r *taskRecord) error {
	b, err := taskJSON(stored)
	if err != nil {
		return err
	}
	return jsonv2.Unmarshal(b, r)
}

// DecodeStored implements store.StoredDecoder.
func (r *taskRecord) DecodeStored(b []byte) error { return unmarshalTask(b, r) }

// EncodeStored implements store.StoredEncoder.
func (r *taskRecord) EncodeStored() ([]byte, error) { return encodeTask(r) }
