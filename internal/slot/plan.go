package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nousresearch/hermes-s6/render"
)

// Plan reports what Install would do with s and the same options, writing
// nothing: Created for a slot that does not exist yet, Updated when some
// file would be replaced or the down file added or removed, else Unchanged.
func Plan(scandir string, s *render.Slot, o Options) (Result, error) {
	dir := filepath.Join(scandir, s.Name)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Created, nil
	case err != nil:
		return Unchanged, fmt.Errorf("plan slot %s: %w", s.Name, err)
	case !fi.IsDir():
		return Unchanged, fmt.Errorf("plan slot %s: %s exists and is not a directory", s.Name, dir)
	}
	for _, f := range s.Files {
		if f.Path == "down" && !o.SyncDown {
			continue
		}
		if !same(filepath.Join(dir, filepath.FromSlash(f.Path)), f) {
			return Updated, nil
		}
	}
	if o.SyncDown && s.File("down") == nil {
		if _, err := os.Lstat(filepath.Join(dir, "down")); err == nil {
			return Updated, nil
		}
	}
	return Unchanged, nil
}
