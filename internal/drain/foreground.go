package drain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/nousresearch/hermes-s6/internal/proc"
	"github.com/nousresearch/hermes-s6/s6"
)

// DefaultForeground is where the shim records a foreground gateway: under
// /run (a fresh tmpfs or container layer each boot), in a directory only
// root may write.
const DefaultForeground = "/run/hermes-s6/foreground"

// EnvForeground moves the record (tests).
const EnvForeground = "HERMES_S6_FOREGROUND_RECORD"

// recordMax caps what is read of a record: "pid starttime\n".
const recordMax = 64

// Record notes the calling process as the foreground gateway, so that the
// stop drain can give it SIGTERM first. The shim calls it just before it
// becomes the gateway (exec keeps the pid). The record holds the pid and
// the process's start time, which tells a recycled pid apart.
func Record(path string) error {
	start, err := proc.StartTime(os.Getpid())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+" "+start+"\n"), 0o644)
}

// process is a recorded foreground gateway that is still running.
type process struct {
	pid   int
	start string
}

// readForeground returns the recorded process when it still runs, nil when
// there is no record or the process is gone. The record is opened without
// following links, as a regular file, and only its first bytes are read.
func readForeground(path string) (*process, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("foreground record: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("foreground record %s is not a regular file: ignored", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, recordMax))
	if err != nil {
		return nil, fmt.Errorf("foreground record: %w", err)
	}
	fields := strings.Fields(string(b))
	pid, perr := 0, error(nil)
	if len(fields) == 2 {
		pid, perr = strconv.Atoi(fields[0])
	}
	if len(fields) != 2 || perr != nil || pid <= 1 {
		return nil, fmt.Errorf("foreground record %s: %q is not \"PID STARTTIME\": ignored", path, bytes.TrimSpace(b))
	}
	p := &process{pid: pid, start: fields[1]}
	if !p.alive() {
		return nil, nil
	}
	return p, nil
}

// alive reports whether the recorded process still runs (not a zombie, and
// not another process that got its pid).
func (p *process) alive() bool {
	state, start, err := proc.Stat(p.pid)
	return err == nil && start == p.start && state != "Z" && state != "X"
}

// signal sends sig to the process if it is still the recorded one.
func (p *process) signal(sig syscall.Signal) error {
	if !p.alive() {
		return os.ErrProcessDone
	}
	return syscall.Kill(p.pid, sig)
}

// waitGone waits until the process has ended or deadline passes, and
// reports whether it ended.
func (p *process) waitGone(ctx context.Context, deadline time.Time) bool {
	return s6.Until(ctx, deadline, "the foreground gateway to exit", func() (bool, error) { return !p.alive(), nil }) == nil
}

// ForegroundPath is where the foreground record is: $HERMES_S6_FOREGROUND_RECORD
// or DefaultForeground.
func ForegroundPath(getenv func(string) string) string {
	if p := getenv(EnvForeground); p != "" {
		return p
	}
	return DefaultForeground
}

// Foreground reports on the foreground gateway recorded at path: recorded
// is false when there is no record, and pid is its pid while it still runs
// (0 once it has ended). Health reads it: a foreground container checks
// its own gateway.
func Foreground(path string) (recorded bool, pid int, err error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	p, err := readForeground(path)
	if err != nil || p == nil {
		return true, 0, err
	}
	return true, p.pid, nil
}
