package billing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

// One embedded etcd serves every test of the package; tests keep apart by
// using accounts of their own (newAccount).
var testStore *store.Store

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "billing", &testStore)) }

var accountSeq atomic.Int64

func newAccount() string { return fmt.Sprintf("%012d", 300000000000+accountSeq.Add(1)) }

// keys maps access key ids to accounts; every secret is "secret".
type keys map[string]string

func (k keys) Lookup(_ context.Context, akid string) (string, string, error) {
	if acct, ok := k[akid]; ok {
		return "secret", acct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

type env struct {
	t        *testing.T
	acct     string
	s        *Service
	reg      *prometheus.Registry
	endpoint string
}

// newEnv serves a billing service of a fresh account (key "a") through the
// protocol router.
func newEnv(t *testing.T) *env {
	e := &env{t: t, acct: newAccount(), reg: prometheus.NewRegistry()}
	e.s = New(Config{Store: testStore, Logger: slog.New(slog.DiscardHandler), Registerer: e.reg})
	router := protocol.NewRouter(keys{"a": e.acct, "b": newAccount()}, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddJSONService(e.s.JSONService())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	e.endpoint = srv.URL
	return e
}

func (e *env) ce(key string) *costexplorer.Client {
	return costexplorer.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(e.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret", ""), RetryMaxAttempts: 1})
}

// task is a stopped task of the env's account.
func (e *env) task(id, cluster, group string, pull, stop time.Time) Task {
	return Task{Account: e.acct, Region: "us-east-1", TaskID: id, TaskArn: "arn:aws:ecs:us-east-1:" + e.acct + ":task/" + cluster + "/" + id,
		Cluster: cluster, Group: group, Family: "web", LaunchType: "FARGATE", CPU: 256, MemoryMiB: 512,
		PullStartedAt: &pull, StoppedAt: &stop}
}
