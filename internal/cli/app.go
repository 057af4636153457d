// Package cli is hermes-s6's command line (README: Commands; docs/lifecycle.md): flags, dispatch and the
// one place where errors become exit codes and `hermes-s6: error:` lines.
//
// Exit codes: 0 ok, 1 failed, 2 bad usage or invalid input, 3 slot not
// registered, 4 no supervision tree at the scandir.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/s6"
)

// Exit codes (README: Commands; docs/lifecycle.md).
const (
	ExitOK            = 0
	ExitFailed        = 1
	ExitUsage         = 2
	ExitNotRegistered = 3
	ExitNoTree        = 4
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// usageError marks bad usage or invalid input (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// ExitCode maps an error from a command to its exit code.
func ExitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u), errors.Is(err, profile.ErrInvalidName), errors.Is(err, profile.ErrNoProfile):
		return ExitUsage
	case errors.Is(err, control.ErrNotRegistered):
		return ExitNotRegistered
	case errors.Is(err, s6.ErrNoTree):
		return ExitNoTree
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitFailed
}

// Main runs hermes-s6 with args (args[0] is the program name) and returns
// the exit code. It never calls os.Exit.
func Main(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(context.Background(), args)
	if err == nil {
		return ExitOK
	}
	var silent silentExit
	if !errors.As(err, &silent) {
		fmt.Fprintf(stderr, "hermes-s6: error: %v\n", err)
		for _, h := range hint.Of(err) {
			fmt.Fprintf(stderr, "hermes-s6: hint: %s\n", h)
		}
	}
	return ExitCode(err)
}

// errInterrupted is the cause of a command stopped by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// interruptible is the Before hook of commands with several steps to
// finish or undo (register, unregister, reconcile, shim) and of logs
// --follow: the first SIGINT or SIGTERM cancels the command's context
// (cause: errInterrupted), so it kills the s6 tool it runs, finishes the
// atomic step it is in, releases its slot lock and says why it stopped
// instead of dying half-way. A second signal takes its default action.
//
// The other commands go without and die of the signal, as s6-svc -wu does:
// status, list and render have nothing to undo, and start, stop and restart
// write the desired state atomically and leave the rest to s6, so a signal
// halfway leaves what an interrupted s6-svc would (the tools they wait in
// share their process group, and end on their own timeout otherwise).
// os/signal costs every process that uses it an extra thread: about 0.4 ms
// of a 6 ms start on a 2-vCPU VM (make bench, row 3).
func interruptible(c *cli.Context) error {
	ctx, cancel := context.WithCancelCause(c.Context)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		signal.Stop(sigs)
		cancel(fmt.Errorf("%w by %s", errInterrupted, signalName(sig)))
	}()
	c.Context = ctx
	return nil
}

// signalName is SIGINT or SIGTERM, as an operator would write it.
func signalName(sig os.Signal) string {
	if sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// silentExit ends a command with a code after it has said all it had to.
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit %d", int(s)) }
func (s silentExit) ExitCode() int { return int(s) }

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("prog", "hermes-s6")
}

func newApp(stdout, stderr io.Writer) *cli.App {
	g := &globalOpts{}
	app := &cli.App{
		Name:                      "hermes-s6",
		Usage:                     "render, install and drive Hermes gateway slots on s6",
		Version:                   Version,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		Flags:                     g.flags(),
		Commands:                  g.commands(),
		EnableBashCompletion:      true,
		DisableSliceFlagSeparator: true,
		HideVersion:               true,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usage(err)
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return hint.With(usage(fmt.Errorf("unknown command %q", c.Args().First())), "run `hermes-s6 help` for the list of commands")
			}
			return hint.With(usage(errNoCommand), "run `hermes-s6 help` for the list of commands")
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	return app
}
