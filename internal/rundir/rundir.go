// Package rundir keeps root's runtime records: small files under
// $HERMES_S6_RUNTIME_DIR (/run/hermes-s6, root's, on a /run that is fresh
// each boot unless it is a volume) that one hermes-s6 command leaves for
// another — what boot reconcile left out, that it has run, the container's
// id for the loggers. Records are written whole (a rename) and read
// without following a symlink or blocking, a bounded number of bytes.
package rundir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
)

// Env names the directory; Default is where it is without it.
const (
	Env     = "HERMES_S6_RUNTIME_DIR"
	Default = "/run/hermes-s6"
)

// Dir is the runtime directory: $HERMES_S6_RUNTIME_DIR or Default.
func Dir(getenv func(string) string) string {
	if d := getenv(Env); d != "" {
		return d
	}
	return Default
}

// Write replaces record name in dir with data, readable by everyone;
// empty data removes the record.
func Write(dir, name string, data []byte) error {
	p := filepath.Join(dir, name)
	if len(data) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(p, data, 0o644)
}

// Read returns record name in dir, at most max bytes of it; a missing
// record is nil without error.
func Read(dir, name string, max int64) ([]byte, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}
