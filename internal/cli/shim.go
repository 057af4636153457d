package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/drain"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/lease"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/s6"
)

// shimCommand is the container's CMD wrapper (docs/shim.md).
func (g *globalOpts) shimCommand() *cli.Command {
	so := &slotOpts{}
	n := needs{account: true, render: true, slot: so}
	return &cli.Command{
		Name:      "shim",
		Before:    interruptible,
		Usage:     "CMD wrapper: run ARGS, or turn `gateway run` into a supervised slot",
		ArgsUsage: "-- ARGS…",
		Flags:     append([]cli.Flag{timeoutFlag}, so.flags()...),
		Action: func(c *cli.Context) error {
			return g.runShim(c, n, c.Args().Slice(), "")
		},
	}
}

// entrypointCommand is the image's ENTRYPOINT: /init as PID 1, the shim
// under it.
func (g *globalOpts) entrypointCommand() *cli.Command {
	so := &slotOpts{}
	n := needs{account: true, render: true, slot: so}
	return &cli.Command{
		Name:      "entrypoint",
		Usage:     "image ENTRYPOINT: as PID 1 exec /init hermes-s6 shim -- ARGS…",
		ArgsUsage: "-- ARGS…",
		Flags:     append([]cli.Flag{timeoutFlag}, so.flags()...),
		Action:    func(c *cli.Context) error { return g.entrypointCmd(c, n) },
	}
}

func (g *globalOpts) entrypointCmd(c *cli.Context, n needs) error {
	args := c.Args().Slice()
	if err := os.Setenv(shim.EnvCmd, shim.CmdJSON(args)); err != nil {
		return err
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(c.App.ErrWriter, "hermes-s6: "+shim.NotPID1)
		return g.runShim(c, n, args, shim.NotPID1Reason)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("entrypoint: path of hermes-s6: %w", err)
	}
	init := os.Getenv(shim.EnvInit)
	if init == "" {
		init = shim.DefaultInit
	}
	contenv := ""
	if _, err := os.Stat(withContenv); err == nil {
		contenv = withContenv
	}
	r := &shim.Runner{Stderr: c.App.ErrWriter, Env: os.Environ()}
	return r.ExecInit(shim.InitArgv(init, contenv, self, args))
}

// runShim decides what the CMD args become and becomes it. noRedirect,
// when set, keeps a gateway in the foreground and says why (already said,
// so quietly).
//
// Only the redirect renders a slot, so only the redirect checks the slot
// settings: a bad one never keeps another CMD from running.
func (g *globalOpts) runShim(c *cli.Context, n needs, args []string, noRedirect string) error {
	if err := g.clean(); err != nil {
		return err
	}
	id := account.Resolve(nil)
	svc, err := serviceAccount(g.Account, id.Root())
	if err != nil {
		return err
	}
	d := shim.Decide(shim.Input{
		Args:       args,
		Getenv:     os.Getenv,
		UID:        id.Self.UID,
		Account:    g.Account,
		Service:    svc,
		Hermes:     g.Hermes,
		NoRedirect: noRedirect,
	})
	r := &shim.Runner{
		Stderr: c.App.ErrWriter,
		Env:    os.Environ(),
		Quiet:  noRedirect != "",
		Start: func(ctx context.Context, p string) error {
			return g.startSlot(ctx, c, n, p)
		},
		LogDir: g.layout().LogDir,
		Lease: func(ctx context.Context, p string) ([]string, error) {
			return g.foregroundLease(ctx, c, p)
		},
		Record: func() error {
			path := os.Getenv(drain.EnvForeground)
			if path == "" {
				path = drain.DefaultForeground
			}
			return drain.Record(path)
		},
	}
	err = r.Run(c.Context, d)
	var ex shim.Exit
	if errors.As(err, &ex) {
		return silentExit(ex)
	}
	return err
}

// startSlot registers profile p's slot when it has none (reconcile usually
// made it at boot) and starts it: desired state running, up.
func (g *globalOpts) startSlot(ctx context.Context, c *cli.Context, n needs, p string) error {
	if err := profile.Validate(p); err != nil {
		return hint.With(err, "profile names look like coder, ops-2 or team_a")
	}
	// The profiles this container supervises: a profile that another
	// container's selection runs gets no slot here (boot reconcile did not
	// install it either), or every shard would register it and the first
	// to boot would run it (docs/scale-out.md).
	n.selection = true
	m, err := g.manager(c, n)
	if err != nil {
		return err
	}
	// The shim hands the gateway to s6 and does not wait for it to come up:
	// a gateway that exits at once (78, a configuration error) is parked by
	// its finish script, and the container must stay up so the operator
	// can look and fix it, as with any supervised slot.
	w := control.Wait{Timeout: c.Duration("timeout"), NoWait: true}
	if _, err := os.Stat(m.Layout.SlotDir(p)); errors.Is(err, fs.ErrNotExist) {
		if ok, why := m.Selection.Pick(p); !ok {
			return &shim.NotHere{Profile: p, Why: why}
		}
		return m.Register(ctx, p, true, w)
	}
	if m.StartedAtBoot(p) {
		// The boot reconcile installed it up from desired state running:
		// s6 starts it on pickup. An s6-svc -u now would start again a
		// gateway that already ran and was parked (exit 78), so the shim
		// leaves it to s6.
		return nil
	}
	return m.Start(ctx, p, w)
}

// foregroundLease makes a foreground gateway hold its profile's lease like
// a supervised one (docs/scale-out.md): boot reconcile installed the
// profile's slot down, and its logger takes the lease; the gateway waits
// until it has, then runs under s6-setlock on the gateway lock. Without a
// supervised slot (no s6 tree, or no slot) there is no lease to hold.
func (g *globalOpts) foregroundLease(ctx context.Context, c *cli.Context, p string) ([]string, error) {
	if profile.Validate(p) != nil {
		return nil, nil
	}
	l := g.layout()
	logger := filepath.Join(l.SlotDir(p), "log")
	if ok, _ := s6.Supervised(logger); !ok {
		fmt.Fprintf(c.App.ErrWriter, "hermes-s6: warning: no supervised slot %s: this gateway runs without its lease, so another container may run profile %s too\n", profile.SlotName(p), p)
		return nil, nil
	}
	tools := s6.Tools{Dir: g.S6Bin}
	setlock, err := tools.Path("s6-setlock")
	if err != nil {
		return nil, err
	}
	if st, err := tools.Status(ctx, logger); err == nil && !st.Ready {
		who := "another container"
		if h, ok, _ := lease.ReadHolder(l.Home, l.LogDir(p)); ok {
			who = h.String()
		}
		fmt.Fprintf(c.App.ErrWriter, "hermes-s6: waiting for the lease of profile %s, held by %s\n", p, who)
	}
	if err := tools.WaitReady(ctx, s6.Forever, logger); err != nil {
		return nil, fmt.Errorf("wait for the lease of profile %s: %w", p, err)
	}
	return []string{setlock, filepath.Join(l.LogDir(p), lease.GatewayLock)}, nil
}
