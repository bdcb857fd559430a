// Package storetest owns what a package's tests need of a real store: one
// embedded single-member etcd for the whole test binary (tests keep apart
// by their own accounts or keys).
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// Main starts an embedded etcd in a temporary directory named after the
// package, sets *st to a store on it, runs the tests and returns their exit
// code, removing the etcd afterwards. A package's TestMain is then
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "elb", &testStore)) }
func Main(m *testing.M, name string, st **store.Store) int {
	dir, err := os.MkdirTemp("", name+"-test-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	e, err := store.StartEmbedded(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	*st = store.New(e.Client)
	return m.Run()
}
