// Package reconcile is the container's boot hook, `hermes-s6 reconcile`
// (docs/reconcile.md). s6-overlay runs it from /etc/cont-init.d as root, after the
// volume is prepared and before the CMD; it rebuilds every slot in the
// scandir (a tmpfs wiped at each container start) from the desired state
// persisted on the volume, so a container restart brings back exactly the
// gateways that were running, and nothing else.
//
// # What it does, in order
//
//  1. Root work, the only work root does itself: the scandir, .s6-svscan's
//     control FIFO and lock are handed to the service account and
//     .s6-svscan made traversable (0711), not recursively; leftover staging
//     dirs of a crashed hermes-s6 are removed.
//  2. The container's CMD is read from HERMES_S6_CMD, a JSON array that the
//     entrypoint exports before exec'ing /init (under s6-overlay v3,
//     cont-init.d runs before the CMD is spawned, so reconcile cannot see
//     the CMD any other way; s6-overlay passes the container environment
//     on). A dashboard container stops after step 1. Without HERMES_S6_CMD
//     reconcile assumes a gateway container and migrates nothing.
//  3. Phase 1 on the volume: profiles (default first, then valid named
//     ones, sorted; invalid or SOUL.md-less directories and profiles/default
//     are skipped with a warning), their desired state, the legacy
//     migration (docs/reconcile.md: Legacy migration) and the removal of stale gateway.pid and
//     processes.json.
//  4. Slots: desired state running → installed up, anything else (stopped,
//     none, corrupt) → installed with a down file. An existing slot is
//     brought in step file by file; an unchanged one is not touched, and
//     nothing is ever restarted. One failing slot never stops the others.
//     Then the dashboard slot, up when HERMES_DASHBOARD is truthy.
//  5. Phase 2 on the volume: one line per slot appended to
//     $HERMES_HOME/logs/container-boot.log (rotated to .1 at 256 KiB) and
//     printed on stdout.
//  6. One `s6-svscanctl -a` when slots were created and a tree runs (not
//     one per slot); with no tree answering, a warning and exit 0:
//     s6-svscan picks the slots up when it starts.
//
// # Privilege split
//
// Everything under HERMES_HOME is read and written as the service account,
// so root never follows a symlink planted on the volume. Go cannot change
// the credentials of a single thread, so when reconcile runs as root with a
// service account, the volume phases run in a child process: a re-exec of
// this same binary (`hermes-s6 reconcile volume`, hidden) with the
// account's uid, gid and groups, speaking one JSON request and one JSON
// answer over stdin/stdout (AsAccount, ServeVolume). This re-exec of
// hermes-s6 itself is the one exec outside package s6, which still runs
// every s6 tool. Without root, or without a service account, the same code
// runs in-process (Local).
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nousresearch/hermes-s6/internal/cmdline"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/lock"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// Environment read by reconcile.
const (
	// CmdEnv holds the container's CMD (cmdline.Env).
	CmdEnv = cmdline.Env
	// DashboardEnv, when truthy, brings the dashboard slot up.
	DashboardEnv     = "HERMES_DASHBOARD"
	DashboardHostEnv = "HERMES_DASHBOARD_HOST"
	DashboardPortEnv = "HERMES_DASHBOARD_PORT"
)

// Dashboard defaults (docs/reconcile.md: The dashboard slot).
const (
	DefaultDashboardHost = "127.0.0.1"
	DefaultDashboardPort = 9119
)

// SvscanDefaultMax is how many slots s6-svscan supervises with its
// default flags (docs/reconcile.md: Limits): in s6 2.11 the default -c 500 counts service
// directories, and a slot is one directory with two supervisors (service
// and logger); newer s6 releases also count in services (-C). About 500
// logged slots either way.
const SvscanDefaultMax = 500

// WarnSlots is the slot count from which reconcile warns (80 %).
const WarnSlots = SvscanDefaultMax * 8 / 10

// Options are everything Run needs: the shared Env (its Getenv reads the
// container environment) and what only reconcile has.
type Options struct {
	config.Env
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Out receives the boot lines (or, in a dry run, the plan).
	Out io.Writer
	// Volume does the work on HERMES_HOME; nil picks AsAccount as root
	// with a non-root service account, else Local.
	Volume Volume
}

// Action is what reconcile did with a slot, as the boot log says it.
type Action string

const (
	Started    Action = "started"    // installed up: s6 starts it on pickup
	Registered Action = "registered" // installed with a down file
)

// SlotResult is one reconciled slot.
type SlotResult struct {
	Name    string // slot directory name
	Profile string // "" for the dashboard
	Prior   state.Desired
	Action  Action
	Change  slot.Result // what happened (or would) to the slot's files
	Err     error
}

// Summary is what Run did.
type Summary struct {
	// DashboardContainer: the CMD is the dashboard, only step 1 ran.
	DashboardContainer bool
	Slots              []SlotResult
	// Lines are the boot-log lines (empty in a dry run).
	Lines []string
	// Rescanned: s6-svscanctl -a was sent.
	Rescanned bool
	// LeftOut are the profiles whose slots did not fit in s6-svscan's
	// limit (not installed).
	LeftOut []string
	// Role is the CMD's role when it is not a gateway container
	// (cmdline.OtherRoles); DashboardContainer is then set too.
	Role string
	// NotHere are the profiles the selection gives to other containers,
	// with why (not installed).
	NotHere []NotHere
	// Foreground is the profile the CMD runs in the foreground: its slot is
	// installed down whatever its desired state.
	Foreground string
}

// NotHere is a profile this container does not supervise, and why.
type NotHere struct{ Profile, Why string }

func (o *Options) defaults() {
	o.Env.Defaults()
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Volume == nil {
		o.Volume = Local{}
		if a := o.Identity.DropsTo(); a != nil {
			o.Volume = &AsAccount{Account: a}
		}
	}
}

// Run reconciles the scandir with the volume. The returned error is nil
// when every slot is in place, even when no tree was there to be told; it
// names every slot that failed otherwise.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o.defaults()
	r := &run{Options: o, sum: &Summary{}}
	err := r.run(ctx)
	if c, ok := r.Volume.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("volume worker: %w", cerr)
		}
	}
	return r.sum, err
}

type run struct {
	Options
	sum  *Summary
	errs []error
	// lines holds each installed slot's boot-log line until emit.
	lines map[string]string
	// announced counts the created slots a rescan already told s6-svscan of.
	announced int
	// foreground is the profile the CMD runs in the foreground, "" when
	// none.
	foreground string
	// capacity and budget are s6-svscan's limit and the gateway slots
	// that fit in it (fit).
	capacity Capacity
	budget   int
}

// plan prints one line of a dry run's plan.
func (r *run) plan(format string, a ...any) {
	fmt.Fprintf(r.Out, "dry-run: "+format+"\n", a...)
}

func (r *run) run(ctx context.Context) error {
	scandir := r.Layout.Scandir
	if !r.DryRun {
		// Normally s6-overlay made it; created here it is handed over too.
		if err := os.MkdirAll(scandir, 0o755); err != nil {
			return fmt.Errorf("scandir: %w", err)
		}
	}
	// 1. Root work.
	changes, err := rootWork(scandir, r.Identity, r.DryRun)
	for _, c := range changes {
		if r.DryRun {
			r.plan("%s", c)
		} else {
			r.Log.Info("scandir kept root's", "change", c)
		}
	}
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("prepare scandir %s: %w", scandir, err))
	}
	r.sweep(ctx)

	// 2. The container's CMD: another role (dashboard, serve, gui,
	// desktop) reconciles no gateway; a foreground gateway keeps its
	// profile's slot down.
	cmd, known := r.containerCmd()
	if role := cmdline.Role(cmd); known && role != "" {
		r.sum.DashboardContainer = true
		r.sum.Role = role
		fmt.Fprintf(r.Out, "reconcile: %s container (CMD %s): scandir prepared, no slots reconciled\n", role, strings.Join(cmd, " "))
		return r.result()
	}
	migrate := r.migration(cmd, known)
	r.foreground = cmdline.Foreground(cmd, r.Getenv)
	if profile.Validate(r.foreground) != nil {
		r.foreground = ""
	}

	// 3. Phase 1 on the volume.
	rep, err := r.Volume.Scan(ctx, ScanRequest{
		Home:    r.Layout.Home,
		DryRun:  r.DryRun,
		Migrate: migrate,
		Live:    r.liveProfiles(),
		Now:     r.Now().Unix(),
	})
	if err != nil {
		// Without the volume no gateway's state is known; the dashboard
		// does not depend on it.
		r.errs = append(r.errs, r.volumeError(err))
		r.dashboard(ctx)
		r.rescan(ctx)
		return r.result()
	}
	r.report(rep, migrate)

	// 4. Slots. The gateways wanted up are created last: s6-svscan starts
	// new slots in readdir order, which on the tmpfs of a scandir is newest
	// first, so one rescan at the end starts them before the parked ones
	// (measured: every wanted slot of 100 profiles up ~1.3x sooner, and the
	// command returns before s6-svscan starts forking). The report keeps
	// Boot order (docs/reconcile.md): default first, then sorted, then the dashboard.
	// Never more slots than s6-svscan supervises: past its limit it
	// supervises none of the new ones.
	profiles, left := r.fit(r.selected(rep.Profiles))
	var up, rest []ProfileState
	for _, ps := range profiles {
		if ps.Desired == state.Running {
			up = append(up, ps)
		} else {
			rest = append(rest, ps)
		}
	}
	for _, ps := range rest {
		r.gateway(ctx, ps)
	}
	for _, ps := range up {
		r.gateway(ctx, ps)
	}
	r.dashboard(ctx)
	r.emit(rep.Profiles)
	r.leaveOut(left)

	// 5. Phase 2 on the volume: the boot log.
	if !r.DryRun && len(r.sum.Lines) > 0 {
		blr, err := r.Volume.AppendBootLog(ctx, BootLogRequest{Home: r.Layout.Home, Lines: r.sum.Lines})
		switch {
		case err != nil:
			r.errs = append(r.errs, err)
		case blr.Rotated:
			r.Log.Info("boot log rotated", "path", blr.Path, "old", blr.Path+".1")
		}
	}

	// 6. One rescan for every slot created, last: s6-svscan then forks the
	// supervisors of every new slot at once, and work still to do here
	// would compete with that for the CPU (measured: 100 profiles returned
	// in ~60 ms this way, ~100-250 ms with the rescan before the boot log).
	r.rescan(ctx)
	r.checkCount()
	return r.result()
}

// volumeError explains a volume phase that could not run at all.
func (r *run) volumeError(err error) error {
	err = fmt.Errorf("read the volume %s: %w", r.Layout.Home, err)
	if a, ok := r.Volume.(*AsAccount); ok {
		return hint.With(err, fmt.Sprintf("reconcile works on the volume as the service account %s (uid %d): it must be able to execute this hermes-s6 binary and to read and write HERMES_HOME", a.Account.Name, a.Account.UID))
	}
	return err
}

func (r *run) result() error {
	var failed []string
	for _, s := range r.sum.Slots {
		if s.Err != nil {
			failed = append(failed, s.Name)
		}
	}
	errs := r.errs
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("%d of %d slots failed: %s", len(failed), len(r.sum.Slots), strings.Join(failed, ", ")))
	}
	return errors.Join(errs...)
}

// sweep removes leftover staging and removal directories. A removal dir
// whose supervisors still run (an unregister killed between hiding the slot
// and pruning it) is pruned first; and each leftover is removed under its
// slot's lock, so a live register or unregister keeps its own.
func (r *run) sweep(ctx context.Context) {
	dirs, err := leftovers(r.Layout.Scandir)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("sweep scandir: %w", err))
		return
	}
	if r.DryRun {
		for _, d := range dirs {
			r.plan("remove leftover %s", d)
		}
		return
	}
	if len(dirs) == 0 {
		return
	}
	var live []string
	stuck := map[string]bool{}
	for _, d := range dirs {
		for _, sv := range []string{d, filepath.Join(d, "log")} {
			if gone, _ := s6.SupervisorGone(sv); !gone {
				live = append(live, sv)
			}
		}
	}
	if len(live) > 0 && s6.TreeRunning(r.Layout.Scandir) == nil {
		if err := r.Tools.RescanPrune(ctx, r.Layout.Scandir); err != nil {
			r.errs = append(r.errs, fmt.Errorf("sweep scandir: prune hidden slots: %w", err))
		}
		deadline := time.Now().Add(pruneTimeout)
		for _, sv := range live {
			err := s6.Until(ctx, deadline, "the supervisor of hidden slot "+sv+" to exit", func() (bool, error) {
				return s6.SupervisorGone(sv)
			})
			if err != nil {
				// Removing a directory whose supervisor still runs pulls
				// the files from under it: leave it for the next boot.
				r.errs = append(r.errs, fmt.Errorf("sweep scandir: %w: %s left in place", err, filepath.Dir(filepath.Clean(sv))))
				stuck[leftoverDir(sv)] = true
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
	for _, d := range dirs {
		if stuck[d] {
			continue
		}
		name := leftoverSlot(filepath.Base(d))
		release, err := lock.Slot(ctx, r.Layout.Scandir, name, lockTimeout, r.Identity, r.Log)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("sweep scandir: %w", err))
			continue
		}
		err = os.RemoveAll(d)
		release()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.errs = append(r.errs, fmt.Errorf("sweep scandir: %w", err))
			continue
		}
		r.Log.Info("leftover staging dir removed", "dir", d)
	}
}

// pruneTimeout bounds the wait for a hidden slot's supervisors to exit.
const pruneTimeout = 10 * time.Second

// leftoverDir is the leftover directory a supervised dir (it or its log/)
// belongs to.
func leftoverDir(sv string) string {
	if filepath.Base(sv) == "log" {
		return filepath.Dir(sv)
	}
	return sv
}

// leftoverSlot is the slot a staging or removal dir belongs to:
// PREFIX<slot>.<random>.
func leftoverSlot(base string) string {
	for _, p := range []string{slot.StagingPrefix, slot.RemovingPrefix} {
		if rest, ok := strings.CutPrefix(base, p); ok {
			if i := strings.LastIndexByte(rest, '.'); i > 0 {
				return rest[:i]
			}
			return rest
		}
	}
	return base
}

// containerCmd reads HERMES_S6_CMD. known is false when it is unset or
// unreadable (then reconcile assumes a gateway container, no migration).
func (r *run) containerCmd() (cmd []string, known bool) {
	raw := r.Getenv(CmdEnv)
	if raw == "" {
		return nil, false
	}
	if err := json.Unmarshal([]byte(raw), &cmd); err != nil || cmd == nil {
		r.Log.Warn(CmdEnv+" is not a JSON array of strings: assuming a gateway container, no legacy migration", "value", raw)
		return nil, false
	}
	return cmd, true
}

// migration returns the profile the legacy migration applies to, "" when
// none: the CMD must be a `gateway run` that the shim would supervise.
func (r *run) migration(cmd []string, known bool) string {
	if !known {
		return ""
	}
	g, ok := cmdline.ParseGatewayRun(cmdline.HermesArgs(cmd))
	if !ok {
		return ""
	}
	why := ""
	switch {
	case g.OptedOut(r.Getenv):
		why = "the CMD opts out of supervision (" + cmdline.NoSuperviseFlag + " or " + cmdline.NoSuperviseEnv + ")"
	case len(g.Extra) > 0:
		why = "the CMD has arguments a supervised slot cannot carry: " + strings.Join(g.Extra, " ")
	case profile.Validate(g.Profile) != nil:
		why = "the CMD's profile is not a valid name: " + strconv.Quote(g.Profile)
	}
	if why != "" {
		r.Log.Info("no legacy migration: "+why, "cmd", strings.Join(cmd, " "))
		return ""
	}
	return g.Profile
}

// liveProfiles lists the gateway slots that a supervisor already runs (a
// second reconcile on a live tree): their pid files are not stale.
func (r *run) liveProfiles() []string {
	inv, err := slot.Take(r.Layout.Scandir)
	if err != nil {
		return nil
	}
	var live []string
	for _, p := range inv.Profiles {
		if ok, _ := s6.Supervised(r.Layout.SlotDir(p)); ok {
			live = append(live, p)
		}
	}
	return live
}

// report logs what phase 1 found.
func (r *run) report(rep *ScanReport, migrate string) {
	for _, s := range rep.Skipped {
		r.Log.Warn("not a profile, skipped", "dir", s.Dir, "reason", s.Reason)
	}
	for _, ps := range rep.Profiles {
		if ps.Problem != "" {
			r.Log.Warn("corrupt desired state, slot registered down (the file is left as it is)", "profile", ps.Profile, "detail", ps.Problem)
		}
		if ps.Migrated {
			if r.DryRun {
				r.plan("migrate profile=%s to desired state running (migrated_from=%s)", ps.Profile, MigratedFrom)
			} else {
				r.Log.Info("legacy `gateway run` container: desired state running recorded", "profile", ps.Profile, "migrated_from", MigratedFrom)
			}
		}
	}
	if migrate != "" && rep.NoMigration != "" {
		r.Log.Info("no legacy migration: "+rep.NoMigration, "profile", migrate)
	}
	for _, p := range rep.Removed {
		if r.DryRun {
			r.plan("remove stale %s", p)
		} else {
			r.Log.Info("stale file removed", "path", p)
		}
	}
	for _, e := range rep.Errors {
		r.errs = append(r.errs, errors.New(e))
	}
}

// gateway installs one profile's slot.
func (r *run) gateway(ctx context.Context, ps ProfileState) {
	res := SlotResult{Name: profile.SlotName(ps.Profile), Profile: ps.Profile, Prior: ps.Desired, Action: Registered}
	if ps.Desired == state.Running {
		res.Action = Started
	}
	if ps.Migrated {
		res.Prior = state.None
	}
	if ps.Profile == r.foreground && res.Action == Started {
		// The CMD runs this profile's gateway itself: its slot stays down,
		// the desired state stays as it is, and the foreground gateway
		// takes the same lease (docs/scale-out.md).
		res.Action = Registered
		r.Log.Info("the CMD runs this profile in the foreground: its slot is installed down", "profile", ps.Profile)
	}
	c := r.Slot
	c.Kind, c.Profile, c.Down = render.Gateway, ps.Profile, res.Action != Started
	r.install(ctx, &res, c, "profile="+ps.Profile)
}

// selected keeps the profiles this container supervises (docs/scale-out.md):
// the selection's, plus the foreground CMD's profile, whose slot holds the
// lease for the foreground gateway. The rest are reported, not installed.
func (r *run) selected(ps []ProfileState) []ProfileState {
	r.sum.Foreground = r.foreground
	if r.Selection.All() {
		return ps
	}
	if r.DryRun {
		r.plan("selection: %s", r.Selection)
	}
	keep := ps[:0:0]
	for _, p := range ps {
		ok, why := r.Selection.Pick(p.Profile)
		if !ok && p.Profile == r.foreground {
			ok = true
		}
		if ok {
			keep = append(keep, p)
			continue
		}
		r.sum.NotHere = append(r.sum.NotHere, NotHere{p.Profile, why})
		if r.DryRun {
			r.plan("profile=%s not here: %s", p.Profile, why)
		}
	}
	if !r.DryRun {
		r.Log.Info("selection", "selection", r.Selection.String(), "here", len(keep), "elsewhere", len(r.sum.NotHere))
	}
	return keep
}

// dashboard installs the dashboard slot (docs/reconcile.md: The dashboard slot).
func (r *run) dashboard(ctx context.Context) {
	res := SlotResult{Name: render.DashboardSlot, Prior: state.None, Action: Registered}
	if cmdline.Truthy(r.Getenv(DashboardEnv)) {
		res.Action = Started
	}
	c := r.Slot
	c.Kind, c.Down = render.Dashboard, res.Action != Started
	var err error
	if c.DashboardHost, c.DashboardPort, err = dashboardAddr(r.Getenv); err != nil {
		res.Err = err
		r.Log.Error("slot not installed", "slot", res.Name, "error", err.Error())
		r.sum.Slots = append(r.sum.Slots, res)
		return
	}
	r.install(ctx, &res, c, "slot="+render.DashboardSlot)
}

// dashboardAddr reads HERMES_DASHBOARD_HOST and HERMES_DASHBOARD_PORT.
func dashboardAddr(getenv func(string) string) (string, int, error) {
	host := strings.TrimSpace(getenv(DashboardHostEnv))
	if host == "" {
		host = DefaultDashboardHost
	}
	if strings.IndexFunc(host, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return "", 0, fmt.Errorf("%s=%q: want a host name or address", DashboardHostEnv, host)
	}
	port := DefaultDashboardPort
	if s := strings.TrimSpace(getenv(DashboardPortEnv)); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%s=%q: want a port number 1-65535", DashboardPortEnv, s)
		}
		port = n
	}
	return host, port, nil
}

// installLocked installs s holding its slot's lock, so a reconcile run by
// hand never interleaves with an operator's start or stop of the slot.
func (r *run) installLocked(ctx context.Context, s *render.Slot, opts slot.Options) (slot.Result, error) {
	release, err := lock.Slot(ctx, r.Layout.Scandir, s.Name, lockTimeout, r.Identity, r.Log)
	if err != nil {
		return slot.Unchanged, err
	}
	defer release()
	return slot.Install(r.Layout.Scandir, s, opts)
}

// lockTimeout bounds the wait for a slot another command holds.
const lockTimeout = 30 * time.Second

// install renders c and installs (or, in a dry run, plans) the slot.
func (r *run) install(ctx context.Context, res *SlotResult, c render.Config, who string) {
	defer func() { r.sum.Slots = append(r.sum.Slots, *res) }()
	s, err := render.Render(c)
	if err != nil {
		res.Err = err
		r.Log.Error("slot not installed", "slot", res.Name, "error", err.Error())
		return
	}
	opts := slot.Options{Skeleton: r.Identity.Controller(), Root: r.Identity.Root(), SyncDown: true}
	if r.DryRun {
		res.Change, res.Err = slot.Plan(r.Layout.Scandir, s, opts)
	} else {
		res.Change, res.Err = r.installLocked(ctx, s, opts)
	}
	if res.Err != nil {
		r.Log.Error("slot not installed", "slot", res.Name, "error", res.Err.Error())
		return
	}
	line := fmt.Sprintf("%s prior_state=%s action=%s", who, res.Prior, res.Action)
	if r.DryRun {
		r.plan("%s change=%s", line, planWord[res.Change])
		return
	}
	if r.lines == nil {
		r.lines = map[string]string{}
	}
	r.lines[res.Name] = r.Now().UTC().Format(time.RFC3339) + " " + line
}

// emit puts the slot results in boot order (the gateways of profiles in
// order, then the dashboard) and prints each slot's boot-log line.
func (r *run) emit(profiles []ProfileState) {
	rank := map[string]int{render.DashboardSlot: len(profiles)}
	for i, ps := range profiles {
		rank[profile.SlotName(ps.Profile)] = i
	}
	sort.SliceStable(r.sum.Slots, func(i, j int) bool { return rank[r.sum.Slots[i].Name] < rank[r.sum.Slots[j].Name] })
	for _, res := range r.sum.Slots {
		if line, ok := r.lines[res.Name]; ok {
			r.sum.Lines = append(r.sum.Lines, line)
			fmt.Fprintln(r.Out, line)
		}
	}
}

var planWord = map[slot.Result]string{slot.Unchanged: "none", slot.Created: "create", slot.Updated: "update"}

// rescan sends the one s6-svscanctl -a that picks up every created slot.
func (r *run) rescan(ctx context.Context) {
	created := 0
	for _, s := range r.sum.Slots {
		if s.Err == nil && s.Change == slot.Created {
			created++
		}
	}
	// Only slots no earlier rescan announced count.
	created, r.announced = created-r.announced, created
	if created == 0 {
		return
	}
	scandir := r.Layout.Scandir
	err := s6.TreeRunning(scandir)
	if r.DryRun {
		if err == nil {
			r.plan("s6-svscanctl -a %s (%d new slots)", scandir, created)
		} else {
			r.plan("no rescan: no s6-svscan answers on %s; it picks the %d new slots up when it starts", scandir, created)
		}
		return
	}
	if err != nil {
		r.Log.Warn("slots written, but the rescan could not be sent: s6-svscan picks them up when it starts",
			"scandir", scandir, "new_slots", created, "reason", err.Error())
		return
	}
	if err := r.Tools.Rescan(ctx, scandir); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%d slots written, but s6-svscan was not told: %w", created, err))
		return
	}
	r.sum.Rescanned = true
}

// checkCount warns when the scandir nears what s6-svscan supervises with
// its default flags (docs/reconcile.md: Limits).
func (r *run) checkCount() {
	names := map[string]bool{}
	if inv, err := slot.Take(r.Layout.Scandir); err == nil {
		for _, n := range inv.Services {
			names[n] = true
		}
	}
	for _, s := range r.sum.Slots {
		if s.Err == nil {
			names[s.Name] = true
		}
	}
	if n := len(names); n >= WarnSlots {
		r.Log.Warn(fmt.Sprintf("%d service directories in the scandir: s6-svscan supervises at most about %d logged slots with its default flags", n, SvscanDefaultMax),
			"scandir", r.Layout.Scandir, "hint", "spread profiles over more containers, or run s6-svscan with a higher -c")
	}
}

// BootLine is the boot-log line format, for tests and docs:
// `<RFC 3339 UTC time> profile=P|slot=dashboard prior_state=S action=A`.
const BootLine = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (profile=[a-z0-9][a-z0-9_-]*|slot=dashboard) prior_state=(running|stopped|none|corrupt) action=(started|registered|left-out)$`
