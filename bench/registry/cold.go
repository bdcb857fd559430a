package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/demoimage"
)

const coldCluster = "bench-registry"

// launch is one task's RunTask → RUNNING.
type launch struct {
	total time.Duration // RunTask sent → DescribeTasks shows RUNNING
	pull  time.Duration // DescribeTasks' pullStoppedAt − pullStartedAt (ms precision)
}

// coldResult is the cold pulls and, as their anchors, the same images'
// second tasks, with the image on the host, and containerd's own pull of
// a like image.
type coldResult struct {
	cold, warm []launch
	ctrPull    []time.Duration
	imageBytes int64
}

// coldPulls pushes a fresh image (the demo busybox image plus a random
// layer) for each run, and times its first task (the layer is on no host)
// and then a second task of it (the image is on the host).
func (b *Benchmark) coldPulls(ctx context.Context, h *bench.Harness, dev *bench.Dev, berth *registryClient) (coldResult, error) {
	var res coldResult
	base, err := demoimage.Image(demoimage.Options{})
	if err != nil {
		return res, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = dev.ECS.CreateCluster(cctx, &ecs.CreateClusterInput{ClusterName: aws.String(coldCluster)})
	cancel()
	if err != nil {
		return res, fmt.Errorf("create cluster: %w", err)
	}
	// Warm-up: the demo image's layer (the cold images' base) reaches the
	// host, and the agent's first-task work is done.
	if _, err := b.runOnce(ctx, dev, dev.Image); err != nil {
		return res, fmt.Errorf("warm-up task: %w", err)
	}
	ctr, err := containerd.New(dev.ContainerdSocket(), containerd.WithDefaultNamespace(pullNamespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return res, fmt.Errorf("connect to containerd: %w", err)
	}
	defer ctr.Close()
	h.Log.Info("cold pulls", "runs", b.coldRuns, "layer_MiB", b.coldMiB)
	for i := range b.coldRuns {
		img, size, err := coldImage(base, int64(b.coldMiB)*mib)
		if err != nil {
			return res, err
		}
		res.imageBytes = size
		tag := fmt.Sprintf("c%d", i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		_, err = berth.push(pctx, "bench/cold", tag, img)
		cancel()
		if err != nil {
			return res, err
		}
		image := berth.host + "/bench/cold:" + tag
		cold, err := b.runOnce(ctx, dev, image)
		if err != nil {
			return res, fmt.Errorf("cold task %d: %w", i+1, err)
		}
		warm, err := b.runOnce(ctx, dev, image)
		if err != nil {
			return res, fmt.Errorf("warm task %d: %w", i+1, err)
		}
		ctrPull, err := b.containerdPull(ctx, ctr, base, berth, fmt.Sprintf("p%d", i))
		if err != nil {
			return res, err
		}
		res.cold, res.warm = append(res.cold, cold), append(res.warm, warm)
		res.ctrPull = append(res.ctrPull, ctrPull)
		h.Log.Info("cold pull", "n", i+1, "cold", cold.total, "cold_pull", cold.pull, "warm", warm.total, "containerd_pull", ctrPull)
	}
	return res, nil
}

// pullNamespace is the containerd namespace of the containerd-alone pulls,
// apart from berth's, so that they share nothing with the tasks' images.
const pullNamespace = "berth-bench-pull"

// containerdPull pushes another fresh image like the cold tasks' and times
// the host's containerd pulling and unpacking it alone (the containerd Go
// client's Pull with unpack into overlayfs, as berth's agent calls it, with
// the same registry credentials), in a namespace of its own. The base
// layer is pulled by the first call's untimed warm-up.
func (b *Benchmark) containerdPull(ctx context.Context, ctr *containerd.Client, base v1.Image, berth *registryClient, tag string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	basic, ok := berth.auth.(*authn.Basic)
	if !ok {
		return 0, errors.New("containerd pull: berth's credentials are not HTTP Basic")
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchAllHosts),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
			return basic.Username, basic.Password, nil
		}))))})
	pull := func(ref string) error {
		_, err := ctr.Pull(ctx, ref, containerd.WithResolver(resolver), containerd.WithPullUnpack, containerd.WithPullSnapshotter("overlayfs"))
		if err != nil {
			return fmt.Errorf("containerd pull %s: %w", ref, err)
		}
		return nil
	}
	if tag == "p0" { // untimed: the base layer reaches this namespace
		if err := pull(berth.host + "/busybox:latest"); err != nil {
			return 0, err
		}
	}
	img, _, err := coldImage(base, int64(b.coldMiB)*mib)
	if err != nil {
		return 0, err
	}
	if _, err := berth.push(ctx, "bench/cold", tag, img); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := pull(berth.host + "/bench/cold:" + tag); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// runOnce registers a task definition of image (FARGATE 256/512, `sleep
// 3600`), runs one task, times it until RUNNING, and stops it.
func (b *Benchmark) runOnce(ctx context.Context, dev *bench.Dev, image string) (launch, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var l launch
	td, err := dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-cold"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(image), Essential: aws.Bool(true),
			Command: []string{"sleep", "3600"}, StopTimeout: aws.Int32(2),
		}},
	})
	if err != nil {
		return l, fmt.Errorf("register task definition: %w", err)
	}
	t0 := time.Now()
	out, err := dev.ECS.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(coldCluster), TaskDefinition: td.TaskDefinition.TaskDefinitionArn, LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: dev.Subnets}},
	})
	if err != nil {
		return l, fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return l, fmt.Errorf("RunTask: no task, failures %v", out.Failures)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	defer stopTask(context.WithoutCancel(ctx), dev, arn)
	for {
		d, err := dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(coldCluster), Tasks: []string{arn}})
		if err != nil {
			return l, fmt.Errorf("DescribeTasks %s: %w", arn, err)
		}
		if len(d.Tasks) != 1 {
			return l, fmt.Errorf("DescribeTasks %s: failures %v", arn, d.Failures)
		}
		t := d.Tasks[0]
		switch aws.ToString(t.LastStatus) {
		case "RUNNING":
			l.total = time.Since(t0)
			if t.PullStartedAt != nil && t.PullStoppedAt != nil {
				l.pull = t.PullStoppedAt.Sub(*t.PullStartedAt)
			}
			return l, nil
		case "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED":
			return l, fmt.Errorf("task %s stopped before it ran: %s: %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
		}
		select {
		case <-ctx.Done():
			return l, fmt.Errorf("task %s of %s not RUNNING: %w", arn, image, ctx.Err())
		case <-time.After(b.poll):
		}
	}
}

// stopTask stops a task and waits (up to a minute) until it is STOPPED, so
// that the next launch has the host to itself.
func stopTask(ctx context.Context, dev *bench.Dev, arn string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := dev.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(coldCluster), Task: aws.String(arn)}); err != nil {
		return
	}
	for ctx.Err() == nil {
		d, err := dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(coldCluster), Tasks: []string{arn}})
		if err == nil && len(d.Tasks) == 1 && aws.ToString(d.Tasks[0].LastStatus) == "STOPPED" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func durations(ls []launch, f func(launch) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ls))
	for i, l := range ls {
		out[i] = f(l)
	}
	return out
}

// result renders the figures and the details.
func (b *Benchmark) result(all []series, cold coldResult, dist *distribution) *bench.Result {
	res := &bench.Result{}
	var d strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&d, format, a...) }
	w("Push and pull of images of random, incompressible layers (uncompressed OCI tar layers, so neither side spends time on "+
		"compression), through berth's registry (`berth dev`, ECR auth: HTTP Basic `AWS:<token>` from GetAuthorizationToken, "+
		"the repository created with CreateRepository) and through Debian's `docker-registry` (%s: CNCF Distribution 2.8, filesystem "+
		"storage, no auth, no cache, on 127.0.0.1), both on this machine's disk, in the same run. Clients: go-containerregistry "+
		"(`remote.Write` with %d blobs at a time; the pull fetches the manifest, the config and %d layers at a time, verifying digests "+
		"and discarding the bytes). Each trial pushes a freshly generated image (new digests, so every blob is uploaded) to both "+
		"registries, alternating which goes first, then pulls it back. MB/s is 10⁶ bytes (layers, config and manifest) per second; "+
		"figures are medians.\n\n", dist.Version, jobs, jobs)
	w("| image | registry | push MB/s (min–max) | pull MB/s (min–max) | trials |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range all {
		for _, side := range []struct {
			name string
			ts   []trial
		}{{"berth", s.berth}, {"docker-registry", s.dist}} {
			push, pull := rates(side.ts, false), rates(side.ts, true)
			plo, phi := minMax(push)
			llo, lhi := minMax(pull)
			w("| %s | %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %d |\n", s.shape.label, side.name,
				median(push), plo, phi, median(pull), llo, lhi, len(side.ts))
		}
		for _, op := range []struct {
			name string
			pull bool
		}{{"push", false}, {"pull", true}} {
			bv, dv := round1(median(rates(s.berth, op.pull))), round1(median(rates(s.dist, op.pull)))
			res.Figures = append(res.Figures, bench.Figure{
				Name:  fmt.Sprintf("%s throughput, %s image, with auth (median of %d)", op.name, s.shape.label, len(s.berth)),
				Value: bench.Value{Num: bv, Unit: "MB/s"},
				Anchor: &bench.Anchor{Name: "docker-registry (Distribution 2.8), median", Value: bench.Value{Num: dv, Unit: "MB/s"},
					Measured: true, Source: dist.Version + ", same run, same machine"},
				Target: fmt.Sprintf("≥ %.2f × docker-registry", ratioTarget),
				Met:    bench.Met(dv > 0 && bv/dv >= ratioTarget),
			})
		}
	}

	cs := bench.Summarize(durations(cold.cold, func(l launch) time.Duration { return l.total }))
	ws := bench.Summarize(durations(cold.warm, func(l launch) time.Duration { return l.total }))
	cp := bench.Summarize(durations(cold.cold, func(l launch) time.Duration { return l.pull }))
	wp := bench.Summarize(durations(cold.warm, func(l launch) time.Duration { return l.pull }))
	res.Figures = append(res.Figures, bench.Figure{
		Name:  fmt.Sprintf("cold pull: RunTask → RUNNING, %d MiB image not on the host (median of %d)", b.coldMiB, cs.N),
		Value: bench.Seconds(cs.P50),
		Anchor: &bench.Anchor{Name: "the same image's second task, already on the host, median", Value: bench.Seconds(ws.P50), Measured: true,
			Source: "same run, same env"},
		Target: "≤ 1.5 s", Met: bench.Met(cs.P50 <= coldTarget),
	})
	w("\n**Cold pull.** Each run pushes a fresh image to berth's registry: the demo busybox image (already on the host after an "+
		"untimed warm-up task) plus one gzip layer of %d MiB of random data (%.1f MB in all), so its new layer is on no host. "+
		"The time is RunTask sent → DescribeTasks shows RUNNING (polled every %s) for its first task (`sleep 3600`, FARGATE 256/512, "+
		"awsvpc); then the task is stopped and a second task of the same image is timed the same way, as the anchor. "+
		"*pull* is DescribeTasks' pullStoppedAt − pullStartedAt (millisecond precision). After each pair, another fresh image like it is "+
		"pushed and pulled by the host's containerd alone (its Go client's Pull with unpack into overlayfs, as the agent calls it, plain HTTP "+
		"with the same token, in a namespace of its own, the base layer already there): what the pull costs without berth's agent.\n\n",
		b.coldMiB, float64(cold.imageBytes)/1e6, bench.FormatDuration(b.poll))
	ps := bench.Summarize(cold.ctrPull)
	res.Figures = append(res.Figures, bench.Figure{
		Name:  fmt.Sprintf("cold pull: pullStartedAt → pullStoppedAt of those tasks (median of %d)", cp.N),
		Value: bench.Seconds(cp.P50),
		Anchor: &bench.Anchor{Name: "the host's containerd alone pulling and unpacking a like image, median", Value: bench.Seconds(ps.P50),
			Measured: true, Source: "containerd Go client Pull with unpack, same containerd, same run"},
	})
	w("| | median | min | max | pull, median | runs |\n| --- | --- | --- | --- | --- | --- |\n")
	w("| first task, image not on the host | %s | %s | %s | %s | %d |\n", bench.FormatDuration(cs.P50), bench.FormatDuration(cs.Min),
		bench.FormatDuration(cs.Max), bench.FormatDuration(cp.P50), cs.N)
	w("| second task, image on the host (anchor) | %s | %s | %s | %s | %d |\n", bench.FormatDuration(ws.P50), bench.FormatDuration(ws.Min),
		bench.FormatDuration(ws.Max), bench.FormatDuration(wp.P50), ws.N)
	w("| containerd alone: Pull with unpack of a like fresh image (anchor of the pull) | %s | %s | %s | | %d |\n",
		bench.FormatDuration(ps.P50), bench.FormatDuration(ps.Min), bench.FormatDuration(ps.Max), ps.N)
	w("\nTargets (issue 3): push and pull throughput ≥ %.2f × Distribution's; cold pull of a 50 MiB image ≤ 1.5 s.\n", ratioTarget)
	if !b.big {
		w("\nThe 1 GiB image is not measured by default (it takes minutes and ~3 GiB of memory); add `-registry.1gib`.\n")
	}
	res.Details = d.String()
	res.Reproduce = []string{
		"make build",
		"apt-get install -y docker-registry   # the benchmark installs it when missing",
		fmt.Sprintf("go run ./bench/cmd/berthbench -berth bin/berth -run '^registry$' -registry.trials %d -registry.cold %d -out /tmp/registry.md",
			b.trials, b.coldRuns) + map[bool]string{true: " -registry.1gib", false: ""}[b.big],
	}
	return res
}
