package cli

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/logs"
)

func (g *globalOpts) logsCommand() *cli.Command {
	return &cli.Command{
		Name:   "logs",
		Before: interruptible,
		Usage:  "print a profile's gateway log: archives then current, oldest first",
		Flags: []cli.Flag{
			profileFlag,
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines (across rotations)"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "only the last N lines (0: all)"},
		},
		Action: func(c *cli.Context) error {
			p, err := profileArg(c)
			if err != nil {
				return err
			}
			if c.Int("lines") < 0 {
				return usage(fmt.Errorf("-n %d: want a line count ≥ 0", c.Int("lines")))
			}
			if err := g.clean(); err != nil {
				return err
			}
			dir := g.layout().LogDir(p)
			pos, err := logs.Print(c.App.Writer, dir, c.Int("lines"))
			if err != nil {
				return hint.With(fmt.Errorf("logs of %s: %w", p, err),
					"the log directory appears when the slot's logger first runs: hermes-s6 status --profile "+p)
			}
			if !c.Bool("follow") {
				return nil
			}
			return logs.Follow(c.Context, c.App.Writer, dir, pos, 100*time.Millisecond)
		},
	}
}
