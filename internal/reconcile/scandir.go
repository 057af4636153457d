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

// svscanDirMode makes .s6-svscan traversable for the service account, so
// it can reach control; s6 2.11 creates the directory 0700.
const svscanDirMode = 0o711

// rootWork is the first step of reconcile (docs/reconcile.md), the only work root does itself: the scandir and
// s6-svscan's control FIFO and lock become the service account's, and
// .s6-svscan traversable; nothing else is changed and nothing recursively.
// Every path here is on the scandir's tmpfs, never on the volume.
// It returns one line per change (made or, in a dry run, planned).
func rootWork(scandir string, id account.Identity, dryRun bool) (changes []string, err error) {
	svc := id.DropsTo()
	if svc == nil {
		return nil, nil
	}
	var errs []error
	chown := func(p string, follow bool) {
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
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && int(st.Uid) == svc.UID && int(st.Gid) == svc.GID {
			return
		}
		changes = append(changes, fmt.Sprintf("chown %d:%d (%s) %s", svc.UID, svc.GID, svc.Name, p))
		if dryRun {
			return
		}
		if follow {
			err = os.Chown(p, svc.UID, svc.GID)
		} else {
			err = os.Lchown(p, svc.UID, svc.GID)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// The scandir itself (a symlink to it is followed: it is root's tmpfs),
	// so the account can create and rename slots in it.
	chown(scandir, true)
	ctl := filepath.Join(scandir, ".s6-svscan")
	fi, err := os.Lstat(ctl)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No s6-svscan has run here yet; it creates .s6-svscan itself.
	case err != nil:
		errs = append(errs, err)
	case !fi.IsDir():
		errs = append(errs, fmt.Errorf("%s is not a directory", ctl))
	default:
		if fi.Mode().Perm()&0o011 != 0o011 {
			mode := fi.Mode().Perm() | svscanDirMode
			changes = append(changes, fmt.Sprintf("chmod %04o %s", mode, ctl))
			if !dryRun {
				if err := os.Chmod(ctl, mode); err != nil {
					errs = append(errs, err)
				}
			}
		}
		chown(filepath.Join(ctl, "control"), false)
		chown(filepath.Join(ctl, "lock"), false)
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
