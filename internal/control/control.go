// Package control drives gateway slots through their lifecycle on a live
// s6 tree (docs/lifecycle.md): register, start, stop, restart, status, unregister and
// list. It composes render (what a slot holds), slot (how it is installed),
// state (what the operator asked for) and s6 (the real tools).
//
// Failures carry sentinel errors that the CLI maps to exit codes:
// profile.ErrInvalidName and profile.ErrNoProfile (2), ErrNotRegistered (3),
// s6.ErrNoTree (4); the order of the checks fixes their precedence.
package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/lease"
	"github.com/nousresearch/hermes-s6/internal/lock"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// ErrNotRegistered: the profile has no slot in the scandir.
var ErrNotRegistered = errors.New("slot not registered")

// DefaultTimeout bounds every wait on s6 unless the caller says otherwise.
const DefaultTimeout = 10 * time.Second

// Manager carries what every lifecycle operation needs: the shared Env
// (its Slot is the render template; Kind and Profile are set per call).
type Manager struct {
	config.Env
}

// New is a Manager on env, with env's unset parts defaulted.
func New(env config.Env) *Manager {
	env.Defaults()
	return &Manager{Env: env}
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Render renders profile p's gateway slot with the manager's settings.
func (m *Manager) Render(p string, down bool) (*render.Slot, error) {
	c := m.Slot
	c.Kind, c.Profile, c.Down = render.Gateway, p, down
	return render.Render(c)
}

// checkName validates p and, for a named profile, that it exists.
func (m *Manager) checkName(p string, mustExist bool) error {
	if err := profile.Validate(p); err != nil {
		return hint.With(err, "profile names look like coder, ops-2 or team_a")
	}
	if !mustExist {
		return nil
	}
	if err := m.Layout.Exists(p); err != nil {
		return hint.With(err, fmt.Sprintf("create the profile first (its directory %s with a SOUL.md), e.g. `hermes profile create %s`", m.Layout.ProfileDir(p), p))
	}
	return nil
}

// checkRegistered returns ErrNotRegistered with a hint when p has no slot.
func (m *Manager) checkRegistered(p string) error {
	dir := m.Layout.SlotDir(p)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return hint.With(fmt.Errorf("%w: profile %s has no slot %s", ErrNotRegistered, p, dir),
			"register it first: hermes-s6 register --profile "+p)
	}
	if err != nil {
		return fmt.Errorf("slot %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("slot %s is not a directory", dir)
	}
	return nil
}

// Install renders and installs p's slot without talking to s6. A new slot
// gets a down file unless up; an existing one keeps its down file unless
// syncDown, which makes it match up.
func (m *Manager) Install(p string, up, syncDown bool) (slot.Result, error) {
	s, err := m.Render(p, !up)
	if err != nil {
		return slot.Unchanged, err
	}
	return slot.Install(m.Layout.Scandir, s, slot.Options{Skeleton: m.Identity.Controller(), Root: m.Identity.Root(), SyncDown: syncDown})
}

// Register installs p's slot atomically and asks s6-svscan to pick it up.
// With start it then starts the profile (recording desired state running).
func (m *Manager) Register(ctx context.Context, p string, start bool, w Wait) error {
	if err := m.checkName(p, true); err != nil {
		return err
	}
	if err := s6.TreeRunning(m.Layout.Scandir); err != nil {
		return err
	}
	if err := m.checkEnv(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, false, func(deadline time.Time) error {
		// A new slot is installed down even with start: start removes the
		// down file once s6-supervise runs it (see bringUp).
		res, err := m.Install(p, false, false)
		if err != nil {
			return err
		}
		m.Log.Info("slot "+res.String(), "slot", profile.SlotName(p), "dir", m.Layout.SlotDir(p))
		if res == slot.Created {
			if err := m.Tools.Rescan(ctx, m.Layout.Scandir); err != nil {
				return fmt.Errorf("slot %s installed but s6-svscan was not told: %w", profile.SlotName(p), err)
			}
		}
		if start {
			return m.start(ctx, p, w, deadline)
		}
		return nil
	})
}

// locked runs fn holding p's slot lock, so concurrent hermes-s6 commands on
// one slot take turns. The wait for the lock counts against w's timeout,
// and fn gets the deadline that is left. With registered, p's slot must
// still exist once the lock is held (a concurrent unregister may have won).
func (m *Manager) locked(ctx context.Context, p string, w Wait, registered bool, fn func(deadline time.Time) error) error {
	deadline := time.Now().Add(w.timeout())
	release, err := lock.Slot(ctx, m.Layout.Scandir, profile.SlotName(p), w.timeout(), m.Identity, m.Log)
	if err != nil {
		return err
	}
	defer release()
	if registered {
		if err := m.checkRegistered(p); err != nil {
			return err
		}
	}
	return fn(deadline)
}

// Wait says how long lifecycle commands wait, and whether they wait at all.
type Wait struct {
	Timeout time.Duration
	NoWait  bool
}

func (w Wait) timeout() time.Duration {
	if w.Timeout <= 0 {
		return DefaultTimeout
	}
	return w.Timeout
}

// prepare runs the checks shared by start, stop and restart, in the order
// that fixes exit-code precedence: name (2), registered (3), tree (4).
func (m *Manager) prepare(p string) error {
	if err := m.checkName(p, false); err != nil {
		return err
	}
	if err := m.checkRegistered(p); err != nil {
		return err
	}
	if err := s6.TreeRunning(m.Layout.Scandir); err != nil {
		return err
	}
	return m.checkEnv(p)
}

// tools are the s6 programs lifecycle commands run.
var tools = []string{"s6-svc", "s6-svscanctl", "s6-svstat", "s6-svwait"}

// checkEnv finds what would make a command fail half-way, before it
// changes anything: s6 tools that do not resolve, a HERMES_HOME that is
// not a directory, a profile log directory reached through a symlink.
func (m *Manager) checkEnv(p string) error {
	for _, t := range tools {
		if _, err := m.Tools.Path(t); err != nil {
			return err
		}
	}
	fi, err := os.Stat(m.Layout.Home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return hint.With(fmt.Errorf("HERMES_HOME %s does not exist", m.Layout.Home),
			"mount the data volume there, or point --home / HERMES_HOME at it")
	case err != nil:
		return fmt.Errorf("HERMES_HOME: %w", err)
	case !fi.IsDir():
		return hint.With(fmt.Errorf("HERMES_HOME %s is not a directory", m.Layout.Home),
			"point --home / HERMES_HOME at the data volume")
	}
	for _, d := range []string{filepath.Join(m.Layout.Home, "logs"), filepath.Dir(m.Layout.LogDir(p)), m.Layout.LogDir(p)} {
		if fi, err := os.Lstat(d); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return hint.With(fmt.Errorf("log directory %s is a symlink: refusing it (the logger would write wherever it points)", d),
				"replace it with a real directory owned by the service account")
		}
	}
	return nil
}

// record persists the operator's intent, then keeps the down file in step
// with it. Intent comes first: when it cannot be recorded (a full or
// read-only volume, a refused profile directory) record fails and the
// caller changes nothing. A down file that cannot be kept in step is only
// a warning (and nothing at all for the service account, whose slots are
// root's): the boot reconcile sets it from the desired state anyway.
func (m *Manager) record(p string, d state.Desired) error {
	if err := m.writeState(p, d); err != nil {
		return notRecorded(d, err)
	}
	if err := slot.SetDown(m.Layout.SlotDir(p), d != state.Running); err != nil && !(errors.Is(err, os.ErrPermission) && !m.Identity.Root()) {
		m.Log.Warn("down file not kept in step with the desired state (the next boot sets it)", "slot", profile.SlotName(p), "error", err.Error())
	}
	return nil
}

// notRecorded is the failure of a command whose intent could not be
// recorded: it changed nothing.
func notRecorded(d state.Desired, err error) error {
	return hint.With(fmt.Errorf("desired state %s not recorded, so nothing was changed: %w", d, err),
		"free space on the data volume, or make it writable for the service account, then run the command again")
}

func (m *Manager) writeState(p string, d state.Desired) error {
	note, err := state.Write(m.Layout.Home, m.Layout.StateRel(p), d, nil, m.Identity.FileOwner(), m.now())
	if note != "" {
		m.Log.Warn("corrupt desired state replaced", "profile", p, "detail", note)
	}
	return err
}

// bringUp records desired state running and, once s6-supervise has taken
// the slot over, removes the down file. In that order a fresh slot is never
// started by its pickup as well as by the s6-svc -u that follows, which would
// run a gateway that exits at once (say with 78) twice.
func (m *Manager) bringUp(ctx context.Context, p string, deadline time.Time) error {
	if err := m.writeState(p, state.Running); err != nil {
		return notRecorded(state.Running, err)
	}
	dir := m.Layout.SlotDir(p)
	if err := m.awaitSupervisor(ctx, dir, deadline); err != nil {
		return err
	}
	if err := slot.SetDown(dir, false); err != nil && !(errors.Is(err, os.ErrPermission) && !m.Identity.Root()) {
		return err
	}
	// The service account may not write root's slot: the down file stays
	// until the next boot sets it from the desired state just recorded.
	return nil
}

// StartedAtBoot reports whether p's slot is already what a start would
// make it: desired state running on the volume and no down file, so s6
// starts (or has started) it on its own.
func (m *Manager) StartedAtBoot(p string) bool {
	if _, err := os.Stat(filepath.Join(m.Layout.SlotDir(p), "down")); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	f, err := state.Read(m.Layout.Home, m.Layout.StateRel(p))
	return err == nil && f.Desired == state.Running
}

// Start records desired state running and brings the gateway up.
func (m *Manager) Start(ctx context.Context, p string, w Wait) error {
	if err := m.prepare(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, true, func(deadline time.Time) error { return m.start(ctx, p, w, deadline) })
}

func (m *Manager) start(ctx context.Context, p string, w Wait, deadline time.Time) error {
	dir := m.Layout.SlotDir(p)
	if ok, err := s6.Supervised(dir); err == nil && ok {
		if err := m.record(p, state.Running); err != nil {
			return err
		}
		return m.up(ctx, dir, w, deadline)
	}
	if err := m.bringUp(ctx, p, deadline); err != nil {
		return err
	}
	return m.up(ctx, dir, w, deadline)
}

func (m *Manager) up(ctx context.Context, dir string, w Wait, deadline time.Time) error {
	// The operator asked for it: no crash backoff from earlier deaths. The
	// service account cannot write a root-owned slot; its start falls back
	// on run's own rule (a start long after the death does not wait).
	if err := slot.ResetBackoff(dir); err != nil && !errors.Is(err, fs.ErrPermission) {
		m.Log.Warn("cannot reset the crash backoff", "slot", filepath.Base(dir), "detail", err.Error())
	}
	if w.NoWait {
		return m.Tools.Up(ctx, dir, s6.NoWait, 0)
	}
	if _, err := os.Lstat(filepath.Join(dir, "notification-fd")); err != nil {
		// A slot from before readiness: up is all s6 can say.
		return m.Tools.Up(ctx, dir, s6.WaitUp, s6.Remaining(deadline))
	}
	// Ready means the program started: past its backoff, holding the
	// lease. One s6-svwait -U, normally; a slot still not ready after
	// LeaseGrace is up and waiting for something that may take long.
	err := m.Tools.Up(ctx, dir, s6.WaitRdy, min(LeaseGrace, s6.Remaining(deadline)))
	if !errors.Is(err, s6.ErrTimeout) || time.Until(deadline) <= 0 {
		return err
	}
	if st, serr := m.Tools.Status(ctx, dir); serr == nil && st.Up {
		m.notStarted(dir)
		return nil
	}
	return m.Tools.Up(ctx, dir, s6.WaitUp, s6.Remaining(deadline))
}

// LeaseGrace is how long start waits for a slot to be ready: its run
// script past its backoff, holding the profile's lease, its program
// started. Normally that takes a few tens of milliseconds; longer means
// another container holds the lease (a standby) or a backoff runs.
const LeaseGrace = 2 * time.Second

// notStarted says why a slot s6 has up has not started its program: a
// standby (another container holds the lease: it starts the gateway when
// that container lets go) or a crash backoff. Neither is an error.
func (m *Manager) notStarted(dir string) {
	ss := SlotStatus{Name: filepath.Base(dir)}
	if ss.Name != render.DashboardSlot {
		ss.Profile = strings.TrimPrefix(ss.Name, profile.SlotPrefix)
	}
	if _, err := os.Lstat(filepath.Join(dir, lease.WaitMarker)); err != nil {
		m.Log.Warn("up, not started yet: its crash backoff or readiness check runs (hermes-s6 status says which)", "slot", ss.Name)
		return
	}
	who := "another container"
	if h, ok, err := lease.ReadHolder(m.Layout.Home, ss.LogDir(m.Layout)); err == nil && ok {
		who = h.String()
	}
	m.Log.Warn("up as a standby: another container holds the lease, and this slot starts the gateway when it lets go", "slot", ss.Name, "holder", who)
}

// Stop records desired state stopped and brings the gateway down, waiting
// until it is down and its finish script is done (unless NoWait).
func (m *Manager) Stop(ctx context.Context, p string, w Wait) error {
	if err := m.prepare(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, true, func(deadline time.Time) error { return m.stop(ctx, p, w, deadline) })
}

func (m *Manager) stop(ctx context.Context, p string, w Wait, deadline time.Time) error {
	dir := m.Layout.SlotDir(p)
	if ok, err := s6.Supervised(dir); err != nil || !ok {
		// Nothing runs it yet; the down file keeps it down on pickup.
		if rerr := m.record(p, state.Stopped); rerr != nil {
			return rerr
		}
		return err
	}
	if err := m.record(p, state.Stopped); err != nil {
		return err
	}
	if w.NoWait {
		return m.Tools.Down(ctx, dir, s6.NoWait, 0)
	}
	return m.Tools.Down(ctx, dir, s6.WaitFin, s6.Remaining(deadline))
}

// Restart brings the gateway down, waits until finish has run, and brings
// it up again. A bare s6-svc -r would leave a gateway that exits 0 on
// SIGTERM parked (finish turns 0 into 125), so the wait for -wD is kept
// even with NoWait; NoWait only skips waiting for the new process.
func (m *Manager) Restart(ctx context.Context, p string, w Wait) error {
	if err := m.prepare(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, true, func(deadline time.Time) error { return m.restart(ctx, p, w, deadline) })
}

func (m *Manager) restart(ctx context.Context, p string, w Wait, deadline time.Time) error {
	if err := m.bringUp(ctx, p, deadline); err != nil {
		return err
	}
	dir := m.Layout.SlotDir(p)
	if err := m.Tools.Down(ctx, dir, s6.WaitFin, s6.Remaining(deadline)); err != nil {
		return err
	}
	return m.up(ctx, dir, w, deadline)
}

// awaitSupervisor polls until s6-supervise listens on dir, as it does a
// moment after s6-svscan picks up a fresh slot.
func (m *Manager) awaitSupervisor(ctx context.Context, dir string, deadline time.Time) error {
	nudged := false
	return s6.Until(ctx, deadline, "s6-supervise to take over "+dir, func() (bool, error) {
		ok, err := s6.Supervised(dir)
		if err != nil {
			return false, hint.With(fmt.Errorf("control slot %s: %w", filepath.Base(dir), err),
				"run as root, or as the service account the slot was registered for")
		}
		if !ok && !nudged {
			// A fresh slot the scan has not reached yet: nudge it.
			nudged = true
			return false, m.Tools.Rescan(ctx, m.Layout.Scandir)
		}
		return ok, nil
	})
}

// SlotStatus is one row of `hermes-s6 status`.
type SlotStatus struct {
	Name    string
	Profile string // "" for the dashboard
	s6.Status
	Desired state.Desired
	// Problem explains a corrupt desired state.
	Problem error
	// Run is the slot's crash backoff (slot.RunState); Ran is false when
	// no run has started since the slot was installed.
	Run slot.RunState
	Ran bool
	// Notifies is true when the slot declares readiness (a notification-fd
	// file): only then does s6 ever report it ready.
	Notifies bool
	// Waiting is true while the slot is up but waits for its profile's
	// lease (another container holds it); Holder says who, when known.
	Waiting bool
	Holder  *lease.Holder
	// Asked is true when s6 was asked about the slot (StatusSome).
	Asked bool
}

// LogDir is the slot's log directory on the volume, where its lease is.
func (s SlotStatus) LogDir(l profile.Layout) string {
	if s.Profile == "" {
		return filepath.Join(l.Home, "logs", "dashboard")
	}
	return l.LogDir(s.Profile)
}

// BackingOff reports whether the slot waits out a crash backoff: s6 sees
// it up (its run script waits) or restarting, and the program has not
// started.
func (s SlotStatus) BackingOff() bool { return s.WantUp && s.Run.Waiting() }

// Status reports profile p's slot.
func (m *Manager) Status(ctx context.Context, p string) (SlotStatus, error) {
	if err := m.checkName(p, false); err != nil {
		return SlotStatus{}, err
	}
	if err := s6.TreeRunning(m.Layout.Scandir); err != nil {
		return SlotStatus{}, err
	}
	if err := m.checkRegistered(p); err != nil {
		if ok, why := m.Selection.Pick(p); !ok {
			// Not a missing registration: another container runs it.
			return SlotStatus{}, hint.With(fmt.Errorf("%w: profile %s is not supervised in this container: %s", ErrNotRegistered, p, why),
				"ask the container that runs it (docs/scale-out.md)")
		}
		return SlotStatus{}, err
	}
	return m.status(ctx, profile.SlotName(p), p)
}

func (m *Manager) status(ctx context.Context, name, p string) (SlotStatus, error) {
	st, err := m.Tools.Status(ctx, filepath.Join(m.Layout.Scandir, name))
	if err != nil {
		return SlotStatus{Name: name, Profile: p, Desired: state.None}, err
	}
	return m.slotStatus(name, p, st)
}

// slotStatus completes s6's answer for slot name (profile p, "" for the
// dashboard) with what the slot and the volume keep: its run-state, its
// readiness declaration, the desired state.
func (m *Manager) slotStatus(name, p string, st s6.Status) (SlotStatus, error) {
	ss, err := m.slotFiles(name, p)
	if err != nil {
		return ss, err
	}
	m.withS6(&ss, st)
	return ss, nil
}

// slotFiles is what slot name (profile p) keeps in its directory and on
// the volume, without s6's answer.
func (m *Manager) slotFiles(name, p string) (SlotStatus, error) {
	ss := SlotStatus{Name: name, Profile: p, Desired: state.None, Status: s6.Status{PID: -1, ExitCode: -1}}
	dir := filepath.Join(m.Layout.Scandir, name)
	ss.Run, ss.Ran = slot.ReadRunState(dir)
	if _, err := os.Lstat(filepath.Join(dir, "notification-fd")); err == nil {
		ss.Notifies = true
	}
	if p != "" {
		f, err := state.Read(m.Layout.Home, m.Layout.StateRel(p))
		if err != nil {
			return ss, err
		}
		ss.Desired, ss.Problem = f.Desired, f.Problem
	}
	return ss, nil
}

// withS6 puts s6's answer st into ss, with what it implies: a standby's
// lease holder, and exit_code -1 for a slot that never ran.
func (m *Manager) withS6(ss *SlotStatus, st s6.Status) {
	ss.Status = st
	dir := filepath.Join(m.Layout.Scandir, ss.Name)
	if st.Up {
		if _, err := os.Lstat(filepath.Join(dir, lease.WaitMarker)); err == nil {
			ss.Waiting = true
			if h, ok, err := lease.ReadHolder(m.Layout.Home, ss.LogDir(m.Layout)); err == nil && ok {
				ss.Holder = &h
			}
		}
	}
	if st.Supervised && !st.Up && !ss.Ran && st.ExitCode == 0 && st.Signal == "" {
		ss.ExitCode = -1 // s6-svstat's 0 for a slot that never ran
	}
}

// StatusAll reports every gateway slot (sorted, default first) and the
// dashboard when present.
func (m *Manager) StatusAll(ctx context.Context) ([]SlotStatus, error) {
	return m.StatusSome(ctx, nil)
}

// StatusSome reports every slot as StatusAll does, but asks s6 only about
// the slots ask wants (nil: all of them), given each slot's files and
// desired state: health judges only the slots that should be up, and an
// s6-svstat is most of what a slot costs. A slot not asked about has
// Status{PID: -1, ExitCode: -1} and Asked false.
func (m *Manager) StatusSome(ctx context.Context, ask func(SlotStatus) bool) ([]SlotStatus, error) {
	ps, err := m.List()
	if err != nil {
		return nil, err
	}
	type slotRef struct{ name, profile string }
	slots := make([]slotRef, 0, len(ps)+1)
	for _, p := range ps {
		slots = append(slots, slotRef{profile.SlotName(p), p})
	}
	if fi, err := os.Stat(filepath.Join(m.Layout.Scandir, render.DashboardSlot)); err == nil && fi.IsDir() {
		slots = append(slots, slotRef{render.DashboardSlot, ""})
	}
	out := make([]SlotStatus, len(slots))
	// One s6-svstat per slot asked about, run the cheapest way for their
	// number (s6.Tools.Statuses); output order stays the sorted one. Asked
	// about every slot, s6 answers while the files are read.
	var asked []int
	var sts []s6.Status
	var errs []error
	query := func() {
		dirs := make([]string, len(asked))
		for k, i := range asked {
			dirs[k] = filepath.Join(m.Layout.Scandir, slots[i].name)
		}
		sts, errs = m.Tools.Statuses(ctx, dirs)
	}
	var s6done sync.WaitGroup
	if ask == nil {
		asked = make([]int, len(slots))
		for i := range asked {
			asked[i] = i
		}
		s6done.Go(query)
	}
	for i, s := range slots {
		if out[i], err = m.slotFiles(s.name, s.profile); err != nil {
			s6done.Wait()
			return out[:i], err
		}
		if ask != nil && ask(out[i]) {
			asked = append(asked, i)
		}
	}
	if ask != nil {
		query()
	}
	s6done.Wait()
	for k, i := range asked {
		if errs[k] != nil {
			return out[:i], errs[k]
		}
		m.withS6(&out[i], sts[k])
		out[i].Asked = true
	}
	return out, nil
}

// List returns the profiles that have a gateway slot, default first, then
// sorted. No s6-svscan on the scandir is s6.ErrNoTree: an empty list would
// read as "nothing registered".
func (m *Manager) List() ([]string, error) {
	if err := s6.TreeRunning(m.Layout.Scandir); err != nil {
		return nil, err
	}
	inv, err := slot.Take(m.Layout.Scandir)
	if err != nil {
		return nil, hint.With(fmt.Errorf("read scandir: %w", err), "check --scandir / HERMES_S6_SCANDIR")
	}
	return inv.Profiles, nil
}

// Unregister records desired state stopped, stops p's gateway, takes its
// slot out of the scan, waits for its supervisors (service and logger) to
// exit and removes the directory. The next boot registers the profile again
// while its directory exists, down: an operator who removed a gateway does
// not expect a container restart to bring it back up.
func (m *Manager) Unregister(ctx context.Context, p string, w Wait) error {
	if err := m.prepare(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, true, func(deadline time.Time) error { return m.unregister(ctx, p, deadline) })
}

func (m *Manager) unregister(ctx context.Context, p string, deadline time.Time) error {
	name := profile.SlotName(p)
	dir := m.Layout.SlotDir(p)
	// A profile whose directory was removed has nowhere to record its
	// state; its slot goes all the same (doctor's fix for such a slot).
	if _, err := os.Stat(m.Layout.ProfileDir(p)); errors.Is(err, fs.ErrNotExist) {
		if err := slot.SetDown(dir, true); err != nil {
			return err
		}
	} else if err := m.record(p, state.Stopped); err != nil {
		return err
	}
	if ok, _ := s6.Supervised(dir); ok {
		if err := m.Tools.Down(ctx, dir, s6.NoWait, 0); err != nil {
			return err
		}
		if err := m.Tools.WaitDown(ctx, s6.Remaining(deadline), dir); err != nil {
			return err
		}
	}
	hidden, err := slot.Hide(m.Layout.Scandir, name)
	if err != nil {
		return fmt.Errorf("unregister %s: %w", name, err)
	}
	if err := m.Tools.RescanPrune(ctx, m.Layout.Scandir); err != nil {
		return fmt.Errorf("unregister %s: %w (the slot is hidden at %s)", name, err, hidden)
	}
	// The service's supervisor exits first. s6-svscan prunes a logger's
	// supervisor on a scan after that (seen with s6 2.11 when no other
	// command rescanned: the logger lingered until the timeout), so the
	// prune is asked again, every half second, until it is gone.
	if err := waitGone(ctx, hidden, deadline); err != nil {
		return fmt.Errorf("unregister %s: %w", name, err)
	}
	logDir, asked := filepath.Join(hidden, "log"), time.Now()
	err = s6.Until(ctx, deadline, "the supervisor of "+logDir+" to exit", func() (bool, error) {
		gone, err := s6.SupervisorGone(logDir)
		if gone || err != nil {
			return gone, err
		}
		if time.Since(asked) >= reprune {
			asked = time.Now()
			if err := m.Tools.RescanPrune(ctx, m.Layout.Scandir); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("unregister %s: %w", name, err)
	}
	if err := os.RemoveAll(hidden); err != nil {
		return fmt.Errorf("unregister %s: %w", name, err)
	}
	m.Log.Info("slot removed", "slot", name)
	return nil
}

// waitGone polls until no s6-supervise listens on dir.
// reprune is how often unregister asks s6-svscan again to prune a hidden
// slot's logger.
const reprune = 500 * time.Millisecond

func waitGone(ctx context.Context, dir string, deadline time.Time) error {
	return s6.Until(ctx, deadline, "the supervisor of "+dir+" to exit", func() (bool, error) {
		return s6.SupervisorGone(dir)
	})
}

// Reshape re-renders a registered slot with the manager's settings, keeping
// its down file; an unchanged slot is not touched.
func (m *Manager) Reshape(ctx context.Context, p string, w Wait) error {
	if err := m.checkName(p, false); err != nil {
		return err
	}
	if err := m.checkRegistered(p); err != nil {
		return err
	}
	return m.locked(ctx, p, w, true, func(time.Time) error {
		res, err := m.Install(p, false, false)
		if err == nil && res != slot.Unchanged {
			m.Log.Info("slot "+res.String(), "slot", profile.SlotName(p))
		}
		return err
	})
}
