package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkTaskWrites is the embedded etcd's share of a task's life, alone:
// the writes berth makes for one Fargate task from RunTask to RUNNING,
// batched as berth batches them, with nothing else running. It bounds from
// below what a task costs the control plane, whatever the rest does:
//
//   - RunTask: the record (10 tasks a transaction);
//   - placement: the record again and the spec under its host's assign
//     prefix (40 tasks a transaction);
//   - the RUNNING report: the record again (48 tasks a transaction).
//
// Records are 1,300 bytes (a RUNNING awsvpc task's record, compressed) and
// specs 900; 32 transactions are in flight, as in placement under load.
// It reports the process's CPU time (user and system) per task, and etcd
// keeps one minute of history, as the million-task benchmark's does.
//
//	go test ./internal/store -run '^$' -bench TaskWrites -benchtime 200000x
func BenchmarkTaskWrites(b *testing.B) {
	ctx := context.Background()
	e, err := StartEmbeddedWith(ctx, b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		EmbedOptions{History: time.Minute, QuotaBytes: 16 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	rec, spec := randomBytes(1300), randomBytes(900)
	key := func(i int) string {
		return Key("acct", "000000000000", "us-east-1", "tasks", "default", fmt.Sprintf("%032x", i))
	}
	assign := func(i int) string { return Key("assign", fmt.Sprintf("host-%016x", i%10000), fmt.Sprintf("%032x", i)) }
	phase := func(per int, ops func(i int) []clientv3.Op) {
		sem := make(chan struct{}, 32)
		var wg sync.WaitGroup
		for lo := 0; lo < b.N; lo += per {
			hi := min(lo+per, b.N)
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				var txn []clientv3.Op
				for i := lo; i < hi; i++ {
					txn = append(txn, ops(i)...)
				}
				if _, err := e.Client.Txn(ctx).Then(txn...).Commit(); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	phase(10, func(i int) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(key(i), string(rec))}
	})
	phase(40, func(i int) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(key(i), string(rec)), clientv3.OpPut(assign(i), string(spec))}
	})
	phase(48, func(i int) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(key(i), string(rec))}
	})
	b.StopTimer()
	perTask := float64(cpuTime()-cpu0) / float64(b.N)
	b.ReportMetric(perTask/1e3, "cpu-µs/task")
	b.ReportMetric(perTask*1e6/1e9/2, "s-on-2-cores/1M-tasks")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

// cpuTime is the process's user and system CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
