package reconcile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/rundir"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
)

// Capacity is how many services the s6-svscan of a scandir supervises.
// Past it, s6-svscan supervises none of the new ones, so reconcile never
// installs more slots than fit.
type Capacity struct {
	// Max is s6-svscan's limit, in its own units.
	Max int
	// PerSlot is how many of those units one logged slot takes: 1 with
	// s6 2.11's -c (service directories), 2 with -C (supervisors, the
	// logger's included, s6 2.12 and later).
	PerSlot int
	// Source says where Max comes from, for messages.
	Source string
}

// DefaultCapacity is s6-svscan's default limit: -C 1000 supervisors in
// s6 ≥ 2.12, -c 500 service directories in s6 2.11: about 500 logged slots
// either way.
var DefaultCapacity = Capacity{Max: 2 * SvscanDefaultMax, PerSlot: 2, Source: "s6-svscan's default"}

// SvscanCapacity reads the limit of the s6-svscan watching scandir from its
// command line (-C N or -c N), found in procRoot by its working directory,
// which s6-svscan sets to its scandir. When none is found (no tree yet, or
// another account's process) it is DefaultCapacity.
func SvscanCapacity(procRoot, scandir string) Capacity {
	// In a container s6-svscan is PID 1: look there first.
	pids := []string{"1"}
	if ents, err := os.ReadDir(procRoot); err == nil {
		for _, e := range ents {
			if n := e.Name(); n != "1" && n != "" && n[0] >= '1' && n[0] <= '9' {
				pids = append(pids, n)
			}
		}
	}
	want := filepath.Clean(scandir)
	for _, pid := range pids {
		dir := filepath.Join(procRoot, pid)
		if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err != nil || strings.TrimSpace(string(comm)) != "s6-svscan" {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err != nil || filepath.Clean(cwd) != want {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		c := ParseSvscanArgs(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00"))
		c.Source = "s6-svscan (pid " + pid + ")"
		if c.Max == DefaultCapacity.Max && c.PerSlot == DefaultCapacity.PerSlot {
			c.Source += ", default"
		}
		return c
	}
	return DefaultCapacity
}

// ParseSvscanArgs reads -C N (supervisors) or -c N (service directories)
// from s6-svscan's argv, DefaultCapacity when neither is there.
func ParseSvscanArgs(argv []string) Capacity {
	c := DefaultCapacity
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break
		}
		// Every s6-svscan option takes a value, attached or next.
		flag, v := a[:2], a[2:]
		if v == "" && i+1 < len(argv) {
			i++
			v = argv[i]
		}
		per := map[string]int{"-C": 2, "-c": 1}[flag]
		if n, err := strconv.Atoi(v); per > 0 && err == nil && n > 0 {
			c.Max, c.PerSlot = n, per
		}
	}
	return c
}

// Budget is how many gateway slots fit in c next to the other services of
// the inventory (s6-overlay's own, anything not hermes-s6's) and the
// dashboard slot.
func (c Capacity) Budget(inv slot.Inventory, scandir string) int {
	used := 0
	for _, n := range inv.Services {
		if n == render.DashboardSlot || ours(n) {
			continue
		}
		used++
		if c.PerSlot == 2 {
			if fi, err := os.Stat(filepath.Join(scandir, n, "log")); err == nil && fi.IsDir() {
				used++
			}
		}
	}
	slots := (c.Max-used)/c.PerSlot - 1 // the dashboard's
	return max(slots, 0)
}

func ours(name string) bool {
	p, ok := strings.CutPrefix(name, profile.SlotPrefix)
	return ok && profile.Validate(p) == nil
}

// fit splits profiles into those installed and those left out when only
// budget slots fit: the default profile and those whose desired state is
// running come first, then the rest, each in the order given (name order).
func fit(profiles []ProfileState, budget int) (keep, left []ProfileState) {
	if len(profiles) <= budget {
		return profiles, nil
	}
	rank := func(ps ProfileState) int {
		switch {
		case ps.Profile == profile.Default:
			return 0
		case ps.Desired == state.Running:
			return 1
		}
		return 2
	}
	chosen := map[string]bool{}
	for r := 0; r <= 2 && len(chosen) < budget; r++ {
		for _, ps := range profiles {
			if rank(ps) == r && len(chosen) < budget {
				chosen[ps.Profile] = true
			}
		}
	}
	for _, ps := range profiles {
		if chosen[ps.Profile] {
			keep = append(keep, ps)
		} else {
			left = append(left, ps)
		}
	}
	return keep, left
}

// fit keeps the profiles whose slots fit next to what else the scandir
// holds, and remembers the capacity for leaveOut's message.
func (r *run) fit(profiles []ProfileState) (keep, left []ProfileState) {
	proc := r.Getenv(shim.EnvProc)
	if proc == "" {
		proc = shim.DefaultProc
	}
	r.capacity = SvscanCapacity(proc, r.Layout.Scandir)
	inv, err := slot.Take(r.Layout.Scandir)
	if err != nil {
		inv = slot.Inventory{}
	}
	r.budget = r.capacity.Budget(inv, r.Layout.Scandir)
	return fit(profiles, r.budget)
}

// leaveOut names every profile that did not fit: one boot-log line each
// (action=left-out), an error line with the fix, and a failed run.
func (r *run) leaveOut(left []ProfileState) {
	if len(left) == 0 {
		return
	}
	names := make([]string, len(left))
	for i, ps := range left {
		names[i] = ps.Profile
		line := fmt.Sprintf("profile=%s prior_state=%s action=left-out", ps.Profile, ps.Desired)
		if r.DryRun {
			r.plan("%s", line)
			continue
		}
		line = r.Now().UTC().Format(time.RFC3339) + " " + line
		r.sum.Lines = append(r.sum.Lines, line)
		fmt.Fprintln(r.Out, line)
	}
	r.sum.LeftOut = names
	err := fmt.Errorf("%d profiles left out (%s): %d gateway slots fit next to the dashboard and the other services, and %s supervises at most %d %s; past that it supervises no new slot at all",
		len(left), strings.Join(names, ", "), r.budget, r.capacity.Source, r.capacity.Max, map[int]string{1: "service directories", 2: "supervisors (two per logged slot)"}[r.capacity.PerSlot])
	r.errs = append(r.errs, hint.With(err, "spread the profiles over more containers, one set of profiles each, or remove profiles you no longer use; the default profile and those whose desired state is running are installed first"))
}

// LeftOutFile is the record of the profiles the last boot reconcile left
// without a slot, one per line, under the runtime directory (root's, on
// /run): health reads it instead of the volume.
const LeftOutFile = "left-out"

// WriteLeftOut records names in dir/LeftOutFile (removing the record when
// there are none).
func WriteLeftOut(dir string, names []string) error {
	var b []byte
	if len(names) > 0 {
		b = []byte(strings.Join(names, "\n") + "\n")
	}
	return rundir.Write(dir, LeftOutFile, b)
}

// ReadLeftOut reads the record WriteLeftOut wrote; none reads as nil. It
// reads no more than 64 KiB and keeps only valid profile names.
func ReadLeftOut(dir string) []string {
	b, _ := rundir.Read(dir, LeftOutFile, 64<<10)
	var names []string
	for _, n := range strings.Fields(string(b)) {
		if profile.Validate(n) == nil {
			names = append(names, n)
		}
	}
	return names
}
