package reconcile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
)

func TestParseSvscanArgs(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want Capacity
	}{
		{[]string{"s6-svscan", "/run/service"}, DefaultCapacity},
		{[]string{"s6-svscan", "-d3", "-X3", "--", "/run/service"}, DefaultCapacity},
		{[]string{"s6-svscan", "-C", "4000", "/run/service"}, Capacity{Max: 4000, PerSlot: 2}},
		{[]string{"s6-svscan", "-C4000", "/run/service"}, Capacity{Max: 4000, PerSlot: 2}},
		{[]string{"s6-svscan", "-t", "0", "-c", "8", "/srv/s"}, Capacity{Max: 8, PerSlot: 1}},
		{[]string{"s6-svscan", "-c", "zero", "/srv/s"}, DefaultCapacity},
	} {
		got := ParseSvscanArgs(tc.argv)
		got.Source, tc.want.Source = "", ""
		if got != tc.want {
			t.Errorf("ParseSvscanArgs(%q) = %+v, want %+v", tc.argv, got, tc.want)
		}
	}
}

// The budget leaves room for the dashboard and for every other service in
// the scandir, counted in s6-svscan's own units.
func TestBudget(t *testing.T) {
	scan := t.TempDir()
	for _, d := range []string{"s6-linux-init-shutdownd", "s6rc-fdholder", "logged/log", "gateway-a", "dashboard"} {
		if err := os.MkdirAll(filepath.Join(scan, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := slot.Take(scan)
	if err != nil {
		t.Fatal(err)
	}
	// -C 1000 supervisors: 3 foreign services, one of them logged = 4.
	if got := (Capacity{Max: 1000, PerSlot: 2}).Budget(inv, scan); got != (1000-4)/2-1 {
		t.Errorf("-C 1000: budget %d, want %d", got, (1000-4)/2-1)
	}
	// -c 10 service directories: 3 foreign ones.
	if got := (Capacity{Max: 10, PerSlot: 1}).Budget(inv, scan); got != 10-3-1 {
		t.Errorf("-c 10: budget %d, want %d", got, 10-3-1)
	}
	if got := (Capacity{Max: 2, PerSlot: 1}).Budget(inv, scan); got != 0 {
		t.Errorf("no room: budget %d, want 0", got)
	}
}

// What fits: the default profile, then those wanted running, then the
// rest, each in name order.
func TestFit(t *testing.T) {
	ps := []ProfileState{
		{Profile: "default", Desired: state.None},
		{Profile: "a", Desired: state.Stopped},
		{Profile: "b", Desired: state.Running},
		{Profile: "c", Desired: state.None},
		{Profile: "d", Desired: state.Running},
	}
	names := func(ps []ProfileState) (out []string) {
		for _, p := range ps {
			out = append(out, p.Profile)
		}
		return out
	}
	keep, left := fit(ps, 4)
	if diff := cmp.Diff([]string{"default", "a", "b", "d"}, names(keep)); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c"}, names(left)); diff != "" {
		t.Errorf("left out (-want +got):\n%s", diff)
	}
	keep, left = fit(ps, 2)
	if diff := cmp.Diff([]string{"default", "b"}, names(keep)); diff != "" {
		t.Errorf("kept with 2 (-want +got):\n%s", diff)
	}
	if len(left) != 3 {
		t.Errorf("left out with 2: %v", names(left))
	}
	if keep, left := fit(ps, 10); len(keep) != 5 || left != nil {
		t.Errorf("everything fits: %v %v", names(keep), names(left))
	}
}
