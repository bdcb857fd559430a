// Package apiscale measures the ECS API with many tasks stored (issue 8):
// ListTasks and DescribeTasks (100 tasks) latency through aws-sdk-go-v2,
// and the memory of the control plane holding them. Task records are
// written straight to etcd (a stopped-and-running mix in one cluster), as
// if they had been run; the control plane is the one bench/scale starts in
// process on an embedded etcd, the same code `berth server` runs.
package apiscale

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/bench/scale"
	"github.com/berthdev/berth/internal/store"
)

// Benchmark is the API-at-scale benchmark.
type Benchmark struct {
	tasks, calls int
}

// New returns the benchmark with its defaults.
func New() *Benchmark { return &Benchmark{tasks: 200000, calls: 500} }

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "apiscale" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string {
	return "API at scale: ListTasks and DescribeTasks with many tasks stored"
}

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.tasks, "apiscale.tasks", b.tasks, "tasks stored (the issue's figure is 1000000)")
	fs.IntVar(&b.calls, "apiscale.calls", b.calls, "calls of each operation measured")
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	dir, err := os.MkdirTemp("", "berth-apiscale-")
	if err != nil {
		return nil, err
	}
	h.Cleanup(func() { _ = os.RemoveAll(dir) })
	cp, err := scale.StartControlPlane(ctx, scale.ControlPlaneConfig{DataDir: filepath.Join(dir, "etcd"), Logger: h.Log})
	if err != nil {
		return nil, err
	}
	h.Cleanup(cp.Close)
	c := cp.ECS
	if _, err := c.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("big")}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	arns, err := storeTasks(ctx, cp.Store, b.tasks)
	if err != nil {
		return nil, err
	}
	wrote := time.Since(t0)
	h.Log.Info("tasks stored", "tasks", b.tasks, "took", wrote)
	// The first ListTasks waits for the index to have them all.
	t1 := time.Now()
	if _, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("big")}); err != nil {
		return nil, err
	}
	caughtUp := time.Since(t1)
	list := make([]time.Duration, 0, b.calls)
	var token *string
	for range b.calls {
		t := time.Now()
		out, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("big"), NextToken: token, DesiredStatus: types.DesiredStatusRunning})
		if err != nil {
			return nil, err
		}
		list = append(list, time.Since(t))
		token = out.NextToken
	}
	desc := make([]time.Duration, 0, b.calls)
	rng := rand.New(rand.NewPCG(1, 2))
	for range b.calls {
		batch := make([]string, 100)
		for i := range batch {
			batch[i] = arns[rng.IntN(len(arns))]
		}
		t := time.Now()
		out, err := c.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("big"), Tasks: batch})
		if err != nil {
			return nil, err
		}
		if len(out.Tasks) != 100 {
			return nil, fmt.Errorf("DescribeTasks returned %d tasks, failures %v", len(out.Tasks), out.Failures)
		}
		desc = append(desc, time.Since(t))
	}
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	rss := rssMiB()
	return b.result(list, desc, wrote, caughtUp, ms, rss), nil
}

// storeTasks writes n task records of cluster big, half of them RUNNING,
// in transactions of 128, and returns their ARNs.
func storeTasks(ctx context.Context, st *store.Store, n int) ([]string, error) {
	arns := make([]string, 0, n)
	ops := make([]clientv3.Op, 0, 128)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := st.C.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		arn := "arn:aws:ecs:us-east-1:000000000000:task/big/" + id
		status := "RUNNING"
		if i%2 == 1 {
			status = "STOPPED"
		}
		v := fmt.Sprintf(`{"task":{"taskArn":%q,"clusterArn":"arn:aws:ecs:us-east-1:000000000000:cluster/big","lastStatus":%q,"desiredStatus":%q,"cpu":"256","memory":"512","launchType":"FARGATE","group":"family:web%d","containers":[{"name":"app","lastStatus":%q}],"attachments":[]},"spec":{"taskArn":%q,"taskId":%q,"family":"web%d","cpu":256,"memoryMiB":512}}`,
			arn, status, status, i%10, status, arn, id, i%10)
		ops = append(ops, clientv3.OpPut(store.Scoped("000000000000", "us-east-1", "tasks", "big", id), v))
		arns = append(arns, arn)
		if len(ops) == cap(ops) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return arns, flush()
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb / 1024
		}
	}
	return 0
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func (b *Benchmark) result(list, desc []time.Duration, wrote, caughtUp time.Duration, ms goruntime.MemStats, rss float64) *bench.Result {
	var d strings.Builder
	fmt.Fprintf(&d, "The ECS control plane in process (as in the scale benchmark: the API behind the SigV4 router, the placement controller, an embedded etcd), with %d task records of one cluster written straight to etcd (half RUNNING, half STOPPED; %s to write), then %d ListTasks calls paging through the RUNNING ones and %d DescribeTasks calls of 100 random tasks each, one after another through aws-sdk-go-v2 over loopback. The first ListTasks waited %s for the task index (a watch-fed in-memory index of each cluster's tasks) to have them all. Memory: the process's resident set and Go heap after a GC; the process holds the control plane, its embedded etcd and the benchmark's client, as `berth server` holds the first two.\n\n",
		b.tasks, bench.Seconds(wrote), b.calls, b.calls, bench.Seconds(caughtUp))
	d.WriteString("| call | p50 | p99 | max |\n| --- | --- | --- | --- |\n")
	fmt.Fprintf(&d, "| ListTasks (a page of 100) | %s | %s | %s |\n", bench.Seconds(pct(list, 50)), bench.Seconds(pct(list, 99)), bench.Seconds(pct(list, 100)))
	fmt.Fprintf(&d, "| DescribeTasks (100 tasks) | %s | %s | %s |\n", bench.Seconds(pct(desc, 50)), bench.Seconds(pct(desc, 99)), bench.Seconds(pct(desc, 100)))
	fmt.Fprintf(&d, "\nProcess resident set %.0f MiB; Go heap in use %.0f MiB. The resident set beyond the heap is mostly etcd's memory-mapped bbolt file (every task record's latest revision and its history) and the Go runtime's unreturned pages; the heap holds etcd's key index and the task index.\n", rss, float64(ms.HeapInuse)/(1<<20))
	return &bench.Result{
		Figures: []bench.Figure{
			{Name: fmt.Sprintf("ListTasks p99 with %d tasks stored", b.tasks), Value: bench.Seconds(pct(list, 99)), Target: "≤ 20 ms", Met: bench.Met(pct(list, 99) <= 20*time.Millisecond)},
			{Name: fmt.Sprintf("DescribeTasks (100 tasks) p99 with %d tasks stored", b.tasks), Value: bench.Seconds(pct(desc, 99)), Target: "≤ 20 ms", Met: bench.Met(pct(desc, 99) <= 20*time.Millisecond)},
			{Name: fmt.Sprintf("control plane memory (RSS, with its etcd) holding %d tasks", b.tasks), Value: bench.Value{Num: rss, Unit: "MiB"},
				Target: "≤ 2 GiB for 1M tasks", Met: bench.Met(rss <= 2048*float64(b.tasks)/1e6)},
			{Name: fmt.Sprintf("Go heap in use holding %d tasks (control plane and etcd)", b.tasks), Value: bench.Value{Num: float64(ms.HeapInuse) / (1 << 20), Unit: "MiB"}},
		},
		Details:   d.String(),
		Reproduce: []string{fmt.Sprintf("go run ./bench/cmd/berthbench -berth /bin/true -run '^apiscale$' -apiscale.tasks %d -out /tmp/apiscale.md", b.tasks)},
	}
}
