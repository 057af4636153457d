package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/broker"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/hint"
)

// brokerCommand is the root service that registers and unregisters slots
// for the service account (/etc/services.d/hermes-s6-broker).
func (g *globalOpts) brokerCommand() *cli.Command {
	so := &slotOpts{}
	n := needs{account: true, render: true, slot: so}
	return &cli.Command{
		Name:  "broker",
		Usage: "root service: register and unregister slots for the service account (docs/lifecycle.md)",
		Description: "Listens on a unix socket (" + broker.DefaultSocket + ", $" + broker.EnvSocket + ") and serves\n" +
			"root and the service account only (SO_PEERCRED). A request is an operation and a\n" +
			"profile name; the broker renders and installs the slot from its own settings.\n" +
			"hermes-s6 register and unregister, run as the service account, ask it.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "socket", Value: broker.DefaultSocket, EnvVars: []string{broker.EnvSocket}, Usage: "the socket to listen on"},
		}, so.flags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usage(fmt.Errorf("unexpected argument %q", c.Args().First()))
			}
			env, err := g.env(c, n)
			if err != nil {
				return err
			}
			if !env.Identity.Root() {
				return hint.With(usage(errors.New("the broker runs as root: it installs slots the service account may not write")),
					"run it as root (the image supervises it as /etc/services.d/hermes-s6-broker)")
			}
			srv := &broker.Server{Socket: c.String("socket"), Group: -1, Code: ExitCode, Log: env.Log}
			if svc := env.Identity.Service; svc != nil && svc.UID != 0 {
				srv.Allowed, srv.Group = []int{svc.UID}, svc.GID
			}
			m := control.New(env)
			srv.Handle = func(ctx context.Context, req broker.Request) error {
				w := control.Wait{Timeout: control.DefaultTimeout}
				if req.Op == broker.OpUnregister {
					return m.Unregister(ctx, req.Profile, w)
				}
				return m.Register(ctx, req.Profile, req.Start, w)
			}
			ln, err := srv.Listen()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			env.Log.Info("broker: listening", "socket", srv.Socket, "allowed_uids", srv.Allowed)
			return srv.Serve(ctx, ln)
		},
	}
}

// brokered reports whether this command must ask the broker: not root,
// the scandir is not ours to write (it is root's in the image), and a
// broker socket is there.
func (g *globalOpts) brokered(id account.Identity) (string, bool) {
	if id.Root() || syscall.Access(g.Scandir, 2 /* W_OK */) == nil {
		return "", false
	}
	socket := os.Getenv(broker.EnvSocket)
	if socket == "" {
		socket = broker.DefaultSocket
	}
	return socket, true
}

// brokerError is the broker's answer to a request that failed: its
// message, hints and exit code, as if the command had failed here.
type brokerError struct {
	err  error
	code int
}

func (b *brokerError) Error() string { return b.err.Error() }
func (b *brokerError) Unwrap() error { return b.err }
func (b *brokerError) ExitCode() int { return b.code }

// askBroker sends req and turns a failed answer into the command's error.
func askBroker(ctx context.Context, socket string, req broker.Request) error {
	resp, err := broker.Call(ctx, socket, req)
	if err != nil {
		return err
	}
	if resp.Code == 0 {
		return nil
	}
	berr := errors.New(resp.Error)
	for i := len(resp.Hints) - 1; i >= 0; i-- {
		berr = hint.With(berr, resp.Hints[i])
	}
	return &brokerError{err: berr, code: resp.Code}
}
