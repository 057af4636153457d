package reconcile

import (
	"fmt"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/proc"
	"github.com/nousresearch/hermes-s6/internal/rundir"
)

// BootFile is the record the boot reconcile leaves under the runtime
// directory when it has run: which boot it belongs to, and whether it
// failed. health reads it so that a container whose cont-init hook has not
// finished (no slots yet: nothing to find wrong) is not called healthy, and
// one whose hook failed says so.
//
// A boot is named by PID 1's start time (proc.StartTime): a
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
	return rundir.Write(dir, BootFile, []byte(rec))
}

// ReadBoot reads the record WriteBoot wrote. No record is a zero Boot (not
// this boot's), without error.
func ReadBoot(dir string) (Boot, error) {
	b, err := rundir.Read(dir, BootFile, maxBootRecord)
	if err != nil || b == nil {
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

// bootID is PID 1's start time: it names this boot.
func bootID() (string, error) {
	id, err := proc.StartTime(1)
	if err != nil {
		return "", fmt.Errorf("name this boot: %w", err)
	}
	return id, nil
}
