package slot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
)

// RunStateFile is the file a slot's run and finish scripts keep its crash
// backoff in (templates/run.tmpl, templates/finish.tmpl): one line,
// "started died deaths delay" — when run last let the program start and
// when it last died (epoch seconds), the quick deaths in a row, and the
// seconds run waits before the next start (0 once it has started).
const RunStateFile = "run-state"

// RunState is a slot's ./run-state.
type RunState struct {
	Started, Died time.Time
	Deaths        int
	Delay         time.Duration
}

// Waiting reports whether a run script with this state is waiting out its
// backoff: s6 sees the slot up, but the program has not started.
func (r RunState) Waiting() bool { return r.Delay > 0 }

// NextTry is how long until the program starts again, at now.
func (r RunState) NextTry(now time.Time) time.Duration {
	d := r.Died.Add(r.Delay).Sub(now)
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

// ReadRunState reads dir's run-state. ok is false when there is none: no
// run of the slot has started since it was installed. A file that does
// not parse reads as a zero state with ok true (a run has started). It
// never follows a symlink nor blocks on a FIFO, and reads 128 bytes at
// most: a status command must not hang on a slot directory.
func ReadRunState(dir string) (rs RunState, ok bool) {
	f, err := os.OpenFile(filepath.Join(dir, RunStateFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return rs, false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 128))
	n := make([]int64, 0, 4)
	for _, w := range bytes.Fields(b) {
		v, err := strconv.ParseInt(string(w), 10, 64)
		if err != nil || v < 0 {
			return RunState{}, true
		}
		n = append(n, v)
	}
	if len(n) != 4 {
		return RunState{}, true
	}
	return RunState{Started: time.Unix(n[0], 0), Died: time.Unix(n[1], 0), Deaths: int(n[2]), Delay: time.Duration(n[3]) * time.Second}, true
}

// ResetBackoff clears dir's crash backoff, so the next start does not
// wait: start and restart call it before they ask s6 for the slot, where
// they may write the slot directory (root, or the account that owns a
// non-root tree). A run script already waiting is not affected; s6-svc -d
// ends that wait.
func ResetBackoff(dir string) error {
	rs, ok := ReadRunState(dir)
	if !ok || (rs.Deaths == 0 && rs.Delay == 0) {
		return nil
	}
	line := fmt.Sprintf("%d %d 0 0\n", rs.Started.Unix(), rs.Died.Unix())
	return renameio.WriteFile(filepath.Join(dir, RunStateFile), []byte(line), 0o644)
}
