// Package lock serialises hermes-s6 commands on one slot with flock(2) on a
// dot-named file in the scandir (s6-svscan ignores dot-names). The kernel
// drops the lock when its holder dies, so a killed command never leaves a
// slot locked.
package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/hint"
)

// ErrBusy is wrapped when the lock was not had within the timeout.
var ErrBusy = errors.New("slot is busy")

// Prefix starts every lock file's name.
const Prefix = ".hermes-s6-lock."

// Path is the lock file of slot name in scandir.
func Path(scandir, name string) string { return filepath.Join(scandir, Prefix+name) }

// Options tune Acquire.
type Options struct {
	Timeout time.Duration
	// NoticeAfter is how long to wait quietly before calling Notice.
	NoticeAfter time.Duration
	Notice      func(path string)
	// GID, when set (≥ 0: root sets it to the service account's group),
	// may read a lock file root owns, so the service account can take the
	// lock too. UID is unused (kept for callers); the file stays root's.
	UID, GID int
	// Root is whether the caller is root (no point advising it to be).
	Root bool
}

// Acquire takes the exclusive lock on path, polling until opts.Timeout.
// The returned func releases it.
func Acquire(ctx context.Context, path string, opts Options) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o664)
	if errors.Is(err, os.ErrPermission) {
		// flock needs no write access: a lock file another account made
		// is still ours to lock when we may read it.
		if ro, rerr := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0); rerr == nil {
			f, err = ro, nil
		}
	}
	switch {
	case errors.Is(err, syscall.EROFS):
		return nil, hint.With(fmt.Errorf("lock %s: %w", path, err),
			"the scandir is on a read-only filesystem, for root too: s6-overlay needs /run writable (docker run --tmpfs /run; with --read-only also -e S6_READ_ONLY_ROOT=1)")
	case err != nil && opts.Root:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	case err != nil:
		return nil, hint.With(fmt.Errorf("lock %s: %w", path, err),
			"run as root, or as the service account the boot reconcile prepared the scandir for")
	}
	if opts.GID >= 0 {
		// Root lets the service account's group read a lock file it owns,
		// so the account can take the lock too (flock needs no write
		// access), and nothing more (best effort).
		if fi, err := f.Stat(); err == nil && fi.Sys().(*syscall.Stat_t).Uid == 0 {
			f.Chown(0, opts.GID)
			f.Chmod(0o640)
		}
	}
	start := time.Now()
	noticed := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		waited := time.Since(start)
		if !noticed && opts.Notice != nil && waited >= opts.NoticeAfter {
			opts.Notice(path)
			noticed = true
		}
		if waited >= opts.Timeout {
			f.Close()
			return nil, hint.With(fmt.Errorf("%w: another hermes-s6 command held %s for %s", ErrBusy, path, opts.Timeout.Round(time.Millisecond)),
				"wait for it to finish and try again, or raise --timeout")
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, context.Cause(ctx))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// NoticeAfter is how long a command waits on a busy slot before saying so.
const NoticeAfter = time.Second

// Slot takes the lock of slot name in scandir the way every hermes-s6
// command does: a lock file that the service account can take too (root
// hands a lock file it creates to it), and a warning on log once the wait
// passes NoticeAfter.
func Slot(ctx context.Context, scandir, name string, timeout time.Duration, id account.Identity, log *slog.Logger) (release func(), err error) {
	uid, gid := -1, -1
	if a := id.DropsTo(); a != nil {
		uid, gid = a.UID, a.GID
	}
	return Acquire(ctx, Path(scandir, name), Options{
		Timeout: timeout, NoticeAfter: NoticeAfter, UID: uid, GID: gid, Root: id.Root(),
		Notice: func(path string) {
			log.Warn("waiting for another hermes-s6 command on this slot", "slot", name, "lock", path)
		},
	})
}
