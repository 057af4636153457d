package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// svstatFields is the field list hermes-s6 status asks s6-svstat for.
const svstatFields = "up,wantedup,normallyup,ready,pid,exitcode,signal,updownfor"

// fine is the harness's poll interval while a measured wait runs.
const fine = 100 * time.Microsecond

// errRows marks every row of a benchmark with err.
func errRows(rows []row, err error) []row {
	for i := range rows {
		if rows[i].err == nil && rows[i].skip == "" && len(rows[i].subject) == 0 {
			rows[i].err = err
		}
	}
	return rows
}

// lab is one benchmark's tree, home and command builders.
type lab struct {
	b    *bench
	t    *tree
	home string
	env  []string
}

func (b *bench) newLab(name string) (*lab, error) {
	home, err := freshDir(b.ws.homeDir, name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(home, "standin"), 0o755); err != nil {
		return nil, err
	}
	t, err := startTree(b.cfg.s6bin, filepath.Join(b.ws.scan, name))
	if err != nil {
		return nil, err
	}
	return &lab{b: b, t: t, home: home, env: b.env(t.scandir, home)}, nil
}

func (l *lab) close() {
	l.t.stop()
	os.RemoveAll(l.home)
}

func (l *lab) hermes(args ...string) proc {
	return proc{argv: append([]string{l.b.cfg.hermesS6}, args...), env: l.env}
}

func (l *lab) tool(name string, args ...string) proc {
	return proc{argv: append([]string{filepath.Join(l.b.cfg.s6bin, name)}, args...), env: l.env}
}

// script is a baseline script. It renders hermes-s6's own path into the
// dashboard's readiness check, as hermes-s6 does (its executable's path).
func (l *lab) script(name string, args ...string) proc {
	env := append(slices.Clone(l.env), "BASELINE_HERMES_S6="+l.b.cfg.hermesS6)
	return proc{argv: append([]string{filepath.Join(l.b.cfg.baseline, name)}, args...), env: env}
}

func (l *lab) slot(p string) string { return filepath.Join(l.t.scandir, "gateway-"+p) }

// registered makes profile p, registers it with hermes-s6 (untimed) and
// waits until s6-supervise has its slot, which it returns.
func (l *lab) registered(ctx context.Context, p string) (string, error) {
	if err := makeProfile(l.home, p, ""); err != nil {
		return "", err
	}
	if err := l.hermes("register", "--profile", p).must(ctx); err != nil {
		return "", err
	}
	slot := l.slot(p)
	if !pollUntil(10*time.Second, time.Millisecond, func() bool { return supervised(slot) }) {
		return "", fmt.Errorf("%s never supervised", slot)
	}
	return slot, nil
}

// awaitStarts waits until the stand-in gateway has recorded more than n
// starts.
func (l *lab) awaitStarts(n int) error {
	if !pollUntil(10*time.Second, time.Millisecond, func() bool { return starts(l.home) > n }) {
		return fmt.Errorf("%w waiting for the stand-in gateway to start (s6-svscan output: %s)", errTimeout, l.t.output())
	}
	return nil
}

// status: 1a-1v, hermes-s6 status --profile P against what any Go status
// that runs the real s6-svstat costs (1g, the target's reference) and
// against a bare s6-svstat. For a slot down, six sides take turns in
// rotating order (hermes-s6 status, the 1g floor, bare s6-svstat, the
// empty Go program, hermes-s6 version and the linked floor 1h); for a
// slot running, the first three. Every ratio pairs samples of the same
// round.
func (b *bench) status(ctx context.Context) []row {
	rows := []row{
		{id: "1a", name: "status --profile P, slot down", goal: atMost, target: 1.25, paired: true, refName: "1g"},
		{id: "1b", name: "status --profile P, slot running", goal: atMost, target: 1.25, paired: true, refName: "1g"},
		{id: "1c", name: "  … slot down, vs bare s6-svstat", goal: info, paired: true},
		{id: "1d", name: "  … slot running, vs bare s6-svstat", goal: info, paired: true},
		{id: "1f", name: "  floor: an empty static Go program", goal: info, paired: true},
		{id: "1g", name: "  floor: a Go program that only runs s6-svstat", goal: info, paired: true},
		{id: "1h", name: "  floor: 1g linked with hermes-s6's packages", goal: info, paired: true, refName: "1g"},
		{id: "1v", name: "  hermes-s6 version: its start-up alone", goal: info, paired: true, refName: "1f"},
	}
	const r1a, r1b, r1c, r1d, r1f, r1g, r1h, r1v = 0, 1, 2, 3, 4, 5, 6, 7
	b.progress("status: hermes-s6 status vs a Go program running s6-svstat vs s6-svstat -o …")
	l, err := b.newLab("status")
	if err != nil {
		return errRows(rows, err)
	}
	defer l.close()
	const p = "bench"
	slot, err := l.registered(ctx, p)
	if err != nil {
		return errRows(rows, err)
	}
	svstat := l.tool("s6-svstat", "-o", svstatFields, slot)
	side := func(pr proc, want string) func() (sample, error) {
		return func() (sample, error) {
			d, out, err := pr.timed(ctx)
			if err == nil && !strings.Contains(out, want) {
				err = fmt.Errorf("%s: unexpected output %q (want %q in it)", filepath.Base(pr.argv[0]), out, want)
			}
			return sample{d: d}, err
		}
	}
	sides := func(up string) []func() (sample, error) {
		return []func() (sample, error){
			side(l.hermes("status", "--profile", p), "gateway-"+p),
			side(proc{argv: append([]string{b.cfg.floor}, svstat.argv...), env: l.env}, up+" "),
			side(svstat, up+" "),
			side(proc{argv: []string{b.cfg.floor}, env: l.env}, ""),
			side(l.hermes("version"), "hermes-s6 "),
			side(proc{argv: append([]string{b.cfg.floorLinked}, svstat.argv...), env: l.env}, up+" "),
		}
	}
	const h, g, sv, f, v, gl = 0, 1, 2, 3, 4, 5
	res, err := rotate(ctx, b.cfg.scale(150), 10, sides("false")...)
	set := func(r, subject, ref int) {
		rows[r].subject, rows[r].ref, rows[r].err = durations(res[subject], ""), durations(res[ref], ""), err
	}
	set(r1a, h, g)
	set(r1c, h, sv)
	set(r1f, f, sv)
	set(r1g, g, sv)
	set(r1h, gl, g)
	set(r1v, v, f)
	n := starts(l.home)
	if err := l.hermes("start", "--profile", p).must(ctx); err != nil {
		rows[r1b].err, rows[r1d].err = err, err
		return rows
	}
	if err := l.awaitStarts(n); err != nil {
		rows[r1b].err, rows[r1d].err = err, err
		return rows
	}
	res, err = rotate(ctx, b.cfg.scale(150), 10, sides("true")[:3]...)
	set(r1b, h, g)
	set(r1d, h, sv)
	rows[r1a].note = "reference: 1g, bench/floor running s6-svstat -o " + svstatFields + " SLOT and copying its line (whole process, both sides)"
	rows[r1c].note = "reference: s6-svstat -o " + svstatFields + " SLOT alone, as are 1d, 1f and 1g's"
	rows[r1f].note = "bench/floor, `func main() {}` built static like hermes-s6: what any Go command pays on this machine before doing anything"
	rows[r1g].note = "bench/floor running s6-svstat and copying its line: the least a status that runs the real s6-svstat (README: Commands; docs/lifecycle.md) can cost, and rows 1a/1b's reference"
	rows[r1h].note = "bench/floor built with -tags benchlinked, running s6-svstat as 1g does: every package hermes-s6 links (urfave/cli, text/template, encoding/json, os/exec, net, …) initialised before main, nothing else of hermes-s6: what that package set alone costs a status, against 1g"
	rows[r1v].note = "`hermes-s6 version` against the empty Go program of 1f: what hermes-s6's start-up (runtime, package initialisation, the CLI) costs before any command runs"
	return rows
}

// register: 2, hermes-s6 register vs bench/baseline/register.sh, each
// until s6-supervise listens on the new slot.
func (b *bench) register(ctx context.Context) []row {
	rows := []row{
		{id: "2", name: "register one slot, until supervised", goal: atLeast, target: 2, paired: true},
		{id: "2c", name: "  … command alone", goal: info, paired: true, speedup: true},
		{id: "2f", name: "  floor: empty Go process + rename + rescan FIFO", goal: info, paired: true, speedup: true},
	}
	b.progress("register: hermes-s6 register vs bench/baseline/register.sh")
	l, err := b.newLab("register")
	if err != nil {
		return errRows(rows, err)
	}
	defer l.close()
	const p = "reg"
	if err := makeProfile(l.home, p, ""); err != nil {
		return errRows(rows, err)
	}
	slot := l.slot(p)
	var files [2]map[string]string
	side := func(i int, pr proc) func() (sample, error) {
		return func() (sample, error) {
			t0 := time.Now()
			dc, _, err := pr.timed(ctx)
			if err != nil {
				return sample{}, err
			}
			if !pollUntil(10*time.Second, fine, func() bool { return supervised(slot) }) {
				return sample{}, fmt.Errorf("%s: %w waiting for s6-supervise on %s", pr.argv[0], errTimeout, slot)
			}
			d := time.Since(t0)
			if files[i] == nil {
				files[i] = slotFiles(slot, l.home)
			}
			// Not timed: take the slot away for the next run.
			return sample{d: d, extra: map[string]time.Duration{"cmd": dc}}, l.hermes("unregister", "--profile", p).must(ctx)
		}
	}
	as, bs, err := interleave(ctx, b.cfg.scale(25), 2, side(0, l.hermes("register", "--profile", p)), side(1, l.script("register.sh", p)))
	r := &rows[0]
	r.subject, r.ref, r.err = durations(as, ""), durations(bs, ""), err
	r.note = "reference: bench/baseline/register.sh (POSIX sh: validate, stage, printf the files, chmod, mv, s6-svscanctl -a, poll s6-svok back to back)"
	if d := diffFiles(files[0], files[1]); d != "" {
		r.note += "; PARITY: the baseline's slot differs from hermes-s6's: " + d
	} else if err == nil {
		r.note += "; its slot is byte-identical to hermes-s6's"
	}
	rows[1].subject, rows[1].ref, rows[1].err = durations(as, "cmd"), durations(bs, "cmd"), err
	rows[1].note = "hermes-s6 register returns once s6-svscan is told; the baseline waits for s6-supervise itself"

	// The floor: the least any Go register can cost here, an empty Go
	// process plus the pickup itself (slot prebuilt, untimed; renamed into
	// place and 'a' written on .s6-svscan/control, timed until supervised).
	stage := filepath.Join(l.t.scandir, ".bench-stage")
	floor := func() (sample, error) {
		if err := l.hermes("render", "--profile", p, "--out", stage).must(ctx); err != nil {
			return sample{}, err
		}
		t0 := time.Now()
		if _, _, err := (proc{argv: []string{b.cfg.floor}, env: l.env}).timed(ctx); err != nil {
			return sample{}, err
		}
		if err := os.Rename(stage, slot); err != nil {
			return sample{}, err
		}
		if err := writeFIFO(filepath.Join(l.t.scandir, ".s6-svscan", "control"), "a"); err != nil {
			return sample{}, err
		}
		if !pollUntil(10*time.Second, fine, func() bool { return supervised(slot) }) {
			return sample{}, fmt.Errorf("floor: %w waiting for s6-supervise on %s", errTimeout, slot)
		}
		d := time.Since(t0)
		return sample{d: d}, l.hermes("unregister", "--profile", p).must(ctx)
	}
	as, bs, err = interleave(ctx, b.cfg.scale(25), 2, floor, side(1, l.script("register.sh", p)))
	rows[2].subject, rows[2].ref, rows[2].err = durations(as, ""), durations(bs, ""), err
	rows[2].note = "the best speed-up any Go register could reach here: its ratio caps row 2's"
	return rows
}

// cycle: 3, hermes-s6 start + stop vs s6-svc -u -wu + s6-svc -d -wD. Each
// start is followed, untimed, by a wait until the stand-in gateway runs, so
// both sides stop a fully started gateway.
func (b *bench) cycle(ctx context.Context) []row {
	rows := []row{
		{id: "3", name: "start + stop cycle", goal: atMost, target: 1.3, paired: true},
		{id: "3s", name: "  start alone", goal: info, paired: true},
		{id: "3d", name: "  stop alone", goal: info, paired: true},
		{id: "3f", name: "  floor: a Go program that only runs s6-svc and s6-svwait", goal: info, paired: true},
	}
	b.progress("cycle: hermes-s6 start+stop vs s6-svc -u -wu + s6-svc -d -wD")
	l, err := b.newLab("cycle")
	if err != nil {
		return errRows(rows, err)
	}
	defer l.close()
	const p = "cyc"
	slot, err := l.registered(ctx, p)
	if err != nil {
		return errRows(rows, err)
	}
	side := func(up, down proc) func() (sample, error) {
		return func() (sample, error) {
			n := starts(l.home)
			d1, _, err := up.timed(ctx)
			if err != nil {
				return sample{}, err
			}
			if err := l.awaitStarts(n); err != nil {
				return sample{}, err
			}
			d2, _, err := down.timed(ctx)
			if err != nil {
				return sample{}, err
			}
			if upPID(slot) != 0 {
				return sample{}, fmt.Errorf("%s still up after %s", slot, strings.Join(down.argv, " "))
			}
			return sample{d: d1 + d2, extra: map[string]time.Duration{"start": d1, "stop": d2}}, nil
		}
	}
	reference := side(l.tool("s6-svc", "-u", "-wu", slot), l.tool("s6-svc", "-d", "-wD", slot))
	as, bs, err := interleave(ctx, b.cfg.scale(60), 3,
		side(l.hermes("start", "--profile", p), l.hermes("stop", "--profile", p)), reference)
	for i, key := range []string{"", "start", "stop"} {
		rows[i].subject, rows[i].ref, rows[i].err = durations(as, key), durations(bs, key), err
	}
	rows[0].note = "reference: s6-svc -u -wu SLOT, then s6-svc -d -wD SLOT (stand-in gateway; each stop waits for a fully started gateway, untimed)"

	// The floor: what hermes-s6 start and stop run (s6-svwait and s6-svc
	// side by side), from a Go program that does nothing else.
	floor := func(cmd, wait string) proc {
		svwait := l.tool("s6-svwait", wait, "-t", "10000", slot)
		svc := l.tool("s6-svc", cmd, slot)
		argv := append(append(append([]string{l.b.cfg.floor}, svwait.argv...), "--"), svc.argv...)
		return proc{argv: argv, env: l.env}
	}
	as, bs, err = interleave(ctx, b.cfg.scale(60), 3, side(floor("-u", "-u"), floor("-d", "-D")), reference)
	rows[3].subject, rows[3].ref, rows[3].err = durations(as, ""), durations(bs, ""), err
	rows[3].note = "bench/floor running s6-svwait and s6-svc at once, for start then stop: the least a start + stop that drives the real tools from Go can cost: row 3 cannot go below it"
	return rows
}
