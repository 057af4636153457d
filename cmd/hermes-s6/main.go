//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command hermes-s6 is the s6 side of the Hermes Agent container image: it
// renders, installs and drives the gateway slots of an s6 supervision tree.
// See internal/cli for the commands and docs/ for the manual.
//
// The go:debug lines above: hermes-s6 lives for milliseconds per call, so
// sizing GOMAXPROCS from cgroup CPU limits at start-up (Go 1.25) costs more
// than it could save.
package main

import (
	"os"

	"github.com/nousresearch/hermes-s6/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
