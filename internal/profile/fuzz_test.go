package profile

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// spec is the rule of docs/slot.md (Profile names) written independently of Validate: the fuzzer checks the
// two agree on every input, and that no accepted name leads outside.
var spec = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"default", "coder", "ops-2", "a_b", "", "A", "../x", "a/b", "-x", "_x", "a.b", "a b", "a\nb", "..", ".", "/", "a\x00b", "é", strings.Repeat("a", 64), strings.Repeat("a", 65), "default/../x", "gateway-x"} {
		f.Add(s)
	}
	l := Layout{Home: "/opt/data", Scandir: "/run/service"}
	f.Fuzz(func(t *testing.T, name string) {
		err := Validate(name)
		want := spec.MatchString(name) && len(name) <= MaxLen
		if (err == nil) != want {
			t.Fatalf("Validate(%q) = %v, the rule says accepted=%v", name, err, want)
		}
		if err != nil {
			return
		}
		for _, c := range []struct{ base, p string }{
			{l.Scandir, l.SlotDir(name)},
			{l.Home, l.ProfileDir(name)},
			{l.Home, l.StateFile(name)},
			{l.Home, l.LogDir(name)},
		} {
			rel, err := filepath.Rel(c.base, c.p)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.Clean(c.p) != c.p {
				t.Fatalf("name %q: %s escapes %s", name, c.p, c.base)
			}
		}
		if filepath.Dir(l.SlotDir(name)) != l.Scandir {
			t.Fatalf("name %q: slot %s is not directly in the scandir", name, l.SlotDir(name))
		}
	})
}
