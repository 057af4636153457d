package doctor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/templates"
)

// ident is a user as the kernel checks it: uid, primary and supplementary
// groups.
type ident struct {
	name   string
	uid    int
	gid    int
	groups []int
}

func (i *ident) String() string { return fmt.Sprintf("%s (%d:%d)", i.name, i.uid, i.gid) }

// owner is the uid:gid argument of a chown fix.
func (i *ident) owner() string { return fmt.Sprintf("%d:%d", i.uid, i.gid) }

func accountIdent(a *account.Account) *ident {
	return &ident{name: a.Name, uid: a.UID, gid: a.GID, groups: a.GroupList()}
}

// service is the non-root service account, nil when there is none.
func (e *Env) service() *ident {
	if a := e.Identity.Service; a != nil && a.UID != 0 {
		return accountIdent(a)
	}
	return nil
}

// controller is the non-root account that sends control commands to the
// slots, nil when only root does (Identity.Controller, who the supervise
// skeleton is for): the caller when it is not root, else the service
// account.
func (e *Env) controller() *ident {
	if a := e.Identity.Controller(); a != nil {
		return accountIdent(a)
	}
	return nil
}

// runner is who writes on the volume and runs s6-log: the service account,
// else the caller (nil when that is root: it may do anything).
func (e *Env) runner() *ident {
	if s := e.service(); s != nil {
		return s
	}
	if !e.Identity.Root() {
		return accountIdent(&e.Identity.Self)
	}
	return nil
}

// Access bits, as in a mode's rwx triplets.
const (
	rBit = 4
	wBit = 2
	xBit = 1
)

// can reports whether who may access the file fi describes with want
// (r|w|x bits), by the mode bits as the kernel applies them (ACLs aside).
func can(fi fs.FileInfo, who *ident, want uint32) bool {
	if who == nil || who.uid == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := uint32(fi.Mode().Perm())
	var bits uint32
	switch {
	case int(st.Uid) == who.uid:
		bits = perm >> 6
	case slices.Contains(who.groups, int(st.Gid)):
		bits = perm >> 3
	default:
		bits = perm
	}
	return bits&7&want == want
}

// ownerOf returns the uid and gid of fi.
func ownerOf(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// modeBits is fi's permission and special bits as chmod takes them.
func modeBits(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// describe is "owner U:G mode 0MMM" of fi.
func describe(fi fs.FileInfo) string {
	u, g := ownerOf(fi)
	return fmt.Sprintf("owner %d:%d mode %04o", u, g, modeBits(fi))
}

// q shell-quotes a word for a fix line.
func q(s string) string { return templates.Quote(s) }

// errNotFollowed is why a symlink on the volume was not opened.
var errNotFollowed = errors.New("a symlink, not followed")

// safeOpen opens a regular file on the volume read-only: never through a
// symlink (lstat first, then O_NOFOLLOW), never anything that is not a
// regular file (a FIFO or a device planted there could block or act on
// open), and only the file lstat saw.
func safeOpen(p string) (*os.File, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &os.PathError{Op: "open", Path: p, Err: errNotFollowed}
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: p, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("replaced while being opened")}
	}
	return f, nil
}

// readRegular reads at most limit bytes of a regular file (see safeOpen).
func readRegular(p string, limit int64) ([]byte, error) {
	f, err := safeOpen(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// fOFDGetlk is F_OFD_GETLK (Linux, every architecture): unlike F_GETLK it
// also sees locks this process holds, and it reports any holder's pid.
const fOFDGetlk = 36

// lockHolder reports whether some process holds a POSIX lock on the file
// at p (s6-log locks its `lock` file with fcntl), and its pid (0 when not
// visible from here, -1 for an OFD lock). The file is opened read-only,
// never followed through a symlink; nothing is locked.
func lockHolder(p string) (held bool, pid int, err error) {
	f, err := safeOpen(p)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), fOFDGetlk, &lk); err != nil {
		return false, 0, &os.PathError{Op: "fcntl F_OFD_GETLK", Path: p, Err: err}
	}
	if lk.Type == syscall.F_UNLCK {
		return false, 0, nil
	}
	return true, int(lk.Pid), nil
}
