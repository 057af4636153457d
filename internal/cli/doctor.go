package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/doctor"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/s6"
)

// doctorCommand checks the environment and prints each problem with a fix.
// It changes nothing; it exits 1 when a finding is a fail.
func doctorCommand() *cli.Command {
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
			name := c.String("account")
			acct, aerr := account.Lookup(name)
			fs := doctor.Run(c.Context, doctor.Env{
				Layout:      profile.Layout{Home: c.String("home"), Scandir: c.String("scandir")},
				Tools:       s6.Tools{Dir: c.String("s6-bin")},
				AccountName: name,
				Account:     acct,
				AccountErr:  aerr,
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
