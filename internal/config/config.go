// Package config is hermes-s6's configuration once it has been read: the
// Env every part below the CLI works from, and the table of every
// environment variable hermes-s6 reads (Vars), which docs/environment.md
// is checked against.
//
// The CLI binds flags and environment into an Env once per command; the
// packages that do the work (control, reconcile, doctor, drain) embed it
// and never read flags, the environment or the process's identity
// themselves.
package config

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shard"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// Env is where hermes-s6 runs and how.
type Env struct {
	// Layout is the data volume (HERMES_HOME) and the scandir.
	Layout profile.Layout
	// Tools runs the s6 tools of the tree that supervises the scandir.
	Tools s6.Tools
	// Slot is the render template of every slot: Kind, Profile, Down and
	// the dashboard fields are set per slot.
	Slot render.Config
	// Identity is who runs and who the gateways run as.
	Identity account.Identity
	// Getenv reads the (container) environment.
	Getenv func(string) string
	// Log gets structured warnings and notices (stderr).
	Log *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// Selection is which profiles this container supervises (all when
	// zero).
	Selection shard.Selection
}

// Defaults fills what a caller (typically a test) left unset: the real
// environment, a discarding logger, the real clock.
func (e *Env) Defaults() {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Log == nil {
		e.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.Now == nil {
		e.Now = time.Now
	}
}
