// Command berthbench runs berth's benchmarks and writes BENCHMARKS.md
// (`make bench`). See package bench.
package main

import (
	"os"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/bench/alb"
	"github.com/berthdev/berth/bench/apiscale"
	"github.com/berthdev/berth/bench/density"
	"github.com/berthdev/berth/bench/launch"
	"github.com/berthdev/berth/bench/logs"
	"github.com/berthdev/berth/bench/network"
	"github.com/berthdev/berth/bench/registry"
	"github.com/berthdev/berth/bench/scale"
	"github.com/berthdev/berth/bench/startup"
	"github.com/berthdev/berth/bench/throughput"
)

func main() {
	os.Exit(bench.Main(os.Args, launch.New(), startup.New(), registry.New(), network.New(), alb.New(), logs.New(), density.New(),
		scale.New(), scale.NewMillion(), throughput.New(), throughput.NewServer(), apiscale.New()))
}
