package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// BootFile is the record the boot reconcile leaves under the runtime
// directory when it has run: which boot it belongs to, and whether it
// failed. health reads it so that a container whose cont-init hook has not
// finished (no slots yet: nothing to find wrong) is not called healthy, and
// one whose hook failed says so.
//
// A boot is named by PID 1's start time (field 22 of /proc/1/stat): a
// container restart starts a new PID 1, so a record kept on a /run that
// outlives the container (a volume) reads as another boot's.
const BootFile = "boot"

// maxBootRecord bounds what ReadBoot reads.
const maxBootRecord = 4 << 10

// Boot is what BootFile says.
type Boot struct {
	// This is true when the record belongs to the running container.
	This bool
	// Failed is the boot reconcile's error, "" when it succeeded.
	Failed string
}

// WriteBoot records that the boot reconcile of this boot has finished,
// with its error (nil: it succeeded).
func WriteBoot(dir string, runErr error) error {
	id, err := bootID()
	if err != nil {
		return err
	}
	rec := "pid1-start " + id + "\n"
	if runErr != nil {
		// One line: the record's reader takes the rest of the file as it is.
		rec += "failed " + strings.Join(strings.Fields(runErr.Error()), " ") + "\n"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(filepath.Join(dir, BootFile), []byte(rec), 0o644)
}

// ReadBoot reads the record WriteBoot wrote. No record is a zero Boot (not
// this boot's), without error.
func ReadBoot(dir string) (Boot, error) {
	f, err := os.OpenFile(filepath.Join(dir, BootFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Boot{}, nil
	}
	if err != nil {
		return Boot{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBootRecord))
	if err != nil {
		return Boot{}, err
	}
	id, err := bootID()
	if err != nil {
		return Boot{}, err
	}
	var rec Boot
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "pid1-start":
			rec.This = v == id
		case "failed":
			rec.Failed = v
		}
	}
	return rec, nil
}

// bootID is PID 1's start time in clock ticks after the host booted, as
// /proc/1/stat gives it.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/1/stat")
	if err != nil {
		return "", fmt.Errorf("name this boot: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("name this boot: /proc/1/stat: no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	const starttime = 22 - 3 // field 22; f[0] is field 3
	if len(f) <= starttime {
		return "", fmt.Errorf("name this boot: /proc/1/stat has %d fields", len(f)+2)
	}
	return f[starttime], nil
}
