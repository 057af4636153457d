// Package golden owns the golden files under golden/: one directory per case
// holding a rendered slot byte for byte, plus CASE.modes listing each file's
// mode (git keeps only the executable bit). Tests compare with go-cmp and
// print a -want +got diff; `go test ./... -update` rewrites the files.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nousresearch/hermes-s6/render"
)

var update = flag.Bool("update", false, "rewrite the golden files under golden/")

// Dir is the absolute path of the repository's golden/ directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "golden")
}

// Cases lists the golden case names present on disk.
func Cases(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(Dir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// Files flattens a slot into path → "MODE\ncontent" for comparison.
func Files(s *render.Slot) map[string]string {
	m := map[string]string{}
	for _, f := range s.Files {
		m[f.Path] = fmt.Sprintf("%04o\n%s", f.Mode.Perm(), f.Data)
	}
	return m
}

// Check compares slot with golden case name, or rewrites it under -update.
func Check(t *testing.T, name string, slot *render.Slot) {
	t.Helper()
	if *update {
		if err := write(name, slot); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := read(name)
	if err != nil {
		t.Fatalf("golden %s: %v (run `go test ./render -update` to create it)", name, err)
	}
	if diff := cmp.Diff(want, Files(slot)); diff != "" {
		t.Errorf("slot %s differs from golden/%s (-want +got):\n%s\nIf the change is intended, run `go test ./render -update`.", slot.Name, name, diff)
	}
}

func write(name string, slot *render.Slot) error {
	dir := filepath.Join(Dir(), name)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	var modes bytes.Buffer
	for _, f := range slot.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode.Perm()); err != nil {
			return err
		}
		fmt.Fprintf(&modes, "%04o %s\n", f.Mode.Perm(), f.Path)
	}
	return os.WriteFile(dir+".modes", modes.Bytes(), 0o644)
}

func read(name string) (map[string]string, error) {
	dir := filepath.Join(Dir(), name)
	raw, err := os.ReadFile(dir + ".modes")
	if err != nil {
		return nil, err
	}
	modes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		mode, p, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s.modes: bad line %q", dir, line)
		}
		if _, err := strconv.ParseUint(mode, 8, 32); err != nil {
			return nil, fmt.Errorf("%s.modes: bad mode in %q", dir, line)
		}
		modes[p] = mode
	}
	out := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode, ok := modes[rel]
		if !ok {
			return fmt.Errorf("%s: not listed in %s.modes", p, dir)
		}
		out[rel] = mode + "\n" + string(b)
		return nil
	})
	return out, err
}

// Scripts returns the paths of every golden file that starts with a shebang.
func Scripts(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(b, []byte("#!")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
