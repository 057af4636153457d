// Package s6 is hermes-s6's one seam to skarnet's s6: the only package that
// runs s6 tools. It runs the real s6-svc, s6-svstat, s6-svscanctl,
// s6-svwait and s6-svdt of the s6 that runs the tree (s6-overlay's in
// /command, else the ones on PATH), each under a context deadline, and
// reports failures with the shell-quoted argv, the exit code and the tool's
// stderr. Tests replace the fork/exec with Tools.Exec. For many slots at
// once, Statuses runs its s6-svstat from /bin/sh loops (batch.go). (Two
// other execs exist, neither of an s6 tool: the shim becomes the
// container's CMD, and reconcile re-runs hermes-s6 as the service account
// for the volume work.)
//
// Two questions need no tool: whether a supervisor listens on a control
// FIFO (s6's own test, an O_NONBLOCK open for writing), answered by
// Listening, TreeRunning and Supervised.
package s6

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/templates"
)

// OverlayBin is where s6-overlay installs the s6 tools.
const OverlayBin = "/command"

// DefaultBin is OverlayBin when it exists, else "" (look tools up on PATH).
func DefaultBin() string {
	if fi, err := os.Stat(OverlayBin); err == nil && fi.IsDir() {
		return OverlayBin
	}
	return ""
}

// Errors callers map to exit codes.
var (
	// ErrNoTree: no s6-svscan listens on the scandir.
	ErrNoTree = errors.New("no s6 supervision tree")
	// ErrToolMissing: an s6 tool is not installed where it was looked for.
	ErrToolMissing = errors.New("s6 tool not found")
	// ErrTimeout: a waited-for state was not reached in time.
	ErrTimeout = errors.New("timed out")
)

// Tools runs the s6 tools found in Dir, or on PATH when Dir is "".
type Tools struct {
	Dir string
	// Exec, when set, runs argv instead of a real fork/exec: the seam
	// where tests put a fake s6 to see what hermes-s6 asks of it and in
	// which order. It returns the tool's stdout, stderr and exit code.
	Exec func(ctx context.Context, argv []string) (stdout, stderr []byte, code int, err error)
}

// Path resolves a tool to the file that will be executed.
func (t Tools) Path(name string) (string, error) {
	if t.Dir == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", hint.With(fmt.Errorf("%w: %s is not on PATH", ErrToolMissing, name),
				"install s6 (Debian: apt-get install s6 execline) or point --s6-bin / HERMES_S6_BIN at the directory of the s6 that runs the tree")
		}
		return p, nil
	}
	p := filepath.Join(t.Dir, name)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", hint.With(fmt.Errorf("%w: %s is not an executable file", ErrToolMissing, p),
			"point --s6-bin / HERMES_S6_BIN at the directory holding the s6 tools of the running tree")
	}
	return p, nil
}

// ExitError is a tool that ran and failed.
type ExitError struct {
	Argv   []string
	Code   int // -1 when killed by a signal or by the context
	Stderr string
	// Cause is why hermes-s6 killed the tool (its context's cause), nil
	// when it ended on its own.
	Cause error
}

func (e *ExitError) Error() string {
	q := make([]string, len(e.Argv))
	for i, a := range e.Argv {
		q[i] = templates.Quote(a)
	}
	msg := fmt.Sprintf("%s: exit %d", strings.Join(q, " "), e.Code)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	if e.Cause != nil {
		msg += " (stopped: " + e.Cause.Error() + ")"
	}
	return msg
}

func (e *ExitError) Unwrap() error { return e.Cause }

// grace is added to a tool's own timeout for the process deadline, so the
// tool reports its timeout itself rather than being killed.
const grace = 5 * time.Second

// run executes tool with args and returns its stdout.
func (t Tools) run(ctx context.Context, timeout time.Duration, tool string, args ...string) ([]byte, error) {
	p, err := t.Path(tool)
	if err != nil {
		return nil, err
	}
	cancel := context.CancelFunc(func() {})
	if timeout != Forever {
		ctx, cancel = context.WithTimeout(ctx, timeout+grace)
	}
	defer cancel()
	argv := append([]string{p}, args...)
	exec := t.Exec
	if exec == nil {
		exec = func(ctx context.Context, argv []string) ([]byte, []byte, int, error) {
			return spawn(ctx, argv[0], argv)
		}
	}
	stdout, stderr, code, err := exec(ctx, argv)
	if err == nil && code == 0 {
		return stdout, nil
	}
	ee := &ExitError{Argv: argv, Code: code, Stderr: string(stderr)}
	switch {
	case err != nil:
		ee.Stderr = err.Error()
	case ctx.Err() != nil:
		ee.Cause = context.Cause(ctx)
	}
	return stdout, ee
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Listening reports whether a supervisor has the control FIFO at path open
// for reading. It is s6's own liveness test and sends nothing.
func Listening(fifo string) (bool, error) {
	fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
		return true, nil
	}
	switch {
	case errors.Is(err, syscall.ENXIO), errors.Is(err, syscall.ENOENT):
		return false, nil
	}
	return false, &os.PathError{Op: "open", Path: fifo, Err: err}
}

// TreeRunning returns nil when an s6-svscan listens on scandir, else an error
// wrapping ErrNoTree with a hint.
func TreeRunning(scandir string) error {
	if fi, err := os.Stat(scandir); err != nil || !fi.IsDir() {
		what := "does not exist"
		if err == nil {
			what = "is not a directory"
		}
		return hint.With(fmt.Errorf("%w at %s: the scandir %s, so no s6-svscan watches it", ErrNoTree, scandir, what),
			"in the container the scandir is /run/service, made by s6-overlay's /init; elsewhere set --scandir / HERMES_S6_SCANDIR to the directory s6-svscan watches")
	}
	ok, err := Listening(filepath.Join(scandir, ".s6-svscan", "control"))
	if errors.Is(err, os.ErrPermission) {
		// s6-svscan's control FIFO is root's: a non-root caller cannot
		// tell whether it listens, and needs it not (it talks to its
		// slots' supervisors). A tree that is not there shows at the
		// first slot it reaches.
		return nil
	}
	if err != nil {
		return err
	}
	if !ok {
		return hint.With(fmt.Errorf("%w at %s: no s6-svscan is listening on it", ErrNoTree, scandir),
			"in the container, s6-overlay's /init must be PID 1 (use the image's entrypoint); elsewhere start `s6-svscan "+scandir+"` or set --scandir / HERMES_S6_SCANDIR")
	}
	return nil
}

// Supervised reports whether an s6-supervise runs for the service dir and
// has published its status. s6-supervise opens its control FIFO a moment
// before it writes supervise/status, and s6-svc -w… fails on a missing
// status file, so listening alone is not enough.
func Supervised(dir string) (bool, error) {
	ok, err := Listening(filepath.Join(dir, "supervise", "control"))
	if err != nil || !ok {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, "supervise", "status")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// SupervisorGone reports whether no s6-supervise listens on dir any more.
func SupervisorGone(dir string) (bool, error) {
	ok, err := Listening(filepath.Join(dir, "supervise", "control"))
	return !ok, err
}

// Rescan asks s6-svscan to pick up new service directories (s6-svscanctl -a).
func (t Tools) Rescan(ctx context.Context, scandir string) error {
	_, err := t.run(ctx, 0, "s6-svscanctl", "-a", scandir)
	return err
}

// RescanPrune rescans and stops supervisors whose directory is gone (-an).
func (t Tools) RescanPrune(ctx context.Context, scandir string) error {
	_, err := t.run(ctx, 0, "s6-svscanctl", "-an", scandir)
	return err
}

// Wait conditions for Up and Down.
const (
	NoWait  = ""
	WaitUp  = "-wu" // the process is up
	WaitRdy = "-wU" // up and ready (notification-fd)
	WaitDn  = "-wd" // the process is down
	WaitFin = "-wD" // down and ./finish has completed
)

// Up sends s6-svc -u, optionally waiting (up to timeout) for wait.
func (t Tools) Up(ctx context.Context, dir, wait string, timeout time.Duration) error {
	return t.svc(ctx, dir, "-u", wait, timeout)
}

// Down sends s6-svc -d, optionally waiting (up to timeout) for wait.
func (t Tools) Down(ctx context.Context, dir, wait string, timeout time.Duration) error {
	return t.svc(ctx, dir, "-d", wait, timeout)
}

// Once sends s6-svc -o: start now, do not restart when it dies.
func (t Tools) Once(ctx context.Context, dir string) error {
	return t.svc(ctx, dir, "-o", NoWait, 0)
}

func (t Tools) svc(ctx context.Context, dir, cmd, wait string, timeout time.Duration) error {
	if wait == NoWait {
		_, err := t.run(ctx, 0, "s6-svc", cmd, dir)
		return err
	}
	// s6-svwait subscribes to the service's events before it reads its
	// state, so started alongside s6-svc it cannot miss the change,
	// whichever of the two runs first. The wait then costs s6-svwait and
	// its s6-ftrigrd, in parallel with s6-svc, where s6-svc -w… chains
	// three programs (s6-svc, s6-svlisten1, s6-svc) one after the other.
	waited := make(chan error, 1)
	go func() {
		_, err := t.run(ctx, timeout, "s6-svwait", waitFlag[wait], "-t", ms(timeout), dir)
		waited <- err
	}()
	_, err := t.run(ctx, 0, "s6-svc", cmd, dir)
	werr := <-waited
	if err != nil {
		return err
	}
	if timedOut(werr) {
		return fmt.Errorf("%w after %s waiting for %s to be %s: %w", ErrTimeout, timeout, filepath.Base(dir), waitWord[wait], werr)
	}
	return werr
}

// timedOut reports whether err is s6-svwait giving up at its -t timeout:
// exit 99, and "timed out" on stderr (exit 1 in some s6 versions, where 1
// can also count services that failed for good).
func timedOut(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && (ee.Code == 99 || ee.Code == 1 && strings.Contains(ee.Stderr, "timed out"))
}

// waitFlag is the s6-svwait option for each wait condition.
var waitFlag = map[string]string{WaitUp: "-u", WaitRdy: "-U", WaitDn: "-d", WaitFin: "-D"}

var waitWord = map[string]string{WaitUp: "up", WaitRdy: "up and ready", WaitDn: "down", WaitFin: "down with finish done"}

// WaitDown blocks until every service in dirs is down and its finish
// script has completed (s6-svwait -D -a), up to timeout. One s6-svwait
// watches them all, however many there are.
func (t Tools) WaitDown(ctx context.Context, timeout time.Duration, dirs ...string) error {
	args := append([]string{"-D", "-a", "-t", ms(timeout)}, dirs...)
	_, err := t.run(ctx, timeout, "s6-svwait", args...)
	if timedOut(err) {
		what := filepath.Base(dirs[0]) + " to be"
		if len(dirs) > 1 {
			what = fmt.Sprintf("%d services to be", len(dirs))
		}
		return fmt.Errorf("%w after %s waiting for %s down with finish done: %w", ErrTimeout, timeout, what, err)
	}
	return err
}

// WaitReady waits until the service in dir is up and ready (s6-svwait
// -U): a logger that holds its lease, for instance. A timeout of Forever
// leaves the wait to ctx alone; ErrTimeout says it ran out.
func (t Tools) WaitReady(ctx context.Context, timeout time.Duration, dir string) error {
	args := []string{"-U", dir}
	if timeout != Forever {
		args = []string{"-U", "-t", ms(timeout), dir}
	}
	_, err := t.run(ctx, timeout, "s6-svwait", args...)
	if timedOut(err) {
		return fmt.Errorf("%w after %s waiting for %s to be ready: %w", ErrTimeout, timeout, filepath.Base(dir), err)
	}
	return err
}

// Forever, as a wait's timeout, leaves the wait to its context alone.
const Forever time.Duration = -1

// Kill sends s6-svc -k: SIGKILL to the service's process. A service that
// is wanted down stays down.
func (t Tools) Kill(ctx context.Context, dir string) error {
	return t.svc(ctx, dir, "-k", NoWait, 0)
}

// Status is what s6-svstat reports for one service directory.
type Status struct {
	Supervised bool   // an s6-supervise runs for it
	Up         bool   // the process is running
	WantUp     bool   // s6-supervise will restart it when it dies
	NormallyUp bool   // no ./down file
	Ready      bool   // readiness notified (or up, without notification)
	PID        int    // -1 when down
	ExitCode   int    // last exit code, -1 when none (up, or killed); 0 also when it never ran
	Signal     string // signal that killed it last, "" when none
	Seconds    int    // time in the current state
}

// StatusFields is the s6-svstat -o field list Status parses. Field mode is
// stable across s6 versions; the human format is not and is never read.
const StatusFields = "up,wantedup,normallyup,ready,pid,exitcode,signal,updownfor"

// Status reads a service's state with one s6-svstat. An unsupervised
// directory is reported as Supervised false, down, with NormallyUp from its
// down file. s6-svstat says "exit code 0" for a service that has never run
// too: the caller tells the two apart (hermes-s6 slots keep a run-state
// file from their first start on).
func (t Tools) Status(ctx context.Context, dir string) (Status, error) {
	st := Status{PID: -1, ExitCode: -1}
	if ok, err := Supervised(dir); err != nil || !ok {
		_, derr := os.Stat(filepath.Join(dir, "down"))
		st.NormallyUp = errors.Is(derr, os.ErrNotExist)
		return st, err
	}
	out, err := t.run(ctx, 0, "s6-svstat", "-o", StatusFields, dir)
	if err != nil {
		return st, err
	}
	st, err = ParseStatus(string(out))
	if err != nil {
		return st, fmt.Errorf("s6-svstat %s: %w", dir, err)
	}
	st.Supervised = true
	return st, nil
}

// Death is one entry of a service's death tally (s6-svdt).
type Death struct {
	// TAI is when it died, as the TAI64N label s6 wrote: TAI, not UTC (it
	// runs some 37 s ahead), so compare deaths with each other only.
	TAI    time.Time
	Code   int    // the exit code, -1 when a signal killed it
	Signal string // the signal that killed it, "" when it exited
}

// Deaths reads dir's death tally, oldest first: the last deaths of its
// process since s6-supervise started (up to its max-death-tally, 100 by
// default).
func (t Tools) Deaths(ctx context.Context, dir string) ([]Death, error) {
	out, err := t.run(ctx, 0, "s6-svdt", dir)
	if err != nil {
		return nil, err
	}
	return ParseDeaths(string(out))
}

// ParseDeaths reads s6-svdt's output: one "@TAI64N exitcode N" or
// "@TAI64N signal NAME" line per death.
func ParseDeaths(out string) ([]Death, error) {
	var ds []Death
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || len(f[0]) != 25 || f[0][0] != '@' {
			return ds, fmt.Errorf("s6-svdt: unexpected line %q", line)
		}
		secs, err1 := strconv.ParseUint(f[0][1:17], 16, 64)
		nanos, err2 := strconv.ParseUint(f[0][17:], 16, 32)
		if err1 != nil || err2 != nil || secs < 1<<62 || nanos >= 1e9 {
			return ds, fmt.Errorf("s6-svdt: bad TAI64N label in %q", line)
		}
		d := Death{TAI: time.Unix(int64(secs-1<<62), int64(nanos)), Code: -1}
		switch f[1] {
		case "exitcode":
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return ds, fmt.Errorf("s6-svdt: bad exit code in %q", line)
			}
			d.Code = n
		case "signal":
			d.Signal = f[2]
		default:
			return ds, fmt.Errorf("s6-svdt: unexpected line %q", line)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// ParseStatus reads one line of `s6-svstat -o StatusFields`.
func ParseStatus(line string) (Status, error) {
	f := strings.Fields(line)
	if len(f) != 8 {
		return Status{}, fmt.Errorf("want 8 fields (%s), got %q", StatusFields, strings.TrimSpace(line))
	}
	var st Status
	var errs []error
	b := func(s string) bool {
		switch s {
		case "true":
			return true
		case "false":
			return false
		}
		errs = append(errs, fmt.Errorf("not a boolean: %q", s))
		return false
	}
	n := func(s string) int {
		v, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("not a number: %q", s))
		}
		return v
	}
	st.Up, st.WantUp, st.NormallyUp, st.Ready = b(f[0]), b(f[1]), b(f[2]), b(f[3])
	st.PID, st.ExitCode = n(f[4]), n(f[5])
	if f[6] != "NA" {
		st.Signal = f[6]
	}
	st.Seconds = n(f[7])
	return st, errors.Join(errs...)
}
