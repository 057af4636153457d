package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/lease"
	"github.com/nousresearch/hermes-s6/internal/reconcile"
	"github.com/nousresearch/hermes-s6/internal/rundir"
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
	dryRun := c.Bool("dry-run")
	env, err := g.env(c, n)
	if err != nil {
		if !dryRun {
			recordBoot(err, newLogger(c.App.ErrWriter))
		}
		return err
	}
	if !dryRun && env.Identity.Root() {
		// Every logger's leased pass reads it (templates/log-run.tmpl):
		// written before reconcile starts them.
		var id []byte // none outside a container: no record
		if c := lease.ContainerID(); c != "" {
			id = []byte(c + "\n")
		}
		if werr := rundir.Write(runtimeDir(), lease.ContainerFile, id); werr != nil {
			env.Log.Warn("cannot record the container's id for the lease holders", "detail", werr.Error())
		}
	}
	sum, err := reconcile.Run(c.Context, reconcile.Options{
		Env:    env,
		DryRun: dryRun,
		Out:    c.App.Writer,
	})
	if dryRun {
		return err
	}
	if sum != nil && env.Identity.Root() {
		// health reads what did not fit from here, not from the volume.
		if werr := reconcile.WriteLeftOut(runtimeDir(), sum.LeftOut); werr != nil {
			env.Log.Warn("cannot record the profiles left out for health", "detail", werr.Error())
		}
	}
	recordBoot(err, env.Log)
	return err
}

// recordBoot leaves the boot record health reads (reconcile.BootFile):
// this boot's reconcile has finished, and how. It is written last, so a
// health check that finds it finds every slot in place too.
func recordBoot(runErr error, log *slog.Logger) {
	if err := reconcile.WriteBoot(runtimeDir(), runErr); err != nil {
		log.Warn("cannot record for health that boot reconcile has run: health will say the container is still booting",
			"detail", err.Error(), "hint", "HERMES_S6_RUNTIME_DIR ("+runtimeDir()+") must be writable by the boot hook")
	}
}

// runtimeDir is root's directory of runtime records ($HERMES_S6_RUNTIME_DIR).
func runtimeDir() string { return rundir.Dir(os.Getenv) }
