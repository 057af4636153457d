package slot

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nousresearch/hermes-s6/render"
)

// Plan must predict exactly what Install then does, and write nothing.
func TestPlanPredictsInstall(t *testing.T) {
	scandir := t.TempDir()
	down := mustRender(t, cfg("coder"))
	upCfg := cfg("coder")
	upCfg.Down = false
	up := mustRender(t, upCfg)
	tuned := cfg("coder")
	tuned.LogArchives = 3
	reshaped := mustRender(t, tuned)

	for _, step := range []struct {
		name string
		s    *render.Slot
		o    Options
		want Result
	}{
		{"new", down, Options{SyncDown: true}, Created},
		{"same", down, Options{SyncDown: true}, Unchanged},
		{"down removed", up, Options{SyncDown: true}, Updated},
		{"down kept without SyncDown", down, Options{}, Unchanged},
		{"down added back", down, Options{SyncDown: true}, Updated},
		{"file changed", reshaped, Options{SyncDown: true}, Updated},
		{"same again", reshaped, Options{SyncDown: true}, Unchanged},
	} {
		s := step.s
		before := inodes(t, scandir)
		got, err := Plan(scandir, s, step.o)
		if err != nil {
			t.Fatalf("%s: Plan: %v", step.name, err)
		}
		if after := inodes(t, scandir); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: Plan wrote to the scandir", step.name)
		}
		if got != step.want {
			t.Fatalf("%s: Plan = %s, want %s", step.name, got, step.want)
		}
		res, err := Install(scandir, s, step.o)
		if err != nil {
			t.Fatalf("%s: Install: %v", step.name, err)
		}
		if res != got {
			t.Fatalf("%s: Plan said %s, Install did %s", step.name, got, res)
		}
	}
}

func TestPlanRefusesANonDirectory(t *testing.T) {
	scandir := t.TempDir()
	s := mustRender(t, cfg("coder"))
	if err := os.WriteFile(filepath.Join(scandir, s.Name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Plan(scandir, s, Options{}); err == nil {
		t.Fatal("want an error for a file in the slot's place")
	}
}
