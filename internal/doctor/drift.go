package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nousresearch/hermes-s6/internal/cmdline"
	"github.com/nousresearch/hermes-s6/internal/health"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/reconcile"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/s6"
)

type statusResult struct {
	st  s6.Status
	err error
}

// statusOf is Env.Status of dir, asked once per run so that every check
// judges the same moment.
func (e *Env) statusOf(ctx context.Context, dir string) (s6.Status, error) {
	if e.statuses == nil {
		e.statuses = map[string]statusResult{}
	}
	if r, ok := e.statuses[dir]; ok {
		return r.st, r.err
	}
	st, err := e.Status(ctx, dir)
	e.statuses[dir] = statusResult{st, err}
	return st, err
}

// lastExit says how the process last ended, for a problem line.
func lastExit(st s6.Status) string {
	switch {
	case st.Signal != "":
		return "last killed by " + st.Signal
	case st.ExitCode == 78:
		return "last exit 78 (configuration error: finish parked it)"
	case st.ExitCode == 0:
		return "last exit 0 (a deliberate stop: finish parked it)"
	case st.ExitCode > 0:
		return fmt.Sprintf("last exit %d", st.ExitCode)
	}
	return "it has not run since it was picked up"
}

func checkDrift(ctx context.Context, e *Env) []Finding {
	r := report{check: CheckDrift}
	if e.treeErr() != nil {
		return r.done("no s6-svscan: nothing to compare (see " + CheckSvscan + ")")
	}
	n := 0
	for _, s := range e.slots() {
		st, err := e.statusOf(ctx, s.Dir)
		if err != nil {
			r.warn(fmt.Sprintf("%s: cannot read its status: %v", s.Name, err), asRoot)
			continue
		}
		if !st.Supervised {
			r.warn(fmt.Sprintf("%s is not supervised: s6-svscan has not picked it up", s.Name),
				fmt.Sprintf("%s -a %s", e.tool("s6-svscanctl"), q(e.Layout.Scandir)))
			continue
		}
		if s.Profile == "" {
			n++
			dashboardDrift(&r, e, s, st)
			continue
		}
		f, err := e.readState(s.Profile)
		if err != nil || f.Desired == state.Corrupt {
			continue // state reports it
		}
		n++
		p := s.Profile
		start, stop := "hermes-s6 start --profile "+p, "hermes-s6 stop --profile "+p
		switch f.Desired {
		case state.Running:
			switch {
			case !st.WantUp:
				r.fail(fmt.Sprintf("%s: desired state running, but s6 keeps it down (%s)", s.Name, lastExit(st)),
					fmt.Sprintf("%s  # if it exits by itself, read hermes-s6 logs --profile %s -n 50 first", start, p))
			case !st.Up && st.Seconds >= int(Settle.Seconds()):
				r.fail(fmt.Sprintf("%s: desired state running, s6 wants it up, but it has been down for %ds (%s)", s.Name, st.Seconds, lastExit(st)),
					fmt.Sprintf("hermes-s6 logs --profile %s -n 50  # it fails to start: the gateway or its run script says why", p))
			case !st.NormallyUp:
				r.warn(fmt.Sprintf("%s: desired state running, but its down file would keep it down when s6-svscan restarts", s.Name), start)
			}
		case state.Stopped:
			switch {
			case st.Up || st.WantUp:
				r.warn(fmt.Sprintf("%s: desired state stopped, but s6 runs it (pid %d): the next container start leaves it down", s.Name, st.PID), stop)
			case st.NormallyUp:
				r.warn(fmt.Sprintf("%s: desired state stopped, but it has no down file: an s6-svscan restart would start it", s.Name), stop)
			}
		case state.None:
			if st.Up || st.WantUp {
				r.warn(fmt.Sprintf("%s runs, but no desired state is recorded: the next container start leaves it down", s.Name),
					start+"  # records running; "+stop+" records stopped")
			}
		}
	}
	return r.done(count(n, "slot is", "slots are") + " as the desired state says")
}

// dashboardDrift compares the dashboard slot with the container's
// HERMES_DASHBOARD, which stands in for its desired state: reconcile
// brings the slot up at boot when it is truthy, and leaves it down else.
func dashboardDrift(r *report, e *Env, s slotRef, st s6.Status) {
	want := cmdline.Truthy(e.Getenv(reconcile.DashboardEnv))
	up := fmt.Sprintf("%s -u %s", e.tool("s6-svc"), q(s.Dir))
	down := fmt.Sprintf("%s -d %s && touch %s", e.tool("s6-svc"), q(s.Dir), q(filepath.Join(s.Dir, "down")))
	logs := "tail -n 50 " + q(filepath.Join(e.Layout.Home, "logs", "dashboard", "current"))
	switch {
	case want && !st.WantUp:
		r.fail(fmt.Sprintf("%s: %s is on, but s6 keeps it down (%s)", s.Name, reconcile.DashboardEnv, lastExit(st)),
			up+"  # if it exits by itself, read it first: "+logs)
	case want && !st.Up && st.Seconds >= int(Settle.Seconds()):
		r.fail(fmt.Sprintf("%s: %s is on and s6 wants it up, but it has been down for %ds (%s)", s.Name, reconcile.DashboardEnv, st.Seconds, lastExit(st)),
			logs+"  # it fails to start: the dashboard or its run script says why")
	case !want && (st.Up || st.WantUp):
		r.warn(fmt.Sprintf("%s runs (pid %d), but %s is off: the next container start leaves it down", s.Name, st.PID, reconcile.DashboardEnv),
			down+"  # or run the container with "+reconcile.DashboardEnv+"=1 to keep it")
	}
}

// dashboardContainer reports whether the container's CMD (HERMES_S6_CMD)
// is the dashboard: such a container has no gateway slots.
func (e *Env) dashboardContainer() bool {
	var cmd []string
	raw := e.Getenv(shim.EnvCmd)
	return raw != "" && json.Unmarshal([]byte(raw), &cmd) == nil && cmdline.IsDashboard(cmd)
}

func checkProfiles(_ context.Context, e *Env) []Finding {
	r := report{check: CheckProfiles}
	if e.dashboardContainer() {
		return r.done("dashboard container (" + shim.EnvCmd + "): no gateway slots expected")
	}
	if fi, err := os.Stat(e.Layout.Scandir); err != nil || !fi.IsDir() {
		return r.done("no scandir to compare the profiles with (see " + CheckScandir + ")")
	}
	names, skipped, err := e.Layout.Scan()
	if err != nil {
		fix := asRoot
		if w := e.runner(); w != nil {
			fix = fmt.Sprintf("chown -h %s %s", w.owner(), q(filepath.Join(e.Layout.Home, "profiles")))
		}
		r.fail(err.Error(), fix)
	}
	for _, sk := range skipped {
		name := filepath.Base(sk.Dir)
		fi, err := os.Lstat(sk.Dir)
		if err != nil {
			continue
		}
		hasSoul := false
		if _, err := os.Lstat(filepath.Join(sk.Dir, "SOUL.md")); err == nil {
			hasSoul = true
		}
		switch {
		case name == profile.Default:
			r.warn(sk.Dir+": the default profile lives at HERMES_HOME itself; this directory is ignored",
				note(fmt.Sprintf("move what it holds that you need to %s, then: rm -r -- %s", e.Layout.Home, q(sk.Dir))))
		case fi.Mode()&fs.ModeSymlink != 0:
			r.warn(sk.Dir+" is a symlink: profile directories are never followed, so it is no profile",
				fmt.Sprintf("rm -- %s && mv -- %s %s  # the directory itself in place of the link", q(sk.Dir), q(linkTarget(sk.Dir)), q(sk.Dir)))
		case fi.IsDir() && profile.Validate(name) != nil && hasSoul:
			r.warn(fmt.Sprintf("%s has a SOUL.md but %q is no valid profile name (%s), so it is never registered", sk.Dir, name, profile.Rule),
				fmt.Sprintf("mv -T -- %s %s", q(sk.Dir), q(filepath.Join(filepath.Dir(sk.Dir), suggestName(name, func(n string) bool {
					_, err := os.Lstat(filepath.Join(filepath.Dir(sk.Dir), n))
					return err == nil
				})))))
		}
	}
	all := append([]string{profile.Default}, names...)
	var noSlot, elsewhere []string
	for _, p := range all {
		if _, err := os.Stat(e.Layout.SlotDir(p)); err == nil {
			continue
		}
		if ok, why := e.Selection.Pick(p); !ok {
			elsewhere = append(elsewhere, p+" ("+why+")")
			continue
		}
		noSlot = append(noSlot, p)
	}
	if !e.Selection.All() {
		r.ok(fmt.Sprintf("this container supervises %s: %d of %d profiles; not here: %s", e.Selection, len(all)-len(elsewhere), len(all), orNone(elsewhere)))
	}
	all = slices.DeleteFunc(all, func(p string) bool { ok, _ := e.Selection.Pick(p); return !ok })
	// More profiles than s6-svscan can supervise: the boot left some out,
	// and registering them would cross the limit, past which s6-svscan
	// supervises no new slot at all.
	capacity := reconcile.SvscanCapacity(e.ProcRoot, e.Layout.Scandir)
	inv, _ := slot.Take(e.Layout.Scandir)
	if budget := capacity.Budget(inv, e.Layout.Scandir); len(all) > budget && len(noSlot) > 0 {
		r.fail(fmt.Sprintf("%d profiles, but only %d gateway slots fit in %s's limit (%d): left out, with no slot: %s", len(all), budget, capacity.Source, capacity.Max, strings.Join(noSlot, ", ")),
			note("spread the profiles over more containers, one set of profiles each, or remove profiles you no longer use; registering them here would cross the limit"))
		return r.found
	}
	for _, p := range noSlot {
		r.warn(fmt.Sprintf("profile %s has no slot (%s): it cannot be started until it is registered (the next container start registers it)", p, e.Layout.SlotDir(p)),
			"hermes-s6 register --profile "+p)
	}
	return r.done(count(len(all), "profile", "profiles") + ", each with a slot")
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// linkTarget is where the symlink p points, as an absolute path when it
// is relative (for a fix line; the link is read, not followed).
func linkTarget(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return "TARGET"
	}
	if !filepath.IsAbs(t) {
		t = filepath.Join(filepath.Dir(p), t)
	}
	return t
}

// suggestName maps an invalid profile name to a valid one, for a fix line:
// one that is not taken yet (taken reports whether a name is), so the fix
// never moves a profile onto another.
func suggestName(name string, taken func(string) bool) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteRune('-')
		}
	}
	s := strings.TrimLeft(b.String(), "-_")
	if s == "" || s == profile.Default {
		s = "profile-" + s
	}
	if len(s) > profile.MaxLen {
		s = s[:profile.MaxLen]
	}
	base := s
	for i := 2; taken(s) && i < 1000; i++ {
		suffix := "-" + strconv.Itoa(i)
		s = strings.TrimRight(base[:min(len(base), profile.MaxLen-len(suffix))], "-_") + suffix
	}
	return s
}

func checkSlots(_ context.Context, e *Env) []Finding {
	r := report{check: CheckSlots}
	inv, err := slot.Take(e.Layout.Scandir)
	if err != nil {
		return r.done("no scandir to look in")
	}
	scandir := e.Layout.Scandir
	if services := len(inv.Services); services >= reconcile.WarnSlots {
		r.warn(fmt.Sprintf("%d service directories in %s: s6-svscan supervises at most about %d logged slots with its default flags, and ignores the rest", services, scandir, reconcile.SvscanDefaultMax),
			note("spread the profiles over more containers, or run s6-svscan with a higher -c"))
	}
	for _, name := range inv.Strays {
		dir := filepath.Join(scandir, name)
		if p := strings.TrimPrefix(name, profile.SlotPrefix); profile.Validate(p) != nil {
			hidden := filepath.Join(scandir, slot.RemovingPrefix+name)
			remove := fmt.Sprintf("%s -d %s; mv -- %s %s && %s -an %s", e.tool("s6-svc"), q(dir), q(dir), q(hidden), e.tool("s6-svscanctl"), q(scandir))
			r.warn(fmt.Sprintf("%s: %q is no valid profile name, so hermes-s6 cannot manage this slot", dir, p), remove)
			continue
		}
		r.warn(dir+" is not a directory (a symlink or a file): it is no slot hermes-s6 made", "rm -- "+q(dir))
	}
	n := 0
	for _, p := range inv.Profiles {
		n++
		if err := e.Layout.Exists(p); err != nil {
			r.warn(fmt.Sprintf("%s belongs to profile %s, whose directory is gone (%s): the next container start drops it", profile.SlotName(p), p, e.Layout.ProfileDir(p)),
				"hermes-s6 unregister --profile "+p)
		}
	}
	return r.done(count(n, "gateway slot", "gateway slots") + ", each for an existing profile")
}

// A slot is crash-looping when its death tally holds CrashLoopDeaths deaths
// within CrashLoopWindow and it has not stayed up for a window since (the
// rule health applies, from the slot's run-state). Its run script backs
// off between tries, and s6 counts it up while it waits, so drift's "down
// for Settle" never sees it.
const (
	CrashLoopDeaths = health.CrashLoopDeaths
	CrashLoopWindow = time.Minute
)

func checkCrashLoops(ctx context.Context, e *Env) []Finding {
	r := report{check: CheckCrashLoop}
	if e.treeErr() != nil {
		return r.done("no s6-svscan: nothing to look at (see " + CheckSvscan + ")")
	}
	n := 0
	for _, s := range e.slots() {
		st, err := e.statusOf(ctx, s.Dir)
		if err != nil || !st.Supervised || !st.WantUp {
			continue // drift reports what it can; a slot kept down is no loop
		}
		n++
		if st.Up && st.Seconds >= int(CrashLoopWindow.Seconds()) {
			continue // whatever happened before, it has stayed up since
		}
		ds, err := e.Deaths(ctx, s.Dir)
		if err != nil {
			r.warn(fmt.Sprintf("%s: cannot read its death tally: %v", s.Name, err), asRoot)
			continue
		}
		recent := 0
		for i := len(ds) - 1; i >= 0 && ds[len(ds)-1].TAI.Sub(ds[i].TAI) <= CrashLoopWindow; i-- {
			recent++
		}
		if recent < CrashLoopDeaths {
			continue
		}
		last := ds[len(ds)-1]
		how := fmt.Sprintf("exit %d", last.Code)
		if last.Signal != "" {
			how = "killed by " + last.Signal
		}
		span := ds[len(ds)-1].TAI.Sub(ds[len(ds)-recent].TAI).Round(time.Second)
		fix := fmt.Sprintf("hermes-s6 logs --profile %s -n 50  # why it dies; `hermes-s6 stop --profile %[1]s` ends the loop, --crash-limit 5/60s parks it by itself", s.Profile)
		if s.Profile == "" {
			fix = "tail -n 50 " + q(filepath.Join(e.Layout.Home, "logs", "dashboard", "current")) + "  # why it dies"
		}
		r.fail(fmt.Sprintf("%s is crash-looping: %d deaths in %s (last %s), and it is restarted with a backoff of up to 60 s", s.Name, recent, span, how), fix)
	}
	return r.done(count(n, "slot s6 wants up is", "slots s6 wants up are") + " not crash-looping")
}
