package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/cmdline"
	"github.com/nousresearch/hermes-s6/internal/drain"
	"github.com/nousresearch/hermes-s6/internal/health"
	"github.com/nousresearch/hermes-s6/internal/reconcile"
)

// containerEnvDir is where s6-overlay keeps the container's environment at
// boot (what with-contenv reads). A HEALTHCHECK or `docker exec` process
// does not inherit what the entrypoint exported; health reads the CMD here.
const containerEnvDir = "/run/s6/container_environment"

func (g *globalOpts) healthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "is this container doing what it was asked to? exit 0 healthy, 1 unhealthy (docs/health.md)",
		Description: "Checks every slot whose desired state is running (and the dashboard while\n" +
			"HERMES_DASHBOARD is truthy): up, not parked by finish, not crash-looping, ready within\n" +
			"the start grace ($HERMES_S6_START_GRACE, 60s). A dashboard container checks that its\n" +
			"dashboard answers HTTP; a foreground container that its gateway runs. One line per\n" +
			"problem, each with what to do. The image's HEALTHCHECK and Kubernetes probes run it.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object: healthy, role, slots, problems"},
		},
		Action: g.healthCmd,
	}
}

func (g *globalOpts) healthCmd(c *cli.Context) error {
	if c.Args().Present() {
		return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
	}
	env, err := g.env(c, needs{selection: true})
	if err != nil {
		return err
	}
	grace := health.DefaultGrace
	if s := strings.TrimSpace(env.Getenv("HERMES_S6_START_GRACE")); s != "" {
		if grace, err = time.ParseDuration(s); err != nil || grace <= 0 {
			return usage(fmt.Errorf("HERMES_S6_START_GRACE=%q: want a positive Go duration, e.g. 60s", s))
		}
	}
	fg := drain.ForegroundPath(env.Getenv)
	rep, err := health.Check(c.Context, health.Options{
		Env:        env,
		Cmd:        containerCmd(env.Getenv),
		Foreground: func() (bool, int, error) { return drain.Foreground(fg) },
		LeftOut:    func() []string { return reconcile.ReadLeftOut(runtimeDir()) },
		Boot: func() (bool, string, error) {
			b, err := reconcile.ReadBoot(runtimeDir())
			return b.This, b.Failed, err
		},
		Probe: health.HTTP,
		Grace: grace,
	})
	if err != nil {
		if c.Bool("json") {
			rep.Problems = append(rep.Problems, health.Problem{Slot: "s6-svscan", Problem: err.Error(), Fix: "see the error below"})
			_ = printHealthJSON(c.App.Writer, rep)
		}
		return err
	}
	if c.Bool("json") {
		err = printHealthJSON(c.App.Writer, rep)
	} else {
		err = printHealth(c.App.Writer, rep)
	}
	if err != nil {
		return err
	}
	if !rep.Healthy {
		return silentExit(ExitFailed)
	}
	return nil
}

func printHealthJSON(w io.Writer, rep *health.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func printHealth(w io.Writer, rep *health.Report) error {
	if rep.Healthy {
		_, err := fmt.Fprintf(w, "healthy: %s container, %d slot(s) checked\n", rep.Role, rep.Slots)
		for _, s := range rep.Standby {
			if err == nil {
				_, err = fmt.Fprintf(w, "standby: %s waits for its lease, held by %s\n", s.Slot, s.Holder)
			}
		}
		return err
	}
	var b strings.Builder
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "UNHEALTHY %s: %s\n          fix: %s\n", p.Slot, p.Problem, p.Fix)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// containerCmd is the container's CMD: $HERMES_S6_CMD, else what
// s6-overlay stored of it at boot; nil when neither says (not a container
// of this image).
func containerCmd(getenv func(string) string) []string {
	raw := getenv(cmdline.Env)
	if raw == "" {
		b, err := os.ReadFile(filepath.Join(containerEnvDir, cmdline.Env))
		if err != nil {
			return nil
		}
		raw = string(b)
	}
	var cmd []string
	if json.Unmarshal([]byte(raw), &cmd) != nil {
		return nil
	}
	return cmd
}

func probeCommand() *cli.Command {
	return &cli.Command{
		Name:      "probe",
		Usage:     "exit 0 when HOST:PORT answers HTTP (the dashboard's readiness check runs it)",
		ArgsUsage: " ",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "http", Usage: "HOST:PORT to probe", Required: true}},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
			}
			return health.HTTP(c.Context, c.String("http"))
		},
	}
}
