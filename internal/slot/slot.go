// Package slot installs rendered service directories into an s6 scandir
// without ever exposing a half-written one (docs/lifecycle.md).
//
// A new slot is built complete in a dot-named staging directory inside the
// scandir (s6-svscan ignores dot-names) and renamed into place in one
// rename(2). An existing slot is updated file by file with atomic replaces,
// leaving supervise/, event/ and the running process alone; an unchanged
// slot is not touched at all. Removal renames the slot to a dot-name first,
// so s6-svscan stops seeing it before anything is deleted.
package slot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/render"
)

// Prefixes of the dot-named directories hermes-s6 leaves in a scandir while
// it works. Boot reconcile removes the leftovers of a crash (each under its
// slot's lock, after pruning a removal dir's supervisors).
const (
	StagingPrefix  = ".hermes-s6-staging."
	RemovingPrefix = ".hermes-s6-removing."
)

// Result says what Install did.
type Result int

const (
	Unchanged Result = iota // every file already matched: nothing written
	Created                 // a new slot was renamed into place
	Updated                 // some files of an existing slot were replaced
)

func (r Result) String() string {
	return [...]string{"unchanged", "created", "updated"}[r]
}

// Options tune Install.
type Options struct {
	// Skeleton, when set, pre-creates supervise/ and event/ (service and
	// logger) so that s6-supervise adopts them and this account can
	// control the slot and read its status without root.
	Skeleton *account.Account
	// Root, when set, keeps everything root's: the slot directory, its
	// files, supervise/ and event/; the Skeleton account's primary group
	// gets exactly what s6-svperms -G and -E grant (supervise/ 0710,
	// control 0620, event/ 03730), so it can send up, down and restart,
	// read the status and wait on events, and can write nothing s6
	// executes or reads. Without Root (a non-root caller installing for
	// itself), the skeleton, the slot directory and log/ are the Skeleton
	// account's.
	Root bool
	// SyncDown makes an existing slot's down file match the rendered slot.
	// Without it an existing slot keeps its down file as it is.
	SyncDown bool
}

// Install puts s into scandir.
func Install(scandir string, s *render.Slot, o Options) (Result, error) {
	dir := filepath.Join(scandir, s.Name)
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return update(dir, s, o)
	case err == nil:
		return Unchanged, fmt.Errorf("install slot %s: %s exists and is not a directory", s.Name, dir)
	case !errors.Is(err, fs.ErrNotExist):
		return Unchanged, fmt.Errorf("install slot %s: %w", s.Name, err)
	}
	return create(scandir, dir, s, o)
}

func create(scandir, dir string, s *render.Slot, o Options) (res Result, err error) {
	stage, err := os.MkdirTemp(scandir, StagingPrefix+s.Name+".")
	if err != nil {
		return Unchanged, fmt.Errorf("install slot %s: staging dir: %w", s.Name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o755); err != nil {
		return Unchanged, fmt.Errorf("install slot %s: %w", s.Name, err)
	}
	for _, f := range s.Files {
		if err := writeNew(filepath.Join(stage, filepath.FromSlash(f.Path)), f); err != nil {
			return Unchanged, fmt.Errorf("install slot %s: %w", s.Name, err)
		}
	}
	if o.Skeleton != nil {
		for _, d := range []string{stage, filepath.Join(stage, "log")} {
			if err := skeleton(d, o.Skeleton, o.Root); err != nil {
				return Unchanged, fmt.Errorf("install slot %s: supervise skeleton: %w", s.Name, err)
			}
		}
	}
	if err := syncDir(stage); err != nil {
		return Unchanged, fmt.Errorf("install slot %s: %w", s.Name, err)
	}
	// rename(2) of a directory fails when the target exists: a concurrent
	// creator won, and its slot stays.
	if err := os.Rename(stage, dir); err != nil {
		return Unchanged, fmt.Errorf("install slot %s: %w", s.Name, err)
	}
	return Created, syncDir(scandir)
}

func writeNew(p string, f render.File) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode.Perm())
	if err != nil {
		return err
	}
	if _, err := fh.Write(f.Data); err != nil {
		fh.Close()
		return err
	}
	// The umask may have narrowed the mode at creation.
	if err := fh.Chmod(f.Mode.Perm()); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// skeleton creates dir/supervise, dir/supervise/control (a FIFO) and
// dir/event before s6-supervise runs, as s6-svperms would leave them: with
// root, owned by root with acct's primary group allowed to control
// (supervise/ 0710, control 0620) and to subscribe (event/ 03730); without,
// owned by acct (supervise/ 0755, control 0660), dir itself too, so acct
// may add or remove its down file.
func skeleton(dir string, acct *account.Account, root bool) error {
	sup := filepath.Join(dir, "supervise")
	ev := filepath.Join(dir, "event")
	ctl := filepath.Join(sup, "control")
	if err := os.Mkdir(sup, 0o700); err != nil {
		return err
	}
	if err := syscall.Mkfifo(ctl, 0o600); err != nil {
		return &os.PathError{Op: "mkfifo", Path: ctl, Err: err}
	}
	if err := os.Mkdir(ev, 0o700); err != nil {
		return err
	}
	type part struct {
		p        string
		mode     fs.FileMode
		uid, gid int
	}
	parts := []part{
		{sup, 0o710, 0, acct.GID},
		{ctl, 0o620, 0, acct.GID},
		{ev, 0o730 | fs.ModeSetgid | fs.ModeSticky, 0, acct.GID},
	}
	if !root {
		parts = []part{
			{dir, 0o755, acct.UID, acct.GID},
			{sup, 0o755, acct.UID, acct.GID},
			{ctl, 0o660, acct.UID, acct.GID},
			{ev, 0o730 | fs.ModeSetgid | fs.ModeSticky, acct.UID, acct.GID},
		}
	}
	for _, x := range parts {
		if err := os.Lchown(x.p, x.uid, x.gid); err != nil {
			return err
		}
		if err := os.Chmod(x.p, x.mode); err != nil {
			return err
		}
	}
	return nil
}

func update(dir string, s *render.Slot, o Options) (Result, error) {
	res := Unchanged
	for _, f := range s.Files {
		if f.Path == "down" && !o.SyncDown {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if same(p, f) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return res, fmt.Errorf("update slot %s: %w", s.Name, err)
		}
		if err := replace(p, f); err != nil {
			return res, fmt.Errorf("update slot %s: %w", s.Name, err)
		}
		res = Updated
	}
	if o.SyncDown && s.File("down") == nil {
		err := os.Remove(filepath.Join(dir, "down"))
		switch {
		case err == nil:
			res = Updated
		case !errors.Is(err, fs.ErrNotExist):
			return res, fmt.Errorf("update slot %s: %w", s.Name, err)
		}
	}
	return res, nil
}

func same(p string, f render.File) bool {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != f.Mode.Perm() || fi.Size() != int64(len(f.Data)) {
		return false
	}
	b, err := os.ReadFile(p)
	return err == nil && bytes.Equal(b, f.Data)
}

// replace swaps in a new p atomically. renameio's WriteFile would keep an
// existing file's mode: scripts need theirs fixed, hence static permissions.
func replace(p string, f render.File) error {
	pf, err := renameio.NewPendingFile(p, renameio.WithTempDir(filepath.Dir(p)), renameio.WithStaticPermissions(f.Mode.Perm()))
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	if _, err := pf.Write(f.Data); err != nil {
		return err
	}
	return pf.CloseAtomicallyReplace()
}

// SetDown creates or removes dir/down so the slot's pickup state matches up.
func SetDown(dir string, down bool) error {
	p := filepath.Join(dir, "down")
	if down {
		return replace(p, render.File{Path: "down", Mode: 0o644})
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Hide renames a slot to a dot-name so s6-svscan no longer sees it, and
// returns the new path. Its supervisors keep running until pruned.
func Hide(scandir, name string) (string, error) {
	hidden, err := os.MkdirTemp(scandir, RemovingPrefix+name+".")
	if err != nil {
		return "", err
	}
	// rename(2) replaces an empty directory; os.Rename refuses to, so call
	// the system call directly.
	old := filepath.Join(scandir, name)
	if err := syscall.Rename(old, hidden); err != nil {
		os.Remove(hidden)
		return "", &os.LinkError{Op: "rename", Old: old, New: hidden, Err: err}
	}
	return hidden, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
