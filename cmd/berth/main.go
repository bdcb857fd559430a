// Command berth runs serverless containers you host yourself: an ECS- and
// Fargate-compatible control plane, host agent, and registry in one binary.
package main

import (
	"os"

	"github.com/berthdev/berth/internal/cli"
	"github.com/berthdev/berth/internal/runtime/logdriver"
)

func main() {
	// containerd's shims start this binary as each container's log driver.
	logdriver.MaybeRun()
	os.Exit(cli.Main(os.Args[1:]))
}
