// Command berth-logdriver is the containers' log driver: containerd's shim
// starts it for each container to append the container's stdout and stderr
// to its log file. It is the berth binary's log driver without the rest of
// berth, so it starts in a few milliseconds instead of some forty.
package main

import (
	"fmt"
	"os"

	"github.com/berthdev/berth/internal/runtime/logdriver"
)

func main() {
	logdriver.MaybeRun()
	fmt.Fprintln(os.Stderr, "berth-logdriver is started by containerd's shim for berth's containers, not by hand")
	os.Exit(2)
}
