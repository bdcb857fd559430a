package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"

	"github.com/berthdev/berth/internal/billing"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

type billKeys struct{}

func (billKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	if akid == "test" {
		return "test", "000000000000", nil
	}
	return "", "", protocol.ErrUnknownKey
}

func TestBillRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := store.StartEmbedded(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	svc := billing.New(billing.Config{Store: store.New(e.Client)})
	router := protocol.NewRouter(billKeys{}, nil, protocol.WithRegisterer(nil))
	router.AddJSONService(svc.JSONService())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)

	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	pull := day.Add(10 * time.Hour)
	for i, task := range []struct{ cluster, group string }{{"prod", "service:api"}, {"prod", "service:api"}, {"prod", "family:web"}, {"dev", "family:web"}} {
		stop := pull.Add(time.Hour)
		if _, err := svc.Record(ctx, billing.Task{Account: "000000000000", Region: "us-east-1", TaskID: string(rune('a' + i)),
			Cluster: task.cluster, Group: task.group, Family: "web", CPU: 1024, MemoryMiB: 2048, PullStartedAt: &pull, StoppedAt: &stop}); err != nil {
			t.Fatal(err)
		}
	}
	ce := costexplorer.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	rows, err := billRows(ctx, ce, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	hour := 0.04048 + 2*0.004445
	want := []billRow{{"dev", "", "web", 1, 2, hour}, {"prod", "", "web", 1, 2, hour}, {"prod", "api", "web", 2, 4, 2 * hour}}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i, w := range want {
		r := rows[i]
		if r.cluster != w.cluster || r.service != w.service || r.family != w.family ||
			math.Abs(r.vcpuHours-w.vcpuHours) > 1e-9 || math.Abs(r.gbHours-w.gbHours) > 1e-9 || math.Abs(r.cost-w.cost) > 1e-9 {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
	}
	var out bytes.Buffer
	if err := writeBillTable(&out, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "prod     api") || !strings.Contains(out.String(), "TOTAL") {
		t.Errorf("table:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}
