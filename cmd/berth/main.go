// Command berth runs serverless containers you host yourself: an ECS- and
// Fargate-compatible control plane, host agent, and registry in one binary.
package main

import (
	"os"

	"github.com/berthdev/berth/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
