// Package safefs is how hermes-s6 reads and writes files on the data
// volume when it may run as root. Everything the service account can write
// is hostile (the gateway runs an agent that executes commands as that
// account), so on the volume hermes-s6:
//
//   - walks down from the volume's root one directory at a time with
//     O_NOFOLLOW|O_DIRECTORY: a symlink anywhere below the root is refused,
//     so nothing outside the volume is reached;
//   - opens files relative to the directory it already holds, without
//     following a final symlink, non-blocking (a FIFO cannot hang it), as
//     regular files only, and reads at most a cap (neither /dev/zero nor a
//     1 GB file can exhaust memory);
//   - replaces files by creating a fresh temporary file next to them
//     (O_EXCL|O_NOFOLLOW), owning it to the right account, syncing it and
//     renaming it over the old name: the old entry is replaced, never
//     written through.
//
// The volume's root itself (HERMES_HOME, a mount point in a root-owned
// directory) is trusted; what is below it is not.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
)

// Errors callers tell apart.
var (
	// ErrLink: a symbolic link where a directory or file was expected.
	ErrLink = errors.New("a symbolic link on the data volume")
	// ErrNotRegular: a FIFO, device, socket or directory where a regular
	// file was expected.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooBig: a file larger than the cap of what is read.
	ErrTooBig = errors.New("larger than hermes-s6 reads")
)

// Dir is a directory on the volume, held open.
type Dir struct {
	f    *os.File
	path string // for messages
}

// Path is the directory's path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error { return d.f.Close() }

// OpenDir opens rel (a relative, slash-separated path; "" or "." for base
// itself) below base, one component at a time, refusing symlinks and
// anything that is not a directory. A component that does not exist is
// reported with os.ErrNotExist.
func OpenDir(base, rel string) (*Dir, error) {
	fd, err := syscall.Open(base, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: base, Err: err}
	}
	path := base
	for _, c := range strings.Split(filepath.ToSlash(filepath.Clean(rel)), "/") {
		if c == "." || c == "" {
			continue
		}
		if c == ".." {
			syscall.Close(fd)
			return nil, fmt.Errorf("%s: %q leaves the volume", filepath.Join(base, rel), c)
		}
		path = filepath.Join(path, c)
		next, err := syscall.Openat(fd, c, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		syscall.Close(fd)
		if err != nil {
			return nil, classify(path, err)
		}
		fd = next
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// classify turns an openat failure of a directory into an error that says
// what was there.
func classify(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s: %w: refused", path, ErrLink)
	case errors.Is(err, syscall.ENOTDIR):
		// O_NOFOLLOW|O_DIRECTORY on a symlink gives ENOTDIR on some
		// kernels: look at what it is.
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: %w: refused", path, ErrLink)
		}
		return fmt.Errorf("%s: not a directory", path)
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// ReadFile reads the regular file name in d, at most max bytes: a symlink
// (ErrLink), anything but a regular file (ErrNotRegular) or a larger file
// (ErrTooBig) is refused without reading it. A missing file is
// os.ErrNotExist.
func (d *Dir) ReadFile(name string, max int64) ([]byte, error) {
	b, _, err := d.ReadFileInfo(name, max)
	return b, err
}

// ReadFileInfo is ReadFile that also returns what the opened file's fstat
// said (its modification time, say), refusing what ReadFile refuses.
func (d *Dir) ReadFileInfo(name string, max int64) ([]byte, os.FileInfo, error) {
	path := filepath.Join(d.path, name)
	fd, err := syscall.Openat(int(d.f.Fd()), name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s: %w: not read", path, ErrLink)
		}
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w (%s): not read", path, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes, the cap is %d: not read", path, ErrTooBig, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > max {
		return nil, nil, fmt.Errorf("%s: %w: grew past %d bytes while read", path, ErrTooBig, max)
	}
	return b, fi, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeDevice != 0, m&os.ModeCharDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

var tmpSeq atomic.Uint64

// WriteFile replaces name in d with data: a fresh temporary file in d
// (mode perm, owned by owner when set), synced, then renamed over name.
// Whatever name was (a symlink, a FIFO, a hard link), it is replaced, not
// written through.
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode, owner *account.Account) error {
	path := filepath.Join(d.path, name)
	dirfd := int(d.f.Fd())
	var tmp string
	var fd int
	for {
		tmp = "." + name + ".hermes-s6-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(tmpSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
		var err error
		fd, err = syscall.Openat(dirfd, tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("write %s: %w", path, &os.PathError{Op: "create a temporary file in", Path: d.path, Err: err})
		}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
	fail := func(err error) error {
		f.Close()
		syscall.Unlinkat(dirfd, tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if owner != nil {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return fail(fmt.Errorf("chown to %s: %w", owner.Name, err))
		}
	}
	if err := f.Chmod(perm.Perm()); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		syscall.Unlinkat(dirfd, tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syscall.Renameat(dirfd, tmp, dirfd, name); err != nil {
		syscall.Unlinkat(dirfd, tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := d.f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// Rename renames old to new inside d. The entry itself moves: a symlink is
// not followed.
func (d *Dir) Rename(old, new string) error {
	if err := syscall.Renameat(int(d.f.Fd()), old, int(d.f.Fd()), new); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(d.path, old), New: filepath.Join(d.path, new), Err: err}
	}
	return nil
}
