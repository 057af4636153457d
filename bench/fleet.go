package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// fleetProfiles is how many profiles the tree of rows 5a-5g carries.
const fleetProfiles = 400

// fleet: 5a, 5b, 5f and 5g. `hermes-s6 health` and `hermes-s6 status` (every
// slot) on a tree of 400 profiles registered by `hermes-s6 reconcile` as
// a boot registers them (half desired running and up, half stopped and
// down, the desired states on the volume), against
// bench/baseline/status.sh, a POSIX sh loop of one s6-svstat -o … per
// slot on the same tree; 5g is that loop split into one loop per CPU, run
// side by side. The five sides take turns (rotating order) so
// the machine's drift hits them alike; every ratio is against the loop of
// the same round.
func (b *bench) fleet(ctx context.Context) []row {
	rows := []row{
		{id: "5a", name: fmt.Sprintf("health, %d profiles (half up, half stopped)", fleetProfiles), goal: atMost, target: 1, paired: true, refName: "sh"},
		{id: "5b", name: fmt.Sprintf("status, every slot (%d profiles)", fleetProfiles), goal: atMost, target: 1, paired: true, refName: "sh"},
		{id: "5f", name: "  floor: a Go program running every slot's s6-svstat, 1 per CPU", goal: info, paired: true, refName: "sh"},
		{id: "5g", name: "  floor: the sh loop dealt out to 1 sh loop per CPU", goal: info, paired: true, refName: "sh"},
	}
	b.progress("health: hermes-s6 health and status over %d profiles vs bench/baseline/status.sh", fleetProfiles)
	l, err := b.newLab("fleet")
	if err != nil {
		return errRows(rows, err)
	}
	defer l.close()
	slots, err := l.fleetTree(ctx, fleetProfiles)
	if err != nil {
		return errRows(rows, err)
	}

	health := l.hermes("health")
	status := l.hermes("status")
	loop := l.script("status.sh")
	split := l.script("status-split.sh", strconv.Itoa(runtime.NumCPU()))
	floor := proc{argv: []string{b.cfg.floor, fmt.Sprintf("-j%d", runtime.NumCPU())}, env: l.env}
	for _, s := range slots {
		floor.argv = append(floor.argv, "--")
		floor.argv = append(floor.argv, filepath.Join(b.cfg.s6bin, "s6-svstat"), "-o", svstatFields, s)
	}
	// Each side checks its output, so a side that does less than its
	// share (a slot missing, an unhealthy tree) is an error, not a win.
	lines := func(out string) int { return strings.Count(out, "\n") }
	wantHealthy := fmt.Sprintf("healthy: supervisor container, %d slot(s) checked", len(slots))
	side := func(p proc, check func(string) error) func() (sample, error) {
		return func() (sample, error) {
			d, out, err := p.timed(ctx)
			if err == nil {
				err = check(out)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", filepath.Base(p.argv[0])+" "+strings.Join(p.argv[1:min(2, len(p.argv))], " "), err)
			}
			return sample{d: d}, err
		}
	}
	sides := []func() (sample, error){
		side(health, func(out string) error {
			if !strings.HasPrefix(out, wantHealthy) {
				return fmt.Errorf("unexpected output %q (want %q)", tail(out, 300), wantHealthy)
			}
			return nil
		}),
		side(status, func(out string) error {
			if n := lines(out); n != len(slots)+1 {
				return fmt.Errorf("%d lines, want %d (a header and one per slot)", n, len(slots)+1)
			}
			return nil
		}),
		side(floor, func(out string) error {
			if n := lines(out); n != len(slots) {
				return fmt.Errorf("%d lines, want %d", n, len(slots))
			}
			return nil
		}),
		side(loop, func(out string) error {
			if n := lines(out); n != len(slots) {
				return fmt.Errorf("%d lines, want %d", n, len(slots))
			}
			return nil
		}),
		side(split, func(out string) error {
			if n := lines(out); n != len(slots) {
				return fmt.Errorf("%d lines, want %d", n, len(slots))
			}
			return nil
		}),
	}
	res, err := rotate(ctx, b.cfg.scale(12), 1, sides...)
	// The sides above, and the side each row measures (rows 5a, 5b, 5f, 5g).
	const hs, st, fl, sh, sp = 0, 1, 2, 3, 4
	for i, subject := range []int{hs, st, fl, sp} {
		rows[i].subject, rows[i].ref, rows[i].err = durations(res[subject], ""), durations(res[sh], ""), err
	}
	rows[0].note = fmt.Sprintf("reference: bench/baseline/status.sh, a POSIX sh loop of one s6-svstat -o %s per slot (%d slots: default, %d profiles, dashboard; %d up), on the same tree; health reads every slot's files and asks s6 about those that should be up, half of them (exit 0, checked)",
		svstatFields, len(slots), fleetProfiles, fleetProfiles/2)
	rows[1].note = "the table of every slot: s6-svstat, run-state and desired state of each (checked: one line per slot)"
	rows[3].note = fmt.Sprintf("bench/baseline/status-split.sh %d: the same loop, its slots dealt out to %d sh loops run side by side, as hermes-s6 runs a tree's s6-svstats (s6.Tools.Statuses) but with nothing else: below 1x, side-by-side loops pay on this machine; at 1x or above, they do not, and no status that runs one s6-svstat per slot can beat the loop here", runtime.NumCPU(), runtime.NumCPU())
	rows[2].note = fmt.Sprintf("bench/floor running one s6-svstat per slot, %d at a time (one per CPU), and copying their lines: what starting every s6-svstat from Go costs here, with no other work (hermes-s6 starts them from sh loops instead, one per CPU: s6.Tools.Statuses)", runtime.NumCPU())
	return rows
}

// fleetTree makes n profiles (even ones desired running, odd ones
// stopped), boots them with `hermes-s6 reconcile` and waits until every
// slot is supervised, every wanted gateway has started and the tree is
// quiet. It returns the slot directories, sorted as the shell globs them.
func (l *lab) fleetTree(ctx context.Context, n int) ([]string, error) {
	var wanted []string
	for i := 0; i < n; i++ {
		p, desired := profileName(i), "stopped"
		if i%2 == 0 {
			p, desired = profileName(i), "running"
			wanted = append(wanted, l.slot(p))
		}
		if err := makeProfile(l.home, p, desired); err != nil {
			return nil, err
		}
	}
	if err := l.hermes("reconcile").must(ctx); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(l.t.scandir)
	if err != nil {
		return nil, err
	}
	var slots []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			slots = append(slots, filepath.Join(l.t.scandir, e.Name()))
		}
	}
	if len(slots) < n {
		return nil, fmt.Errorf("reconcile made %d slots for %d profiles", len(slots), n)
	}
	for _, s := range slots {
		if !pollUntil(time.Minute, 5*time.Millisecond, func() bool { return supervised(s) }) {
			return nil, fmt.Errorf("%w waiting for s6-supervise on %s", errTimeout, s)
		}
	}
	for _, w := range wanted {
		if !pollUntil(time.Minute, 5*time.Millisecond, func() bool { return upPID(w) != 0 }) {
			return nil, fmt.Errorf("%w waiting for %s to come up", errTimeout, w)
		}
	}
	if !pollUntil(time.Minute, 10*time.Millisecond, func() bool { return starts(l.home) >= len(wanted) }) {
		return nil, fmt.Errorf("%w: %d of %d wanted gateways started", errTimeout, starts(l.home), len(wanted))
	}
	// Let the boot's last gateways and loggers settle before timing.
	time.Sleep(time.Second)
	return slots, nil
}

// rotate measures every side n times, after warm discarded runs of each.
// Round i runs the sides in turn starting from side i mod len(sides), so
// each side runs first, second, … equally often and drift hits all of
// them; res[k][i] is side k's sample of round i, so samples of one round
// pair up.
func rotate(ctx context.Context, n, warm int, sides ...func() (sample, error)) ([][]sample, error) {
	res := make([][]sample, len(sides))
	for i := 0; i < warm; i++ {
		for _, s := range sides {
			if _, err := s(); err != nil {
				return res, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		round := make([]sample, len(sides))
		for j := range sides {
			k := (i + j) % len(sides)
			s, err := sides[k]()
			if err != nil {
				return res, err
			}
			round[k] = s
		}
		for k := range sides {
			res[k] = append(res[k], round[k])
		}
	}
	return res, nil
}
