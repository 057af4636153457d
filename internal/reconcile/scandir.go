package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/slot"
)

// rootWork is the first step of reconcile (docs/reconcile.md), the only
// work root does itself, all of it on the scandir's tmpfs, never on the
// volume: the scandir, .s6-svscan's control FIFO and lock, and every slot
// of hermes-s6's with the files s6 executes or reads in it are root's and
// writable by root only (an earlier version, or an attacker with a
// persistent /run, may have left them to the service account, which could
// then make root run anything). The supervise/ and event/ skeletons keep
// their group: that is how the service account controls its slots. It
// returns one line per change (made or, in a dry run, planned).
func rootWork(scandir string, id account.Identity, dryRun bool) (changes []string, err error) {
	if !id.Root() {
		return nil, nil
	}
	var errs []error
	take := func(p string, follow bool) {
		fi, err := os.Lstat(p)
		if follow && err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// A symlink in a root-owned place: only root made it.
			return
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != 0 {
			changes = append(changes, fmt.Sprintf("chown 0:0 %s (was %d:%d)", p, st.Uid, st.Gid))
			if !dryRun {
				if err := os.Lchown(p, 0, 0); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			mode := fi.Mode()&^fs.ModePerm | perm&^0o022
			changes = append(changes, fmt.Sprintf("chmod %04o %s", mode.Perm(), p))
			if !dryRun {
				if err := os.Chmod(p, mode); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// The scandir itself (a symlink to it is followed: it is root's tmpfs).
	take(scandir, true)
	ctl := filepath.Join(scandir, ".s6-svscan")
	take(ctl, false)
	take(filepath.Join(ctl, "control"), false)
	take(filepath.Join(ctl, "lock"), false)
	if inv, err := slot.Take(scandir); err == nil {
		for _, dir := range inv.Dirs(scandir) {
			for _, p := range []string{"", "run", "finish", "type", "down", "notification-fd", "log", "log/run", "log/type"} {
				take(filepath.Join(dir, p), false)
			}
		}
	}
	return changes, errors.Join(errs...)
}

// leftovers lists the staging and removal directories a crashed hermes-s6
// left in scandir.
func leftovers(scandir string) ([]string, error) {
	inv, err := slot.Take(scandir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(inv.Leftovers))
	for i, n := range inv.Leftovers {
		out[i] = filepath.Join(scandir, n)
	}
	return out, nil
}
