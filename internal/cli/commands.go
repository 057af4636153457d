package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/broker"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/lease"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/render"
)

// commands are hermes-s6's commands. Each declares in its definition what
// it takes from its environment (needs): the global flags are bound into g,
// its slot flags, when it has them, into a slotOpts of its own.
func (g *globalOpts) commands() []*cli.Command {
	renderSlot, registerSlot, startSlot := &slotOpts{}, &slotOpts{}, &slotOpts{}
	drives := needs{account: true}
	return []*cli.Command{
		{
			Name:      "render",
			Usage:     "print a profile's slot (or write it to --out DIR)",
			Flags:     append([]cli.Flag{profileFlag, &cli.StringFlag{Name: "out", Usage: "write the slot into this directory instead of printing it"}}, renderSlot.flags()...),
			Action:    g.renderCmd(needs{account: true, render: true, slot: renderSlot}),
			ArgsUsage: " ",
		},
		{
			Name:   "register",
			Before: interruptible,
			Usage:  "install a profile's slot atomically (down unless --start)",
			Flags:  append([]cli.Flag{profileFlag, &cli.BoolFlag{Name: "start", Usage: "start it too (desired state running)"}, timeoutFlag}, registerSlot.flags()...),
			Action: g.slotOp(needs{account: true, render: true, slot: registerSlot}, broker.OpRegister),
		},
		{
			Name:   "unregister",
			Before: interruptible,
			Usage:  "stop a profile's gateway and remove its slot",
			Flags:  []cli.Flag{profileFlag, timeoutFlag},
			Action: g.slotOp(drives, broker.OpUnregister),
		},
		{
			Name:   "start",
			Usage:  "record desired state running and bring the gateway up",
			Flags:  append([]cli.Flag{profileFlag, timeoutFlag, noWaitFlag}, startSlot.flags()...),
			Action: g.lifecycle(needs{account: true, slot: startSlot}, (*control.Manager).Start),
		},
		{
			Name:   "stop",
			Usage:  "record desired state stopped and bring the gateway down",
			Flags:  []cli.Flag{profileFlag, timeoutFlag, noWaitFlag},
			Action: g.lifecycle(drives, (*control.Manager).Stop),
		},
		{
			Name:   "restart",
			Usage:  "bring the gateway down (finish done), then up again",
			Flags:  []cli.Flag{profileFlag, timeoutFlag, noWaitFlag},
			Action: g.lifecycle(drives, (*control.Manager).Restart),
		},
		{
			Name:  "status",
			Usage: "show slots as s6 sees them (all when no --profile)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "only this profile"},
				&cli.BoolFlag{Name: "json", Usage: "print a JSON array"},
			},
			Action: g.statusCmd,
		},
		{
			Name:   "list",
			Usage:  "list registered gateway profiles",
			Action: g.listCmd,
		},
		{
			Name:  "version",
			Usage: "print the version",
			Action: func(c *cli.Context) error {
				fmt.Fprintf(c.App.Writer, "hermes-s6 %s\n", versionString())
				return nil
			},
		},
		g.reconcileCommand(),
		g.drainCommand(),
		g.brokerCommand(),
		g.logsCommand(),
		completionCommand(),
		g.shimCommand(),
		g.entrypointCommand(),
		g.doctorCommand(),
		g.healthCommand(),
		probeCommand(),
	}
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

func (g *globalOpts) renderCmd(n needs) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, err := profileArg(c)
		if err != nil {
			return err
		}
		cfg, err := g.slotConfig(n)
		if err != nil {
			return err
		}
		cfg.Profile, cfg.Down = p, true
		s, err := render.Render(cfg)
		if err != nil {
			return usage(err)
		}
		out := c.String("out")
		if out == "" {
			return printSlot(c.App.Writer, s)
		}
		out, err = filepath.Abs(out)
		if err != nil {
			return err
		}
		s.Name = filepath.Base(out)
		_, err = slot.Install(filepath.Dir(out), s, slot.Options{SyncDown: true})
		return err
	}
}

func printSlot(w io.Writer, s *render.Slot) error {
	for i, f := range s.Files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "==> %s/%s (%04o) <==\n", s.Name, f.Path, f.Mode.Perm())
		if _, err := w.Write(f.Data); err != nil {
			return err
		}
	}
	return nil
}

// profileManager is --profile, validated, and a Manager on the command's
// env: what every command on one profile starts with.
func (g *globalOpts) profileManager(c *cli.Context, n needs) (string, *control.Manager, error) {
	p, err := profileArg(c)
	if err != nil {
		return "", nil, err
	}
	m, err := g.manager(c, n)
	return p, m, err
}

// slotOp is register or unregister: done here when the caller may write
// the scandir, else asked of the root broker (the scandir is root's in the
// image, and the service account may not write it).
func (g *globalOpts) slotOp(n needs, op string) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, m, err := g.profileManager(c, n)
		if err != nil {
			return err
		}
		start := op == broker.OpRegister && c.Bool("start")
		if socket, ok := g.brokered(m.Identity); ok {
			return askBroker(c.Context, socket, broker.Request{Op: op, Profile: p, Start: start})
		}
		w := control.Wait{Timeout: c.Duration("timeout")}
		if op == broker.OpUnregister {
			return m.Unregister(c.Context, p, w)
		}
		return m.Register(c.Context, p, start, w)
	}
}

// lifecycle adapts a Manager operation on one profile to a command action.
func (g *globalOpts) lifecycle(n needs, op func(*control.Manager, context.Context, string, control.Wait) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, m, err := g.profileManager(c, n)
		if err != nil {
			return err
		}
		w := control.Wait{Timeout: c.Duration("timeout"), NoWait: c.Bool("no-wait")}
		if n.slot != nil && n.slot.anySet(c) {
			// start with slot flags reshapes the registered slot first.
			if err := m.Reshape(c.Context, p, w); err != nil {
				return err
			}
		}
		return op(m, c.Context, p, w)
	}
}

func (g *globalOpts) listCmd(c *cli.Context) error {
	m, err := g.manager(c, needs{selection: true})
	if err != nil {
		return err
	}
	ps, err := m.List()
	if err != nil {
		return err
	}
	noteSelection(c, m)
	for _, p := range ps {
		fmt.Fprintln(c.App.Writer, p)
	}
	return nil
}

// noteSelection says on stderr which profiles this container supervises,
// when it is not all of them (docs/scale-out.md): a profile missing from
// list or status may be another container's.
func noteSelection(c *cli.Context, m *control.Manager) {
	if !m.Selection.All() {
		fmt.Fprintf(c.App.ErrWriter, "hermes-s6: this container supervises %s; other profiles are other containers' (reconcile --dry-run lists them)\n", m.Selection)
	}
}

// statusJSON is one element of `status --json` (README: Commands; docs/lifecycle.md).
type statusJSON struct {
	Name         string  `json:"name"`
	Profile      *string `json:"profile"`
	Supervised   bool    `json:"supervised"`
	Up           bool    `json:"up"`
	WantUp       bool    `json:"want_up"`
	NormallyUp   bool    `json:"normally_up"`
	Ready        bool    `json:"ready"`
	PID          int     `json:"pid"`
	ExitCode     int     `json:"exit_code"`
	Signal       string  `json:"signal"`
	Seconds      int     `json:"seconds"`
	DesiredState string  `json:"desired_state"`
	// NextTry is the seconds until a slot waiting out its crash backoff
	// starts its program again; -1 when it is not backing off.
	NextTry int `json:"next_try"`
	// Waiting: up, but waiting for the profile's lease; LeaseHolder says
	// who holds it (null when unknown or not waiting).
	Waiting     bool          `json:"waiting"`
	LeaseHolder *lease.Holder `json:"lease_holder"`
}

func (g *globalOpts) statusCmd(c *cli.Context) error {
	if c.Args().Present() {
		return usage(fmt.Errorf("unexpected argument %q (use --profile)", c.Args().First()))
	}
	m, err := g.manager(c, needs{selection: true})
	if err != nil {
		return err
	}
	var rows []control.SlotStatus
	if c.IsSet("profile") {
		ss, err := m.Status(c.Context, c.String("profile"))
		if err != nil {
			return err
		}
		rows = []control.SlotStatus{ss}
	} else if rows, err = m.StatusAll(c.Context); err != nil {
		return err
	} else {
		noteSelection(c, m)
	}
	for _, r := range rows {
		if r.Problem != nil {
			m.Log.Warn("corrupt desired state, counted as none", "slot", r.Name, "detail", r.Problem.Error())
		}
	}
	now := m.Now()
	if c.Bool("json") {
		out := make([]statusJSON, 0, len(rows))
		for _, r := range rows {
			j := statusJSON{
				Name: r.Name, Supervised: r.Supervised, Up: r.Up, WantUp: r.WantUp,
				NormallyUp: r.NormallyUp, Ready: r.Ready, PID: r.PID, ExitCode: r.ExitCode,
				Signal: r.Signal, Seconds: r.Seconds, DesiredState: string(r.Desired), NextTry: -1,
				Waiting: r.Waiting, LeaseHolder: r.Holder,
			}
			if r.BackingOff() {
				j.NextTry = int(r.Run.NextTry(now) / time.Second)
			}
			if r.Profile != "" {
				p := r.Profile
				j.Profile = &p
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTATE\tPID\tFOR\tWANT\tON PICKUP\tDESIRED\tLAST EXIT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\t%s\t%s\t%s\t%s\n", r.Name, stateWord(r, now), pidWord(r.PID),
			r.Seconds, upDown(r.WantUp), upDown(r.NormallyUp), r.Desired, lastExit(r))
	}
	return tw.Flush()
}

func stateWord(r control.SlotStatus, now time.Time) string {
	switch {
	case !r.Supervised:
		return "unsupervised"
	case r.BackingOff():
		return fmt.Sprintf("backing off, next try in %ds", int(r.Run.NextTry(now)/time.Second))
	case r.Waiting:
		return "waiting for the lease, held by " + holderWord(r.Holder)
	case r.Up && r.Notifies && !r.Ready:
		return "up, not ready"
	case r.Up:
		return "up"
	case r.WantUp:
		return "restarting"
	}
	return "down"
}

func holderWord(h *lease.Holder) string {
	if h == nil {
		return "another container"
	}
	return h.String()
}

func pidWord(pid int) string {
	if pid < 0 {
		return "-"
	}
	return fmt.Sprint(pid)
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

func lastExit(r control.SlotStatus) string {
	switch {
	case r.Signal != "":
		return r.Signal
	case r.ExitCode >= 0:
		return fmt.Sprint(r.ExitCode)
	}
	return "-"
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			sh := c.Args().First()
			script, ok := completions[sh]
			if !ok {
				return usage(fmt.Errorf("completion %q: want bash or zsh", sh))
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// completions drive urfave/cli's --generate-bash-completion.
var completions = map[string]string{
	"bash": strings.TrimLeft(`
# bash completion for hermes-s6: source <(hermes-s6 completion bash)
_hermes_s6() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  COMPREPLY=($(compgen -W "$("${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _hermes_s6 hermes-s6
`, "\n"),
	"zsh": strings.TrimLeft(`
#compdef hermes-s6
# zsh completion for hermes-s6: source <(hermes-s6 completion zsh)
_hermes_s6() {
  local -a opts
  opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  _describe 'values' opts
}
compdef _hermes_s6 hermes-s6
`, "\n"),
}
