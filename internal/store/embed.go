package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Embedded is a single-member etcd running inside the berth process, with its
// data in a directory of berth's data dir. Its client talks to the server in
// process, without a network round trip.
type Embedded struct {
	etcd   *embed.Etcd
	Client *clientv3.Client
	// ClientURL is where other processes can reach this etcd (loopback only).
	ClientURL string
}

// ports remembers the loopback ports an embedded etcd listens on, so that a
// restart on the same data dir advertises the same peer URL it stored.
type ports struct {
	Client int `json:"client"`
	Peer   int `json:"peer"`
}

// EmbedOptions tune an embedded etcd; the zero value is berth's default.
type EmbedOptions struct {
	// History is how much of the keys' history etcd keeps before it
	// compacts it (default 5 minutes, as Kubernetes' API server compacts its
	// etcd). Every watcher in berth starts over from a fresh read when it
	// falls further behind than this, so nothing needs more; a longer
	// history only grows the database: every report of a task rewrites its
	// record, and a million tasks launched within the hour would otherwise
	// pass the quota.
	History time.Duration
	// QuotaBytes is the database's size limit (default 8 GiB, etcd's
	// largest recommended).
	QuotaBytes int64
}

// StartEmbedded starts (or restarts, on an existing dir) a single-member etcd
// in dir with the default options and waits until it serves.
func StartEmbedded(ctx context.Context, dir string, logger *slog.Logger) (*Embedded, error) {
	return StartEmbeddedWith(ctx, dir, logger, EmbedOptions{})
}

// StartEmbeddedWith is StartEmbedded with options.
func StartEmbeddedWith(ctx context.Context, dir string, logger *slog.Logger, opts EmbedOptions) (*Embedded, error) {
	if opts.History <= 0 {
		opts.History = 5 * time.Minute
	}
	if opts.QuotaBytes <= 0 {
		opts.QuotaBytes = 8 << 30
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd dir: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(dir, "data"))
	fresh := errors.Is(statErr, os.ErrNotExist)
	for attempt := 1; ; attempt++ {
		e, err := startEmbedded(ctx, dir, logger, opts)
		// A fresh member's ports were picked free a moment ago, but another
		// process may have taken one since: pick again. (An existing member
		// keeps its ports: its peer URL is in its data.)
		if err != nil && fresh && attempt < 5 && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			_ = os.Remove(filepath.Join(dir, "ports.json"))
			_ = os.RemoveAll(filepath.Join(dir, "data"))
			continue
		}
		return e, err
	}
}

func startEmbedded(ctx context.Context, dir string, logger *slog.Logger, opts EmbedOptions) (*Embedded, error) {
	p, err := loadPorts(filepath.Join(dir, "ports.json"))
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "berth"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	curl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", p.Client)}
	purl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", p.Peer)}
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	cfg.InitialCluster = "berth=" + purl.String()
	cfg.InitialClusterToken = "berth"
	// One member: elect itself at once instead of waiting out an election timeout.
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	// etcd keeps the raft entries since its last snapshot in memory, each
	// with its request (a task record is ~3 KiB, a RunTask of 10 is ten of
	// them), and after a snapshot it keeps 5,000 more for followers to
	// catch up from: at etcd's defaults (a snapshot per 100,000 entries)
	// that is hundreds of MB under a steady stream of launches and reports.
	// A single member has no follower, so it snapshots every 5,000 entries
	// and keeps 500.
	cfg.SnapshotCount = 5000
	cfg.SnapshotCatchUpEntries = 500
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = opts.History.String()
	cfg.QuotaBackendBytes = opts.QuotaBytes
	// etcd formats the trace of every request slower than these (its
	// defaults: 100 and 300 ms) for an Info line, which this log level
	// then drops: under a million-task load most transactions were, and
	// the formatting was 1% of the allocations. Only a slow request's
	// warning is lost, and it is logged nowhere at this level anyway.
	cfg.WarningApplyDuration = 5 * time.Second
	cfg.WarningUnaryRequestDuration = 5 * time.Second
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready within 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	logger.Debug("embedded etcd ready", "dir", dir, "client", curl.String())
	c := v3client.New(e.Server)
	c.KV = localReads{c.KV}
	return &Embedded{etcd: e, Client: c, ClientURL: curl.String()}, nil
}

// Close stops the embedded etcd.
func (e *Embedded) Close() {
	e.Client.Close()
	e.etcd.Close()
}

// EmbeddedURL is the client URL of the embedded etcd that keeps its data in
// dir (StartEmbedded's dir), for tools outside the process, such as the
// benchmarks that fill a running server's store.
func EmbeddedURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ports.json"))
	if err != nil {
		return "", fmt.Errorf("embedded etcd in %s: %w", dir, err)
	}
	var p ports
	if err := json.Unmarshal(b, &p); err != nil || p.Client == 0 {
		return "", fmt.Errorf("embedded etcd in %s: bad ports.json", dir)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p.Client), nil
}

func loadPorts(path string) (ports, error) {
	var p ports
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &p); err == nil && p.Client > 0 && p.Peer > 0 {
			return p, nil
		}
	}
	var err error
	if p.Client, err = freePort(); err != nil {
		return p, err
	}
	if p.Peer, err = freePort(); err != nil {
		return p, err
	}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return p, fmt.Errorf("save etcd ports: %w", err)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Connect dials an external etcd cluster.
func Connect(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("connect etcd %v: %w", endpoints, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(cctx, endpoints[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s: %w", endpoints[0], err)
	}
	return c, nil
}

// localReads makes every Get of the embedded etcd serializable: served
// from the member's applied state, without the ReadIndex round through
// raft that a linearizable read waits for (under a heavy write load, that
// wait was most of RunTask's tail latency). On a single member, which the
// embedded etcd always is, this loses nothing: a write is acknowledged only
// once applied, so a serializable read sees every acknowledged write, and
// the applied state only moves forward. Against an external cluster (store
// Connect) reads stay linearizable: a follower's state may lag.
type localReads struct{ clientv3.KV }

func (k localReads) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return k.KV.Get(ctx, key, append(opts, clientv3.WithSerializable())...)
}
