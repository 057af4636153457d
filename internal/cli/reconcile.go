package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/reconcile"
)

// reconcileCommand is the boot hook (docs/reconcile.md) and, hidden below it, the
// volume worker it runs as the service account.
func (g *globalOpts) reconcileCommand() *cli.Command {
	so := &slotOpts{}
	n := needs{account: true, render: true, selection: true, slot: so}
	return &cli.Command{
		Name:   "reconcile",
		Before: interruptible,
		Usage:  "boot hook: rebuild every slot from the desired state on the volume",
		Description: "Run by /etc/cont-init.d as root before the CMD. Installs gateway-default, then every\n" +
			"valid named profile, then the dashboard: up when the desired state is running\n" +
			"(HERMES_DASHBOARD for the dashboard), else with a down file. Reads the container's\n" +
			"CMD from " + reconcile.CmdEnv + " for the legacy `gateway run` migration. Prints one\n" +
			"line per slot, as appended to $HERMES_HOME/logs/container-boot.log.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan, change nothing (no tree needed)"},
		}, so.flags()...),
		Action:          func(c *cli.Context) error { return g.reconcileCmd(c, n) },
		HideHelpCommand: true,
		Subcommands: []*cli.Command{{
			Name:   reconcile.VolumeArgs[1],
			Usage:  "internal: serve one volume request on stdin (run by reconcile as the service account)",
			Hidden: true,
			Action: func(c *cli.Context) error {
				return reconcile.ServeVolume(c.App.Reader, c.App.Writer)
			},
		}},
	}
}

func (g *globalOpts) reconcileCmd(c *cli.Context, n needs) error {
	if c.Args().Present() {
		return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
	}
	env, err := g.env(c, n)
	if err != nil {
		return err
	}
	sum, err := reconcile.Run(c.Context, reconcile.Options{
		Env:    env,
		DryRun: c.Bool("dry-run"),
		Out:    c.App.Writer,
	})
	if sum != nil && !c.Bool("dry-run") && env.Identity.Root() {
		// health reads what did not fit from here, not from the volume.
		if werr := reconcile.WriteLeftOut(runtimeDir(), sum.LeftOut); werr != nil {
			env.Log.Warn("cannot record the profiles left out for health", "detail", werr.Error())
		}
	}
	return err
}

// runtimeDir is root's directory of runtime records ($HERMES_S6_RUNTIME_DIR).
func runtimeDir() string {
	if d := os.Getenv("HERMES_S6_RUNTIME_DIR"); d != "" {
		return d
	}
	return "/run/hermes-s6"
}
