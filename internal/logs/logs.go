// Package logs reads a slot's s6-log directory: the archives s6-log rotated
// out (named @<TAI64N>.s or .u, so their names sort by age) followed by
// current, oldest line first, and can follow current across rotations.
package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Files lists the log files of dir, oldest first: archives, then current.
// A log directory reached through a symlink is refused: it is on the volume,
// where a symlink may point anywhere.
func Files(dir string) ([]string, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("log directory %s is a symlink: refusing to follow it", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, "@") && (strings.HasSuffix(n, ".s") || strings.HasSuffix(n, ".u")) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	if _, err := os.Lstat(filepath.Join(dir, "current")); err == nil {
		out = append(out, filepath.Join(dir, "current"))
	}
	return out, nil
}

// Pos is a place in a log file: its inode and a byte offset. It survives
// rotation, since s6-log renames current and so keeps the inode.
type Pos struct {
	Ino uint64
	Off int64
}

// Print writes the log of dir to w, oldest first; with tail > 0 only the
// last tail lines. It returns where it stopped in current, for Follow.
func Print(w io.Writer, dir string, tail int) (Pos, error) {
	var pos Pos
	files, err := Files(dir)
	if err != nil {
		return pos, err
	}
	var ring []string
	for _, f := range files {
		p, err := eachLine(f, func(line string) error {
			if tail <= 0 {
				_, err := io.WriteString(w, line)
				return err
			}
			ring = append(ring, line)
			if len(ring) > tail {
				ring = ring[1:]
			}
			return nil
		})
		if err != nil {
			return pos, err
		}
		pos = p
	}
	for _, line := range ring {
		if _, err := io.WriteString(w, line); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

func eachLine(path string, fn func(string) error) (Pos, error) {
	var pos Pos
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return pos, nil // rotated away between listing and reading
	}
	if err != nil {
		return pos, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		pos.Ino = fi.Sys().(*syscall.Stat_t).Ino
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		pos.Off += int64(len(line))
		if line != "" {
			if err := fn(line); err != nil {
				return pos, err
			}
		}
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
	}
}

// openAt opens the file of dir holding from (current, or the archive it was
// rotated into) positioned at from.Off; nil when none holds it any more.
// Files are found by inode, not name: s6-log may rename current between a
// listing and an open, and a name would then lead to the wrong file.
func openAt(dir string, from Pos) (*os.File, uint64, error) {
	if from.Ino == 0 {
		return nil, 0, nil
	}
	for attempt := 0; attempt < 10; attempt++ {
		files, err := Files(dir)
		if err != nil {
			return nil, 0, err
		}
		for _, p := range files {
			if inode(p) != from.Ino {
				continue
			}
			f, ino, err := openFile(p, false)
			if errors.Is(err, os.ErrNotExist) || (err == nil && ino != from.Ino) {
				if f != nil {
					f.Close()
				}
				break // renamed under us: list again
			}
			if err != nil {
				return nil, 0, err
			}
			if _, err := f.Seek(from.Off, io.SeekStart); err != nil {
				f.Close()
				return nil, 0, err
			}
			return f, ino, nil
		}
	}
	return nil, 0, nil
}

func inode(p string) uint64 {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Follow copies what is appended to the log after from (as returned by
// Print) to w until ctx ends. s6-log rotates by renaming current to an
// archive and starting a new current; Follow drains the file it reads, then
// moves to the next file in age order (the next archive, or current), so no
// line is lost or repeated even across several rotations between polls. A
// zero from starts at the end of current.
func Follow(ctx context.Context, w io.Writer, dir string, from Pos, poll time.Duration) error {
	f, ino, err := openAt(dir, from)
	if err != nil {
		return err
	}
	if f == nil && from.Ino == 0 {
		if f, ino, err = openFile(filepath.Join(dir, "current"), true); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	drain := func() error {
		for f != nil {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF || n == 0 {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := drain(); err != nil {
			return err
		}
		fi, err := os.Lstat(filepath.Join(dir, "current"))
		onCurrent := err == nil && f != nil && fi.Sys().(*syscall.Stat_t).Ino == ino
		// Between s6-log's rename and its new current there is a moment
		// with no current: wait it out, keeping our place.
		if !onCurrent && err == nil {
			// Rotated away (or current appeared): s6-log no longer writes to
			// the old file, so drain it once more and take the next one.
			if err := drain(); err != nil {
				return err
			}
			next, err := nextIno(dir, ino)
			if err != nil {
				return err
			}
			if next == 0 {
				continue // nothing newer yet
			}
			if f != nil {
				f.Close()
				f = nil
			}
			if f, ino, err = openAt(dir, Pos{Ino: next}); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// nextIno is the inode of the log file after the one with inode ino, in age
// order; current's when ino is not found (or is 0), 0 when there is none.
func nextIno(dir string, ino uint64) (uint64, error) {
	files, err := Files(dir)
	if err != nil {
		return 0, err
	}
	for i, p := range files {
		if inode(p) == ino {
			if i+1 < len(files) {
				return inode(files[i+1]), nil
			}
			return 0, nil
		}
	}
	return inode(filepath.Join(dir, "current")), nil
}

func openFile(p string, atEnd bool) (*os.File, uint64, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, err
	}
	if atEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Sys().(*syscall.Stat_t).Ino, nil
}
