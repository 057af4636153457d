package slot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTake(t *testing.T) {
	scan := t.TempDir()
	for _, d := range []string{"gateway-zeta", "gateway-default", "gateway-alpha", "dashboard", "gateway-Bad",
		".s6-svscan", StagingPrefix + "gateway-x.1", RemovingPrefix + "gateway-y.2", "s6rc-fdholder"} {
		if err := os.Mkdir(filepath.Join(scan, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(scan, "gateway-alpha"), filepath.Join(scan, "gateway-linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scan, "gateway-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Take(scan)
	if err != nil {
		t.Fatal(err)
	}
	want := Inventory{
		Profiles:  []string{"default", "alpha", "zeta"},
		Dashboard: true,
		Leftovers: []string{RemovingPrefix + "gateway-y.2", StagingPrefix + "gateway-x.1"}, // name order
		Strays:    []string{"gateway-Bad", "gateway-file", "gateway-linked"},
		Services:  []string{"dashboard", "gateway-Bad", "gateway-alpha", "gateway-default", "gateway-file", "gateway-linked", "gateway-zeta", "s6rc-fdholder"},
	}
	if diff := cmp.Diff(want, inv); diff != "" {
		t.Fatalf("Take (-want +got):\n%s", diff)
	}
	dirs := inv.Dirs(scan)
	if len(dirs) != 4 || dirs[0] != filepath.Join(scan, "gateway-default") || dirs[3] != filepath.Join(scan, "dashboard") {
		t.Fatalf("Dirs: %q", dirs)
	}
	if _, err := Take(filepath.Join(scan, "missing")); !os.IsNotExist(err) {
		t.Fatalf("a missing scandir: %v", err)
	}
}
