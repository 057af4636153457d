package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/lease"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/s6"
)

func checkAccount(_ context.Context, e *Env) []Finding {
	r := report{check: CheckAccount}
	switch {
	case e.AccountName == "":
		return r.done("no service account (HERMES_S6_ACCOUNT empty): gateways and s6-log run as whoever runs the tree")
	case e.Identity.Service == nil:
		why := fmt.Sprintf("service account %q does not resolve", e.AccountName)
		if e.AccountErr != nil {
			why = e.AccountErr.Error()
		}
		fix := fmt.Sprintf("useradd --system --user-group %s  # or export HERMES_S6_ACCOUNT= to run gateways as root", q(e.AccountName))
		if e.Identity.Root() {
			r.fail(why+": as root, register and start refuse to run, and run scripts would loop in s6-setuidgid", fix)
		} else {
			r.warn(why+": a tree run by root could not drop the gateways to it", fix)
		}
		return r.found
	case e.Identity.Service.UID == 0:
		return r.done(fmt.Sprintf("service account %s is root: gateways run as root", e.AccountName))
	}
	return r.done("service account " + accountIdent(e.Identity.Service).String())
}

func checkHome(_ context.Context, e *Env) []Finding {
	r := report{check: CheckHome}
	home := e.Layout.Home
	w := e.runner()
	fi, err := os.Stat(home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fix := "mkdir -p " + q(home)
		if w != nil {
			fix += fmt.Sprintf(" && chown %s %s", w.owner(), q(home))
		}
		r.fail(home+" (HERMES_HOME) does not exist", fix+"  # or point HERMES_HOME (--home) at the data volume")
		return r.found
	case err != nil:
		r.fail(err.Error(), asRoot)
		return r.found
	case !fi.IsDir():
		r.fail(home+" (HERMES_HOME) is not a directory", note("point HERMES_HOME (--home) at the data volume"))
		return r.found
	case !can(fi, w, wBit|xBit):
		r.fail(fmt.Sprintf("%s (%s): %s cannot write HERMES_HOME (desired state, logs)", home, describe(fi), w),
			fmt.Sprintf("chown %s %s", w.owner(), q(home)))
		return r.found
	}
	if w == nil {
		return r.done(home + " is a directory")
	}
	return r.done(fmt.Sprintf("%s is a directory %s can write", home, w))
}

// logComponents are the paths from HERMES_HOME down to a slot's log dir.
func logComponents(home, dir string) []string {
	rel, err := filepath.Rel(home, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return []string{dir}
	}
	var out []string
	cur := home
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		out = append(out, cur)
	}
	return out
}

// restartLogger is the fix fragment that restarts s's logger (-r) and
// wants it up (-u), whether it runs now or not.
func (e *Env) restartLogger(s slotRef) string {
	return fmt.Sprintf("%s -ru %s", e.tool("s6-svc"), q(filepath.Join(s.Dir, "log")))
}

func checkLogDirs(_ context.Context, e *Env) []Finding {
	r := report{check: CheckLogDir}
	w := e.runner()
	seen := map[string]bool{}
	n := 0
	for _, s := range e.slots() {
		dir := s.logDir(e.Layout)
		parts := logComponents(e.Layout.Home, dir)
		for i, p := range parts {
			leaf := i == len(parts)-1
			if seen[p] {
				continue
			}
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				break // the logger creates it when it starts
			}
			seen[p] = true
			if err != nil {
				r.fail(err.Error(), asRoot)
				break
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				r.fail(fmt.Sprintf("%s is a symlink (to %s): log paths on the volume are never followed", p, target),
					fmt.Sprintf("rm -- %s && %s  # to log elsewhere, mount it at %s instead", q(p), e.restartLogger(s), p))
				break
			}
			if !fi.IsDir() {
				r.fail(fmt.Sprintf("%s is a %s, not a directory: %s's s6-log cannot start", p, typeWord(fi), s.Name),
					fmt.Sprintf("mv -- %s %s && %s", q(p), q(p+".not-a-dir"), e.restartLogger(s)))
				break
			}
			need, what := uint32(xBit), "reach the log dir"
			if leaf {
				need, what = wBit|xBit, "write logs there"
			}
			u, _ := ownerOf(fi)
			fix := ""
			if w != nil {
				fix = fmt.Sprintf("chown -h %s %s", w.owner(), q(p))
			}
			switch {
			case !can(fi, w, need):
				r.fail(fmt.Sprintf("%s (%s): %s, which runs s6-log, cannot %s", p, describe(fi), w, what), fix+" && "+e.restartLogger(s))
			case leaf && w != nil && u != w.uid:
				r.warn(fmt.Sprintf("%s (%s) is not %s's, who runs s6-log", p, describe(fi), w), fix)
			}
			if leaf {
				n++
				logFileFindings(&r, e, s, dir, w)
			}
		}
	}
	return r.done(count(n, "log directory", "log directories") + ": no symlinks, writable by whoever runs s6-log")
}

// logFileFindings checks the files s6-log rewrites in dir (lock is
// log-lock's).
func logFileFindings(r *report, e *Env, s slotRef, dir string, w *ident) {
	for _, n := range []string{"current", "state"} {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			r.fail(err.Error(), asRoot)
		case !fi.Mode().IsRegular():
			r.fail(fmt.Sprintf("%s is a %s, not a regular file: never followed, and s6-log cannot use it", p, typeWord(fi)),
				fmt.Sprintf("rm -- %s && %s", q(p), e.restartLogger(s)))
		case !can(fi, w, wBit):
			r.fail(fmt.Sprintf("%s (%s): %s, which runs s6-log, cannot write it", p, describe(fi), w),
				fmt.Sprintf("chown -h %s %s && %s", w.owner(), q(p), e.restartLogger(s)))
		}
	}
}

// rmAsRunner is a fix that removes a path on the volume as the account
// that owns the volume (root never touches paths there).
func (e *Env) rmAsRunner(p string) string {
	if s := e.service(); s != nil && e.Identity.Root() {
		return fmt.Sprintf("%s %s rm -f -- %s", e.tool("s6-setuidgid"), q(s.name), q(p))
	}
	return "rm -f -- " + q(p)
}

func checkLogLocks(ctx context.Context, e *Env) []Finding {
	r := report{check: CheckLogLock}
	for _, s := range e.slots() {
		lock := filepath.Join(s.logDir(e.Layout), "lock")
		if parent, err := os.Lstat(filepath.Dir(lock)); err != nil || !parent.IsDir() {
			continue // no log dir, or log-dir reports it
		}
		fi, err := os.Lstat(lock)
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() {
			r.fail(fmt.Sprintf("%s is a %s, not a regular file: never followed", lock, typeWord(fi)), e.rmAsRunner(lock)+" && "+e.restartLogger(s))
			continue
		}
		logger := filepath.Join(s.Dir, "log")
		var held bool
		var pid int
		var st s6.Status
		// A logger s6 restarts leaves its lock unheld, or held by the
		// s6-log on its way out, for up to a second: only what lasts
		// is reported.
		err = e.settle(ctx, func() (bool, error) {
			var err error
			if held, pid, err = lockHolder(lock); err != nil {
				return true, err
			}
			st, err = e.Status(ctx, logger)
			return st.Up && (!held || pid == st.PID || !st.Ready), err
		})
		// A lock nobody holds blocks nothing (s6-log's lock is an flock),
		// so a leftover is never reported nor removed.
		switch {
		case err != nil:
			r.warn(fmt.Sprintf("cannot tell whether %s is held: %v", lock, err), asRoot)
		case held && pid != st.PID && st.Up && !st.Ready:
			who := "another container"
			if h, ok, _ := lease.ReadHolder(e.Layout.Home, filepath.Dir(lock)); ok {
				who = h.String()
			}
			r.ok(fmt.Sprintf("%s is a standby: its logger waits for the profile's lease, held by %s, and takes over when that container stops", s.Name, who))
		case held && pid != st.PID:
			who := fmt.Sprintf("pid %d", pid)
			if pid <= 0 {
				who = "a process in another pid namespace (another container on this volume?)"
			}
			running := "is not running"
			if st.Up {
				running = fmt.Sprintf("runs as pid %d", st.PID)
			}
			r.fail(fmt.Sprintf("%s is held by %s while %s's logger %s without the profile's lease: its s6-log cannot take the log dir", lock, who, s.Name, running),
				note(fmt.Sprintf("stop the other s6-log writing %s, then: %s -u %s", filepath.Dir(lock), e.tool("s6-svc"), q(logger))))
		}
	}
	return r.done("every s6-log lock is held by its own slot's logger, or by none")
}

func checkLoggers(ctx context.Context, e *Env) []Finding {
	r := report{check: CheckLogger}
	if e.treeErr() != nil {
		return r.done("no s6-svscan: no loggers to look at (see " + CheckSvscan + ")")
	}
	n := 0
	for _, s := range e.slots() {
		logDir := filepath.Join(s.Dir, "log")
		if fi, err := os.Stat(logDir); err != nil || !fi.IsDir() {
			continue
		}
		if st, err := e.statusOf(ctx, s.Dir); err != nil || !st.Supervised {
			continue // drift reports a slot s6-svscan has not picked up
		}
		st, err := e.statusOf(ctx, logDir)
		switch {
		case err != nil:
			r.warn(fmt.Sprintf("%s's logger: %v", s.Name, err), asRoot)
			continue
		case !st.Supervised:
			r.warn(fmt.Sprintf("%s's logger is not supervised", s.Name), fmt.Sprintf("%s -a %s", e.tool("s6-svscanctl"), q(e.Layout.Scandir)))
			continue
		case st.Up:
			n++
			continue
		case !st.WantUp:
			r.fail(fmt.Sprintf("%s's logger is down and s6 will not restart it: the gateway's output backs up and then blocks it", s.Name),
				fmt.Sprintf("%s -u %s", e.tool("s6-svc"), q(logDir)))
		case st.Seconds >= int(Settle.Seconds()):
			r.fail(fmt.Sprintf("%s's logger has been down for %ds (its s6-log fails to start; see %s): the gateway's output backs up and then blocks it", s.Name, st.Seconds, CheckLogDir),
				fmt.Sprintf("%s -ru %s  # once the %s findings are fixed; s6-log's own error is in the container's output (docker logs)", e.tool("s6-svc"), q(logDir), CheckLogDir))
		}
	}
	return r.done(count(n, "logger", "loggers") + " running")
}

// readState reads profile p's desired state without following a symlink.
func (e *Env) readState(p string) (*state.File, error) {
	path := e.Layout.StateFile(p)
	b, err := readRegular(path, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return &state.File{Path: path, Desired: state.None}, nil
	}
	if err != nil {
		return nil, err
	}
	return state.Parse(path, b), nil
}

// profiles is default and every valid named profile, sorted.
func (e *Env) profiles() []string {
	names, _, _ := e.Layout.Scan()
	return append([]string{profile.Default}, names...)
}

func checkState(ctx context.Context, e *Env) []Finding {
	r := report{check: CheckState}
	w := e.runner()
	ps := e.profiles()
	for _, p := range ps {
		path := e.Layout.StateFile(p)
		f, err := e.readState(p)
		switch {
		case errors.Is(err, errNotFollowed):
			r.warn(path+" is a symlink: not followed; recording the desired state replaces it with a file", e.recordFix(ctx, p))
		case errors.Is(err, fs.ErrPermission):
			r.fail(fmt.Sprintf("%s cannot be read: %v", path, err), fmt.Sprintf("chown -h %s %s", ownerWord(w), q(path)))
		case err != nil:
			r.fail(err.Error(), "mv -- "+q(path)+" "+q(path+".bad")+" && "+e.recordFix(ctx, p))
		case f.Desired == state.Corrupt:
			r.fail(fmt.Sprintf("%v: the next container start registers profile %s down", f.Problem, p),
				e.recordFix(ctx, p)+"; the corrupt file is moved aside")
		}
		// start and stop write the state file by rename in its directory.
		dir := e.Layout.ProfileDir(p)
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() && !can(fi, w, wBit|xBit) {
			r.fail(fmt.Sprintf("%s (%s): %s cannot record profile %s's desired state there", dir, describe(fi), w, p),
				fmt.Sprintf("chown -h %s %s", ownerWord(w), q(dir)))
		}
	}
	return r.done(count(len(ps), "desired-state file", "desired-state files") + " readable (or absent)")
}

// recordFix is the command that records a fresh desired state for profile
// p: the one that matches what s6 does now (start when it wants the slot
// up, else stop), registering the slot first when there is none.
func (e *Env) recordFix(ctx context.Context, p string) string {
	cmd, other, word := "stop", "start", "stopped"
	if e.treeErr() == nil {
		if st, err := e.statusOf(ctx, e.Layout.SlotDir(p)); err == nil && st.WantUp {
			cmd, other, word = "start", "stop", "running"
		}
	}
	fix := fmt.Sprintf("hermes-s6 %s --profile %s", cmd, p)
	if _, err := os.Stat(e.Layout.SlotDir(p)); err != nil {
		fix = fmt.Sprintf("hermes-s6 register --profile %s && %s", p, fix)
	}
	return fmt.Sprintf("%s  # records %s, as s6 has it now (%s records %s)", fix, word, other, map[string]string{"start": "running", "stop": "stopped"}[other])
}

func ownerWord(w *ident) string {
	if w == nil {
		return "0:0"
	}
	return w.owner()
}
