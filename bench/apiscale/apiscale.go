// Package apiscale measures the ECS API with many tasks stored (issue 8):
// ListTasks and DescribeTasks (100 tasks) latency through aws-sdk-go-v2,
// and the memory of a `berth server` process holding them. Task records are
// written straight to the server's embedded etcd (a stopped-and-running mix
// in one cluster), as if they had been run.
package apiscale

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/ecs"
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
	srv, err := h.StartServer(ctx, "--throttle", "off")
	if err != nil {
		return nil, err
	}
	url, err := store.EmbeddedURL(filepath.Join(srv.DataDir, "etcd"))
	if err != nil {
		return nil, err
	}
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 10 * time.Second, MaxCallSendMsgSize: 16 << 20})
	if err != nil {
		return nil, err
	}
	defer etcd.Close()
	c := srv.ECS
	if _, err := c.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("big")}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	arns, err := storeTasks(ctx, store.New(etcd), b.tasks)
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
	// The server's memory once the calls are done and its heap settled.
	time.Sleep(2 * time.Second)
	mem, err := processMemory(srv.PID())
	if err != nil {
		return nil, err
	}
	if m, err := bench.Scrape(ctx, http.DefaultClient, srv.URL); err == nil {
		mem.heapMiB = m.Gauge("go_memstats_heap_inuse_bytes") / (1 << 20)
	}
	return b.result(list, desc, wrote, caughtUp, mem), nil
}

// storeTasks writes n task records of cluster big, half of them RUNNING,
// in transactions of 128, as berth stores them (compressed), and returns
// their ARNs.
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
		rec, err := ecs.StoredTaskRecord([]byte(v))
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.OpPutBytes(store.Scoped("000000000000", "us-east-1", "tasks", "big", id), rec))
		arns = append(arns, arn)
		if len(ops) == cap(ops) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return arns, flush()
}

// memory is a process's resident set from /proc/PID/status: anonymous
// (heap, stacks, the runtime's pages) and file-backed (here nearly all
// etcd's memory-mapped database, which the kernel can drop and read again),
// in MiB; heapMiB is the Go heap in use from its /metrics.
type memory struct{ rss, anon, file, heapMiB float64 }

func processMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("memory of berth server: %w", err)
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var kb float64
		fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
		switch name {
		case "VmRSS":
			m.rss = kb / 1024
		case "RssAnon":
			m.anon = kb / 1024
		case "RssFile":
			m.file = kb / 1024
		}
	}
	return m, nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func (b *Benchmark) result(list, desc []time.Duration, wrote, caughtUp time.Duration, mem memory) *bench.Result {
	var d strings.Builder
	fmt.Fprintf(&d, "A `berth server --throttle off` process on its embedded etcd, with %d task records of one cluster written straight to that etcd by the benchmark (compressed, as berth stores them; half RUNNING, half STOPPED; %s to write), then %d ListTasks calls paging through the RUNNING ones and %d DescribeTasks calls of 100 random tasks each, one after another through aws-sdk-go-v2 over loopback. The first ListTasks waited %s for the task index (a watch-fed in-memory index of each cluster's tasks) to have them all. Memory: the server process's resident set from /proc, 2 s after the last call.\n\n",
		b.tasks, bench.Seconds(wrote), b.calls, b.calls, bench.Seconds(caughtUp))
	d.WriteString("| call | p50 | p99 | max |\n| --- | --- | --- | --- |\n")
	fmt.Fprintf(&d, "| ListTasks (a page of 100) | %s | %s | %s |\n", bench.Seconds(pct(list, 50)), bench.Seconds(pct(list, 99)), bench.Seconds(pct(list, 100)))
	fmt.Fprintf(&d, "| DescribeTasks (100 tasks) | %s | %s | %s |\n", bench.Seconds(pct(desc, 50)), bench.Seconds(pct(desc, 99)), bench.Seconds(pct(desc, 100)))
	fmt.Fprintf(&d, "\nberth server's resident set: %.0f MiB, of which %.0f MiB anonymous (the Go heap in use is %.0f MiB: etcd's key index, its raft log since the last snapshot, the task index) and %.0f MiB file-backed: the berth binary's own pages and the pages of etcd's memory-mapped database that the process has read, which the kernel counts as cache and drops under memory pressure (they are read again from disk when needed). The target is judged on the anonymous part, the memory berth itself holds; the whole resident set is reported beside it.\n", mem.rss, mem.anon, mem.heapMiB, mem.file)
	return &bench.Result{
		Figures: []bench.Figure{
			{Name: fmt.Sprintf("ListTasks p99 with %d tasks stored", b.tasks), Value: bench.Seconds(pct(list, 99)), Target: "≤ 20 ms", Met: bench.Met(pct(list, 99) <= 20*time.Millisecond)},
			{Name: fmt.Sprintf("DescribeTasks (100 tasks) p99 with %d tasks stored", b.tasks), Value: bench.Seconds(pct(desc, 99)), Target: "≤ 20 ms", Met: bench.Met(pct(desc, 99) <= 20*time.Millisecond)},
			{Name: fmt.Sprintf("berth server memory holding %d tasks: anonymous resident set (its own)", b.tasks), Value: bench.Value{Num: mem.anon, Unit: "MiB"},
				Target: "≤ 2 GiB for 1M tasks", Met: bench.Met(mem.anon <= 2048*float64(b.tasks)/1e6)},
			{Name: fmt.Sprintf("berth server resident set holding %d tasks, with the database pages it mapped", b.tasks), Value: bench.Value{Num: mem.rss, Unit: "MiB"}},
			{Name: fmt.Sprintf("Go heap in use holding %d tasks (control plane and etcd)", b.tasks), Value: bench.Value{Num: mem.heapMiB, Unit: "MiB"}},
		},
		Details:   d.String(),
		Reproduce: []string{fmt.Sprintf("make build && go run ./bench/cmd/berthbench -berth bin/berth -run '^apiscale$' -apiscale.tasks %d -out /tmp/apiscale.md", b.tasks)},
	}
}
