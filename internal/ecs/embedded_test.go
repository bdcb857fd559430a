package ecs

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/berthdev/berth/internal/store"
)

// embeddedStore starts an etcd of the test's own in a temporary dir and
// returns a store on it, a context that ends with the test, and a logger
// that discards.
func embeddedStore(t *testing.T) (context.Context, *store.Store, *slog.Logger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := store.StartEmbedded(ctx, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return ctx, store.New(e.Client), logger
}
