package launch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/logdriver"
)

// floorSample is one bare start, by containerd call.
type floorSample struct {
	total     time.Duration
	container time.Duration // NewContainer: snapshot from the image + OCI spec + metadata
	task      time.Duration // NewTask: shim + runc create
	start     time.Duration // Task.Start: runc start
}

const (
	floorNamespace   = runtime.DefaultNamespace
	floorSnapshotter = "overlayfs"
	floorRuntime     = "io.containerd.runc.v2"
)

// floor starts the tasks' image with the containerd Go client on the dev
// env's own containerd, in berth's namespace, with the image already
// unpacked: create the container (with a new snapshot) and its task, start
// it, and stop the clock once Start returns (the process runs); then kill
// and delete it.
type floor struct {
	client   *containerd.Client
	img      containerd.Image
	runcRoot string // the runc state dir berth's agent gives its shims
	cgParent string // the floor's containers' cgroups live below it
	// logDriver is berth's log driver program, logDir where its logs go.
	logDriver, logDir string
	n                 int
}

// openFloor connects to the dev env's containerd and checks that the image
// is unpacked.
func openFloor(ctx context.Context, dev *bench.Dev, berth string) (*floor, error) {
	socket := dev.ContainerdSocket()
	client, err := containerd.New(socket, containerd.WithDefaultNamespace(floorNamespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("floor: connect to containerd %s: %w", socket, err)
	}
	f := &floor{client: client, runcRoot: dev.RuncRoot(), cgParent: fmt.Sprintf("/berth-bench-floor-%d", os.Getpid()),
		logDriver: logdriver.Beside(berth), logDir: filepath.Join(dev.DataDir, "bench-floor-logs")}
	image := dev.Image
	if err := os.MkdirAll(f.logDir, 0o755); err != nil {
		client.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	name, err := runtime.NormalizeRef(image)
	if err == nil {
		f.img, err = client.GetImage(ctx, name)
	}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("floor: image %s: %w", image, err)
	}
	if ok, err := f.img.IsUnpacked(ctx, floorSnapshotter); err != nil || !ok {
		f.close()
		return nil, fmt.Errorf("floor: image %s is not unpacked (%v): the tasks should have unpacked it", name, err)
	}
	return f, nil
}

// close disconnects and removes the floor's cgroups.
func (f *floor) close() error {
	err := f.client.Close()
	if cerr := runtime.DeleteTaskCgroup(f.cgParent); cerr != nil {
		return fmt.Errorf("floor: remove cgroups: %w", cerr)
	}
	return err
}

// floorVariant is what a floor start adds to the bare start: the parts of
// berth's container configuration that cost time, to show where it goes.
type floorVariant struct {
	name    string
	seccomp bool // containerd's default seccomp profile, as berth's containers get
	// logDriver: output goes through berth's log driver (berth-logdriver,
	// which the shim starts per container), as berth's does.
	logDriver bool
}

var floorVariants = []floorVariant{
	{name: "bare containerd start"},
	{name: "+ default seccomp profile", seccomp: true},
	{name: "+ seccomp + berth's log driver", seccomp: true, logDriver: true},
}

// once times one start and then removes the container.
func (f *floor) once(ctx context.Context, v floorVariant) (s floorSample, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f.n++
	id := fmt.Sprintf("berthbench-floor-%d-%d", os.Getpid(), f.n)
	specOpts := []oci.SpecOpts{oci.WithImageConfig(f.img), oci.WithProcessArgs("sleep", "3600"), oci.WithCgroup(f.cgParent + "/" + id)}
	if v.seccomp {
		specOpts = append(specOpts, seccomp.WithDefaultProfile())
	}
	ioCreator := cio.NullIO
	if v.logDriver {
		ioCreator = cio.BinaryIO(f.logDriver, map[string]string{logdriver.Arg: filepath.Join(f.logDir, id+".log")})
	}
	t0 := time.Now()
	c, err := f.client.NewContainer(ctx, id,
		containerd.WithImage(f.img),
		containerd.WithSnapshotter(floorSnapshotter),
		containerd.WithNewSnapshot(id, f.img),
		containerd.WithRuntime(floorRuntime, &options.Options{Root: f.runcRoot}),
		containerd.WithNewSpec(specOpts...),
	)
	if err != nil {
		return s, fmt.Errorf("floor: create container: %w", err)
	}
	t1 := time.Now()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if derr := c.Delete(dctx, containerd.WithSnapshotCleanup); derr != nil && err == nil {
			err = fmt.Errorf("floor: delete container: %w", derr)
		}
	}()
	task, err := c.NewTask(ctx, ioCreator)
	if err != nil {
		return s, fmt.Errorf("floor: create task: %w", err)
	}
	t2 := time.Now()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, derr := task.Delete(dctx, containerd.WithProcessKill); derr != nil && err == nil {
			err = fmt.Errorf("floor: kill and delete task: %w", derr)
		}
	}()
	if err := task.Start(ctx); err != nil {
		return s, fmt.Errorf("floor: start task: %w", err)
	}
	t3 := time.Now()
	st, err := task.Status(ctx)
	if err != nil {
		return s, fmt.Errorf("floor: task status: %w", err)
	}
	if st.Status != containerd.Running {
		return s, fmt.Errorf("floor: task is %s after Start, not running", st.Status)
	}
	return floorSample{total: t3.Sub(t0), container: t1.Sub(t0), task: t2.Sub(t1), start: t3.Sub(t2)}, nil
}
