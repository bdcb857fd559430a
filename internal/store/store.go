// Package store owns berth's access to etcd: the embedded single-member etcd
// of `berth dev`, connections to an external cluster, and typed JSON reads and
// writes with optimistic concurrency. Every control-plane resource lives here;
// the layout of keys is drawn in keys.go.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors returned by Store. Callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("concurrent modification")
)

// Store reads and writes JSON documents in etcd.
type Store struct {
	C *clientv3.Client
	// local: C is the embedded single-member etcd's client, whose reads
	// are served locally (see localReads).
	local bool
}

// New wraps an etcd client.
func New(c *clientv3.Client) *Store {
	_, local := c.KV.(localReads)
	return &Store{C: c, local: local}
}

// OpGet is clientv3.OpGet for a read-only transaction: on the embedded
// etcd it is served locally, like Get (see localReads).
func (s *Store) OpGet(key string, opts ...clientv3.OpOption) clientv3.Op {
	if s.local {
		opts = append(opts, clientv3.WithSerializable())
	}
	return clientv3.OpGet(key, opts...)
}

// StoredDecoder is a type that decodes its stored JSON itself (faster than
// encoding/json's reflection for a record read on every report); Get uses
// it when v has it.
type StoredDecoder interface {
	DecodeStored([]byte) error
}

// StoredEncoder is a type that encodes its stored value itself (a task
// record compresses its JSON); Create, Put, PutIfRevision and Mutate use it
// when v has it. Its DecodeStored must read what it writes.
type StoredEncoder interface {
	EncodeStored() ([]byte, error)
}

func encode(v any) ([]byte, error) {
	if e, ok := v.(StoredEncoder); ok {
		return e.EncodeStored()
	}
	return json.Marshal(v)
}

func decode(b []byte, v any) error {
	if d, ok := v.(StoredDecoder); ok {
		return d.DecodeStored(b)
	}
	return json.Unmarshal(b, v)
}

// Get decodes the value at key into v and returns its mod revision.
func (s *Store) Get(ctx context.Context, key string, v any) (int64, error) {
	resp, err := s.C.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err := decode(resp.Kvs[0].Value, v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return resp.Kvs[0].ModRevision, nil
}

// OpPutBytes is clientv3.OpPut of a value held as bytes. OpPut copies its
// value into the op, so converting the bytes to a string first copied every
// stored value twice (a whole task record on each of its writes); here the
// string shares val's memory only for the call.
func OpPutBytes(key string, val []byte, opts ...clientv3.OpOption) clientv3.Op {
	return clientv3.OpPut(key, unsafe.String(unsafe.SliceData(val), len(val)), opts...)
}

// Create stores v at key only if key is absent.
func (s *Store) Create(ctx context.Context, key string, v any) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	resp, err := s.C.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(OpPutBytes(key, b)).Commit()
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	return nil
}

// Put stores v at key unconditionally.
func (s *Store) Put(ctx context.Context, key string, v any, opts ...clientv3.OpOption) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if _, err := s.C.Do(ctx, OpPutBytes(key, b, opts...)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfRevision stores v at key if the key's mod revision is still rev
// (0: the key must be absent), along with extra ops in the same transaction.
func (s *Store) PutIfRevision(ctx context.Context, key string, rev int64, v any, extra ...clientv3.Op) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	ops := append([]clientv3.Op{OpPutBytes(key, b)}, extra...)
	resp, err := s.C.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("put %s: %w", key, ErrConflict)
	}
	return nil
}

// Mutate reads key into v, calls fn, and writes v back if nobody changed key
// in between, retrying on conflict. fn returns the extra ops to commit in the
// same transaction; it must be safe to call more than once. If key is absent
// Mutate returns ErrNotFound without calling fn.
func Mutate[T any](ctx context.Context, s *Store, key string, fn func(v *T) ([]clientv3.Op, error)) (*T, error) {
	return mutate(ctx, s, key, false, fn)
}

// Upsert is Mutate that calls fn with the zero T when key is absent, and
// then creates it (only if it is still absent).
func Upsert[T any](ctx context.Context, s *Store, key string, fn func(v *T) ([]clientv3.Op, error)) (*T, error) {
	return mutate(ctx, s, key, true, fn)
}

func mutate[T any](ctx context.Context, s *Store, key string, create bool, fn func(v *T) ([]clientv3.Op, error)) (*T, error) {
	for attempt := 0; attempt < 50; attempt++ {
		v := new(T)
		rev, err := s.Get(ctx, key, v)
		if create && errors.Is(err, ErrNotFound) {
			rev, err = 0, nil
		}
		if err != nil {
			return nil, err
		}
		extra, err := fn(v)
		if err != nil {
			return nil, err
		}
		err = s.PutIfRevision(ctx, key, rev, v, extra...)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("mutate %s: %w", key, ErrConflict)
}

// Delete removes key; an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.C.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List calls each for every key under prefix in key order, reading in pages so
// a large prefix never needs one huge response.
func (s *Store) List(ctx context.Context, prefix string, each func(key string, val []byte) error) error {
	return s.list(ctx, prefix, each)
}

// ListKeys is List without the values: etcd sends only the keys.
func (s *Store) ListKeys(ctx context.Context, prefix string, each func(key string) error) error {
	return s.list(ctx, prefix, func(key string, _ []byte) error { return each(key) }, clientv3.WithKeysOnly())
}

func (s *Store) list(ctx context.Context, prefix string, each func(key string, val []byte) error, opts ...clientv3.OpOption) error {
	const page = 1000
	start := prefix
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		resp, err := s.C.Get(ctx, start, append([]clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}, opts...)...)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, kv := range resp.Kvs {
			if err := each(string(kv.Key), kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// ListJSON decodes every value under prefix as a T.
func ListJSON[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.List(ctx, prefix, func(key string, val []byte) error {
		var v T
		if err := decode(val, &v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// TxnPart is part of a transaction that one service prepares for another
// to commit with its own: Cmps and Ops join the committer's transaction,
// and Done tells the preparer the outcome (committed: the transaction
// succeeded; false also when it failed or its outcome is unknown).
type TxnPart struct {
	Cmps []clientv3.Cmp
	Ops  []clientv3.Op
	Done func(committed bool)
}
