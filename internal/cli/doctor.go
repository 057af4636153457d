package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/doctor"
	"github.com/nousresearch/hermes-s6/internal/shim"
)

// doctorCommand checks the environment and prints each problem with a fix.
// It changes nothing; it exits 1 when a finding is a fail.
func (g *globalOpts) doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the environment; print each problem with a fix (exit 1 on any FAIL)",
		Description: "Checks the s6 tools, s6 detection, the service account, HERMES_HOME, the scandir and\n" +
			"s6-svscan's control FIFO, leftover staging dirs, each slot's supervise skeleton, log dirs\n" +
			"and s6-log locks, desired-state files, and drift between desired state and what s6\n" +
			"reports. Changes nothing. Exits 0 when nothing breaks operation (warnings allowed), else 1.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object: ok, counts, findings"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
			}
			// doctor reports a service account that does not resolve as a
			// finding, so it resolves the account itself.
			env, err := g.env(c, needs{selection: true})
			if err != nil {
				return err
			}
			env.Identity.Service, err = account.Lookup(g.Account)
			fs := doctor.Run(c.Context, doctor.Env{
				Env:         env,
				AccountName: g.Account,
				AccountErr:  err,
				ProcRoot:    os.Getenv(shim.EnvProc),
				Basedir:     os.Getenv(shim.EnvBasedir),
			})
			print := doctor.Print
			if c.Bool("json") {
				print = doctor.PrintJSON
			}
			if err := print(c.App.Writer, fs); err != nil {
				return err
			}
			if doctor.Failed(fs) {
				return silentExit(ExitFailed)
			}
			return nil
		},
	}
}
