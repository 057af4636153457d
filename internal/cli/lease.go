package cli

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/lease"
)

// leaseCommand is the step of a slot's log/run between s6-setlock, which
// has just taken the profile's lease, and s6-log (docs/scale-out.md).
func leaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "lease",
		Usage:     "internal: record this process as the lease holder of a log dir, then exec PROG (run by log/run under s6-setlock)",
		ArgsUsage: "--dir LOGDIR -- PROG [ARGS…]",
		Hidden:    true,
		Flags:     []cli.Flag{&cli.StringFlag{Name: "dir", Required: true, Usage: "the slot's log directory"}},
		Action: func(c *cli.Context) error {
			argv := c.Args().Slice()
			if len(argv) == 0 {
				return usage(fmt.Errorf("no program to exec after the lease is recorded"))
			}
			if err := lease.Hold(c.String("dir"), time.Now()); err != nil {
				return err
			}
			prog, err := exec.LookPath(argv[0])
			if err != nil {
				return err
			}
			return syscall.Exec(prog, argv, os.Environ())
		},
	}
}
