// Command hermes-s6 is the s6 side of the Hermes Agent container image: it
// renders, installs and drives the gateway slots of an s6 supervision tree.
// See internal/cli for the commands and docs/ for the manual.
package main

import (
	"os"

	"github.com/nousresearch/hermes-s6/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
