package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/state"
)

// Volume does the part of reconcile that touches HERMES_HOME. As root with
// a service account it runs in a child process with the account's
// credentials (AsAccount); otherwise in-process (Local).
type Volume interface {
	Scan(ctx context.Context, req ScanRequest) (*ScanReport, error)
	AppendBootLog(ctx context.Context, req BootLogRequest) (*BootLogReport, error)
}

// MigratedFrom is the value of "migrated_from" in a desired state written
// by the legacy migration (docs/reconcile.md: Legacy migration).
const MigratedFrom = "legacy-container-cmd"

// ScanRequest asks for phase 1: the profiles, their desired states, the
// legacy migration and the removal of stale pid files.
type ScanRequest struct {
	Home   string `json:"home"`
	DryRun bool   `json:"dry_run"`
	// Migrate names the profile of a legacy `gateway run` CMD: it gets
	// desired state running when it has no state file at all. "" for none.
	Migrate string `json:"migrate,omitempty"`
	// Live lists profiles whose slot has a running supervisor: their
	// gateway.pid and processes.json may describe a live gateway and stay.
	Live []string `json:"live,omitempty"`
	// Now is the time recorded as updated_at by a migration (epoch seconds).
	Now int64 `json:"now"`
}

// ProfileState is one profile's desired state as read from the volume.
type ProfileState struct {
	Profile string        `json:"profile"`
	Desired state.Desired `json:"desired"`
	// Problem says why the state counts as corrupt (unparseable or
	// unreadable); "" otherwise.
	Problem string `json:"problem,omitempty"`
	// Migrated is set when the legacy migration wrote (or, in a dry run,
	// would write) this profile's desired state.
	Migrated bool `json:"migrated,omitempty"`
}

// ScanReport answers a ScanRequest.
type ScanReport struct {
	// Profiles is default first, then every valid named profile, sorted.
	Profiles []ProfileState    `json:"profiles"`
	Skipped  []profile.Skipped `json:"skipped,omitempty"`
	// NoMigration says why the migration asked for did not happen.
	NoMigration string `json:"no_migration,omitempty"`
	// Removed lists the stale pid files removed (in a dry run: that would be).
	Removed []string `json:"removed,omitempty"`
	// Errors are failures that did not stop the scan (the default profile
	// is always reported; a broken profiles/ directory only loses the
	// named ones).
	Errors []string `json:"errors,omitempty"`
}

// BootLogRequest asks for phase 2: append lines to the boot log.
type BootLogRequest struct {
	Home  string   `json:"home"`
	Lines []string `json:"lines"`
}

// BootLogReport answers a BootLogRequest.
type BootLogReport struct {
	Path    string `json:"path"`
	Rotated bool   `json:"rotated,omitempty"`
}

// Local does the volume work in the calling process, as its own user.
type Local struct{}

// Scan implements Volume.
func (Local) Scan(_ context.Context, req ScanRequest) (*ScanReport, error) {
	return scan(req)
}

// AppendBootLog implements Volume.
func (Local) AppendBootLog(_ context.Context, req BootLogRequest) (*BootLogReport, error) {
	return appendBootLog(req)
}

// Stale files a gateway leaves in its profile directory: after a container
// restart they name processes of another pid namespace (docs/reconcile.md).
var staleFiles = []string{"gateway.pid", "processes.json"}

func scan(req ScanRequest) (*ScanReport, error) {
	if !filepath.IsAbs(req.Home) {
		return nil, fmt.Errorf("home %q: want an absolute path", req.Home)
	}
	l := profile.Layout{Home: req.Home}
	rep := &ScanReport{}
	names, skipped, err := l.Scan()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Skipped = skipped
	live := map[string]bool{}
	for _, p := range req.Live {
		live[p] = true
	}
	for _, p := range append([]string{profile.Default}, names...) {
		ps := ProfileState{Profile: p}
		f, err := state.Read(l.Home, l.StateRel(p))
		switch {
		case err != nil:
			ps.Desired, ps.Problem = state.Corrupt, err.Error()
		default:
			ps.Desired = f.Desired
			if f.Problem != nil {
				ps.Problem = f.Problem.Error()
			}
		}
		if req.Migrate == p {
			migrated, why, err := migrate(l.StateFile(p), req)
			switch {
			case err != nil:
				rep.Errors = append(rep.Errors, err.Error())
			case migrated:
				ps.Desired, ps.Problem, ps.Migrated = state.Running, "", true
			default:
				rep.NoMigration = why
			}
		}
		if !live[p] {
			removed, errs := removeStale(l.ProfileDir(p), req.DryRun)
			rep.Removed = append(rep.Removed, removed...)
			rep.Errors = append(rep.Errors, errs...)
		}
		rep.Profiles = append(rep.Profiles, ps)
	}
	if req.Migrate != "" && !hasProfile(rep.Profiles, req.Migrate) {
		rep.NoMigration = fmt.Sprintf("the CMD's profile %q is not a profile on the volume (%s)", req.Migrate, l.ProfileDir(req.Migrate))
	}
	return rep, nil
}

func hasProfile(ps []ProfileState, p string) bool {
	for _, s := range ps {
		if s.Profile == p {
			return true
		}
	}
	return false
}

// migrate writes desired state running with migrated_from when path does
// not exist at all: any file there, even a corrupt or empty one or a
// dangling symlink, is the operator's and stays as it is.
func migrate(path string, req ScanRequest) (done bool, why string, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, path + " exists: the desired state recorded there decides", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, "", fmt.Errorf("legacy migration: %w", err)
	}
	if req.DryRun {
		return true, "", nil
	}
	if _, err := state.Write(filepath.Dir(path), filepath.Base(path), state.Running, map[string]any{"migrated_from": MigratedFrom}, nil, time.Unix(req.Now, 0)); err != nil {
		return false, "", fmt.Errorf("legacy migration: %w", err)
	}
	return true, "", nil
}

// removeStale removes the stale files of one profile directory (regular
// files or symlinks only; a symlink is removed, never followed).
func removeStale(dir string, dryRun bool) (removed, errs []string) {
	for _, n := range staleFiles {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			errs = append(errs, fmt.Sprintf("stale %s: %s is not a regular file, left alone", n, p))
			continue
		}
		if !dryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err.Error())
				continue
			}
		}
		removed = append(removed, p)
	}
	return removed, errs
}

// BootLogMax is the size at which the boot log is rotated to .1 (docs/reconcile.md: The boot log).
const BootLogMax = 256 << 10

// BootLogPath is the boot log under HERMES_HOME.
func BootLogPath(home string) string {
	return filepath.Join(home, "logs", "container-boot.log")
}

// appendBootLog appends lines to the boot log, first rotating a log that
// has reached BootLogMax to .1 (replacing an older .1). The log itself is
// never followed through a symlink. Several containers may share the
// volume: the lines go out in one write on an O_APPEND descriptor, so they
// never interleave with another container's, and the rotation happens
// under an flock of the log, so two containers never both rotate it.
func appendBootLog(req BootLogRequest) (*BootLogReport, error) {
	if !filepath.IsAbs(req.Home) {
		return nil, fmt.Errorf("home %q: want an absolute path", req.Home)
	}
	p := BootLogPath(req.Home)
	rep := &BootLogReport{Path: p}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("boot log: %w", err)
	}
	var b []byte
	for _, l := range req.Lines {
		b = append(append(b, l...), '\n')
	}
	for range 3 {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			return nil, fmt.Errorf("boot log: %w", err)
		}
		again, rotated, err := writeBootLog(f, p, b)
		f.Close() // and with it the flock
		if err != nil {
			return nil, err
		}
		rep.Rotated = rep.Rotated || rotated
		if !again {
			return rep, nil
		}
	}
	return nil, fmt.Errorf("boot log %s: rotated under us again and again", p)
}

// writeBootLog writes b to f, the boot log opened at p, under an flock.
// It writes nothing and asks to be called again on a fresh descriptor when
// it rotated the log first (rotated), or another container just had.
func writeBootLog(f *os.File, p string, b []byte) (again, rotated bool, err error) {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return false, false, fmt.Errorf("boot log %s: lock: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return false, false, fmt.Errorf("boot log %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return false, false, fmt.Errorf("boot log %s is not a regular file", p)
	}
	if now, err := os.Lstat(p); err != nil || !os.SameFile(fi, now) {
		return true, false, nil // rotated by another container: use the new log
	}
	if fi.Size() >= BootLogMax {
		if err := os.Rename(p, p+".1"); err != nil {
			return false, false, fmt.Errorf("boot log: rotate: %w", err)
		}
		return true, true, nil
	}
	if _, err := f.Write(b); err != nil {
		return false, false, fmt.Errorf("boot log %s: %w", p, err)
	}
	return false, false, nil
}
