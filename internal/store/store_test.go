package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type doc struct {
	N int `json:"n"`
}

func openStore(t *testing.T, dir string) (*Store, *Embedded) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := StartEmbedded(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return New(e.Client), e
}

func TestCRUD(t *testing.T) {
	s, e := openStore(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	k := Key("x", "a")
	if _, err := s.Get(ctx, k, &doc{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get absent: %v", err)
	}
	if err := s.Create(ctx, k, doc{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, k, doc{N: 2}); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	var d doc
	rev, err := s.Get(ctx, k, &d)
	if err != nil || d.N != 1 {
		t.Fatalf("get: %v %+v", err, d)
	}
	if err := s.PutIfRevision(ctx, k, rev, doc{N: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfRevision(ctx, k, rev, doc{N: 4}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale revision: %v", err)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
}

// TestMutateConcurrent increments one counter from many goroutines: no
// increment may be lost to a race.
func TestMutateConcurrent(t *testing.T) {
	s, e := openStore(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	k := Key("counter")
	if err := s.Create(ctx, k, doc{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, err := Mutate(ctx, s, k, func(d *doc) ([]clientv3.Op, error) { d.N++; return nil, nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var d doc
	if _, err := s.Get(ctx, k, &d); err != nil || d.N != 40 {
		t.Fatalf("counter %d (%v), want 40", d.N, err)
	}
	if _, err := Mutate(ctx, s, Key("absent"), func(*doc) ([]clientv3.Op, error) { return nil, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mutate absent: %v", err)
	}
}

func TestListPages(t *testing.T) {
	s, e := openStore(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	const n = 2500 // more than one page of 1000
	ops := make([]clientv3.Op, 0, 100)
	for i := 0; i < n; i++ {
		ops = append(ops, clientv3.OpPut(Key("list", fmt.Sprintf("%05d", i)), fmt.Sprintf(`{"n":%d}`, i)))
		if len(ops) == 100 {
			if _, err := s.C.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	if err := s.Put(ctx, Key("listx"), doc{N: -1}); err != nil { // a sibling with the same prefix string
		t.Fatal(err)
	}
	all, err := ListJSON[doc](ctx, s, Prefix("list"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("listed %d, want %d", len(all), n)
	}
	for i, d := range all {
		if d.N != i {
			t.Fatalf("item %d is %d: out of order", i, d.N)
		}
	}
}

func TestEmbeddedRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, e := openStore(t, dir)
	if err := s.Put(context.Background(), Key("kept"), doc{N: 7}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	s, e = openStore(t, dir)
	defer e.Close()
	var d doc
	if _, err := s.Get(context.Background(), Key("kept"), &d); err != nil || d.N != 7 {
		t.Fatalf("after restart: %v %+v", err, d)
	}
}
