// Package doctor is `hermes-s6 doctor`: it looks at everything hermes-s6
// depends on and reports each problem with a fix an operator can paste.
// It changes nothing: it stats, lists, reads state files, asks whether a
// supervisor listens on a control FIFO (an O_NONBLOCK open for writing that
// sends nothing), asks whether an s6-log lock is held (F_OFD_GETLK) and runs
// s6-svstat and s6-svdt. On the volume it never follows a symlink (lstat,
// O_NOFOLLOW) and never opens anything but a regular file.
//
// # Checks
//
// Each check is a small function that returns findings; a check with
// nothing to report returns one "ok" finding saying what it saw.
//
//   - s6-tools: s6-svc, s6-svstat, s6-svscanctl, s6-svwait, s6-log and
//     s6-setuidgid resolve in --s6-bin, or on PATH when it is empty (a host
//     without /command is fine); s6-permafailon (only --crash-limit uses it)
//     is a warning; tools from elsewhere while /command exists are a warning
//     (always call the tools of the s6 that runs the tree).
//   - s6-detect: what the shim sees ($HERMES_S6_PROC/1/comm is s6-svscan and
//     $HERMES_S6_BASEDIR is a directory). Not detected is a warning: outside
//     a container it is expected, inside one `gateway run` runs unsupervised.
//   - account: the service account (--account) resolves. As root a missing
//     account fails (run scripts would loop in s6-setuidgid).
//   - home: HERMES_HOME exists, is a directory and the service account can
//     write it.
//   - scandir: the scan directory exists, is a directory and the account
//     that sends control commands can create slots in it.
//   - s6-svscan: an s6-svscan listens on the scandir; .s6-svscan is
//     traversable (0711) and its control FIFO and lock belong to that
//     account, as the boot reconcile leaves them.
//   - leftovers: staging and removal directories of a crashed hermes-s6,
//     older than LeftoverAge (younger ones may belong to a command at work).
//   - supervise: each slot's (and its logger's) directory, supervise/,
//     supervise/control and event/ let a non-root controller work
//     (0755, 0755, FIFO 0660, 03730, owned by it: the supervise skeleton).
//   - log-dir: $HERMES_HOME/logs/gateways/P and logs/dashboard are no
//     symlinks (nor are logs/ and logs/gateways/), are directories, and the
//     service account (which runs s6-log) owns and can write them.
//   - log-lock: a `lock` file in a log dir that no process holds while the
//     slot's logger is down is stale; one held by any process but the
//     slot's logger belongs to someone else (another container on the same
//     volume?). What may be a logger restart is looked at again for up to
//     Recheck before it is reported.
//   - logger: every supervised slot's logger runs; a dead logger stops the
//     gateway's output once the pipe fills.
//   - state: each profile's gateway_state.json parses (default at
//     HERMES_HOME, named ones under profiles/P).
//   - drift: desired running but s6 does not want it up (or it has been
//     down for Settle), desired stopped (or none recorded) but up; a down
//     file that disagrees with the desired state; slots s6-svscan has not
//     picked up. The dashboard slot is held to HERMES_DASHBOARD.
//   - crash-loop: a slot s6 wants up whose death tally (s6-svdt) holds
//     CrashLoopDeaths deaths within CrashLoopWindow and which has not
//     stayed up for that long since: s6 restarts it every second, so it
//     is rarely seen down.
//   - profiles: every profile (default, and each profiles/P with SOUL.md)
//     has a slot, unless this is a dashboard container; directories under
//     profiles/ that can never be profiles.
//   - slots: every gateway slot belongs to a profile that exists; the
//     scandir stays under 80 % of what s6-svscan supervises by default.
//
// # Severity and exit status
//
// fail means something does not work now or will not at the next start;
// warn means something is off but nothing breaks. `hermes-s6 doctor` exits
// 0 when no finding is a fail and 1 otherwise.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/s6"
)

// Severity grades a finding.
type Severity string

const (
	OK   Severity = "ok"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Finding is one thing a check saw.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Problem says what is wrong (for ok: what was checked).
	Problem string `json:"problem"`
	// Fix is a shell line that resolves the problem, pasteable as it is:
	// commands, then optionally "  # a note"; where no command can do it,
	// the whole line is a "# instruction". Empty for ok.
	Fix string `json:"fix,omitempty"`
}

// Check names, as printed.
const (
	CheckTools     = "s6-tools"
	CheckDetect    = "s6-detect"
	CheckAccount   = "account"
	CheckHome      = "home"
	CheckScandir   = "scandir"
	CheckSvscan    = "s6-svscan"
	CheckLeftovers = "leftovers"
	CheckSupervise = "supervise"
	CheckLogDir    = "log-dir"
	CheckLogLock   = "log-lock"
	CheckLogger    = "logger"
	CheckState     = "state"
	CheckDrift     = "drift"
	CheckCrashLoop = "crash-loop"
	CheckProfiles  = "profiles"
	CheckSlots     = "slots"
)

// Settle is how long a slot (or logger) s6 wants up may stay down before
// it counts as failing rather than restarting.
const Settle = 10 * time.Second

// LeftoverAge is the age from which a staging or removal directory is a
// leftover rather than the work of a running command.
const LeftoverAge = 2 * time.Minute

// Recheck is how long doctor looks again at what may be a passing moment
// (a logger s6 restarts is down for a second) before reporting it.
const Recheck = 2 * time.Second

// Env is what doctor looks at: the shared Env (its Identity.Service is
// AccountName resolved; nil when there is none or it did not resolve) and
// what only doctor needs.
type Env struct {
	config.Env
	// AccountName is --account; "" means no service account.
	AccountName string
	// AccountErr says why AccountName did not resolve.
	AccountErr error
	// ProcRoot and Basedir are the s6 detection roots ("" for /proc and
	// /run/s6/basedir).
	ProcRoot, Basedir string
	// Status reads a service directory's state (Tools.Status when nil).
	Status func(ctx context.Context, dir string) (s6.Status, error)
	// Deaths reads a service directory's death tally (Tools.Deaths when
	// nil).
	Deaths func(ctx context.Context, dir string) ([]s6.Death, error)

	// recheck is how long a finding that may be a passing moment is
	// looked at again before it is reported (Recheck unless set).
	recheck  time.Duration
	tree     *error                  // s6.TreeRunning, asked once
	statuses map[string]statusResult // Status by directory, asked once
}

func (e *Env) defaults() {
	e.Env.Defaults()
	if e.Status == nil {
		e.Status = e.Tools.Status
	}
	if e.Deaths == nil {
		e.Deaths = e.Tools.Deaths
	}
	if e.ProcRoot == "" {
		e.ProcRoot = shim.DefaultProc
	}
	if e.Basedir == "" {
		e.Basedir = shim.DefaultBasedir
	}
}

// settle calls ok until it reports true or an error, or until the recheck
// time has passed; it returns the last error. What ok saw last stays in
// the caller's variables.
func (e *Env) settle(ctx context.Context, ok func() (bool, error)) error {
	wait := e.recheck
	if wait == 0 {
		wait = Recheck
	}
	if wait < 0 {
		_, err := ok()
		return err
	}
	err := s6.Until(ctx, time.Now().Add(wait), "a finding to settle", ok)
	if errors.Is(err, s6.ErrTimeout) || ctx.Err() != nil {
		return nil // still there: a finding, not a failure of doctor
	}
	return err
}

// treeErr is s6.TreeRunning of the scandir, asked once per run.
func (e *Env) treeErr() error {
	if e.tree == nil {
		err := s6.TreeRunning(e.Layout.Scandir)
		e.tree = &err
	}
	return *e.tree
}

// checks run in this order; the output follows it.
var checks = []func(context.Context, *Env) []Finding{
	checkTools,
	checkDetect,
	checkAccount,
	checkHome,
	checkScandir,
	checkSvscan,
	checkLeftovers,
	checkSupervise,
	checkLogDirs,
	checkLogLocks,
	checkLoggers,
	checkState,
	checkDrift,
	checkCrashLoops,
	checkProfiles,
	checkSlots,
}

// Run runs every check and returns the findings in check order.
func Run(ctx context.Context, e Env) []Finding {
	e.defaults()
	var out []Finding
	for _, c := range checks {
		out = append(out, c(ctx, &e)...)
	}
	return out
}

// Failed reports whether any finding is a fail.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Fail {
			return true
		}
	}
	return false
}

// Counts tallies findings by severity.
func Counts(fs []Finding) (ok, warn, fail int) {
	for _, f := range fs {
		switch f.Severity {
		case OK:
			ok++
		case Warn:
			warn++
		case Fail:
			fail++
		}
	}
	return ok, warn, fail
}

var label = map[Severity]string{OK: "ok", Warn: "warn", Fail: "FAIL"}

// Print writes one line per finding (`ok|warn|FAIL  check: problem`, then
// `      fix: …` when there is one) and a summary line.
func Print(w io.Writer, fs []Finding) error {
	for _, f := range fs {
		if _, err := fmt.Fprintf(w, "%-4s  %s: %s\n", label[f.Severity], f.Check, f.Problem); err != nil {
			return err
		}
		if f.Fix != "" {
			if _, err := fmt.Fprintf(w, "      fix: %s\n", f.Fix); err != nil {
				return err
			}
		}
	}
	ok, warn, fail := Counts(fs)
	verdict := "nothing breaks operation"
	if fail > 0 {
		verdict = "operation is broken: fix the FAIL lines"
	}
	_, err := fmt.Fprintf(w, "doctor: %d ok, %d warn, %d FAIL: %s\n", ok, warn, fail, verdict)
	return err
}

// Report is the JSON form of a run.
type Report struct {
	// OK is true when no finding is a fail (exit status 0).
	OK       bool      `json:"ok"`
	Counts   Tally     `json:"counts"`
	Findings []Finding `json:"findings"`
}

// Tally counts findings by severity.
type Tally struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// PrintJSON writes the findings as one indented JSON Report.
func PrintJSON(w io.Writer, fs []Finding) error {
	r := Report{OK: !Failed(fs), Findings: fs}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	r.Counts.OK, r.Counts.Warn, r.Counts.Fail = Counts(fs)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// report collects one check's findings.
type report struct {
	check string
	found []Finding
}

func (r *report) add(s Severity, problem, fix string) {
	r.found = append(r.found, Finding{Check: r.check, Severity: s, Problem: problem, Fix: fix})
}

func (r *report) ok(problem string)        { r.add(OK, problem, "") }
func (r *report) warn(problem, fix string) { r.add(Warn, problem, fix) }
func (r *report) fail(problem, fix string) { r.add(Fail, problem, fix) }

// done returns the findings, or one ok finding saying what was checked.
func (r *report) done(okProblem string) []Finding {
	if len(r.found) == 0 {
		r.ok(okProblem)
	}
	return r.found
}

// note is a fix that no command can carry out: a shell comment.
func note(s string) string { return "# " + s }

// asRoot is the fix for what only root can see.
var asRoot = note("run hermes-s6 doctor as root to look at this")

// count is "1 one" or "N many".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
