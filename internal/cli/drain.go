package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/drain"
)

// drainCommand is the stage-3 hook (/etc/cont-finish.d/50-hermes-s6-drain):
// every slot down through s6 before s6-overlay kills what is left.
func (g *globalOpts) drainCommand() *cli.Command {
	return &cli.Command{
		Name:  "drain",
		Usage: "stop hook: take every slot down through s6, loggers last, within a deadline",
		Description: "Run by /etc/cont-finish.d when the container stops. Sends SIGTERM to the foreground\n" +
			"gateway (--no-supervise) and s6-svc -d to every gateway slot at once, then the\n" +
			"dashboard; kills through s6 what is still up at the deadline and names it; waits\n" +
			"until each logger has read its gateway's last lines. No desired state changes:\n" +
			"the next boot brings back what was running. Bounded by " + drain.EnvFinishMaxTime + "\n" +
			"when that is set. See docs/stop.md.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: drain.DefaultTimeout, EnvVars: []string{drain.EnvTimeout}, Usage: "deadline for every slot to be down (a Go duration)"},
		},
		Action: g.drainCmd,
	}
}

func (g *globalOpts) drainCmd(c *cli.Context) error {
	if c.Args().Present() {
		return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return usage(fmt.Errorf("--timeout %s: the drain needs a positive deadline, e.g. 8s", timeout))
	}
	if v := os.Getenv(drain.EnvFinishMaxTime); v != "" {
		finishMS, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "hermes-s6: drain: %s=%q is not a number of milliseconds: ignored\n", drain.EnvFinishMaxTime, v)
		}
		if capped, cut := drain.Capped(timeout, finishMS); cut {
			fmt.Fprintf(c.App.ErrWriter, "hermes-s6: drain: %s=%s would kill the drain first: deadline %s instead of %s (raise %s above %d)\n",
				drain.EnvFinishMaxTime, v, capped, timeout, drain.EnvFinishMaxTime, (timeout + 2*time.Second).Milliseconds())
			timeout = capped
		}
	}
	record := os.Getenv(drain.EnvForeground)
	if record == "" {
		record = drain.DefaultForeground
	}
	env, err := g.env(c, needs{})
	if err != nil {
		return err
	}
	rep, err := drain.Run(c.Context, drain.Options{
		Env:        env,
		Timeout:    timeout,
		Foreground: record,
		Out:        c.App.ErrWriter,
	})
	if n := len(rep.Drained); n > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hermes-s6: drain: everything down in %s (%d drained, %d killed)\n", rep.Took.Round(time.Millisecond), n-len(rep.Killed), len(rep.Killed))
	}
	return err
}
