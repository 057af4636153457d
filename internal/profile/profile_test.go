package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	good := []string{"default", "a", "0", "coder", "ops-2", "team_a", "a-", "9_", strings.Repeat("a", 64)}
	bad := []string{"", "A", "Coder", "../x", "..", ".", "a/b", "-x", "_x", "a.b", "a b", "a\nb", "a\x00", "é", strings.Repeat("a", 65), " a"}
	for _, n := range good {
		if err := Validate(n); err != nil {
			t.Errorf("Validate(%q) = %v, want ok", n, err)
		}
	}
	for _, n := range bad {
		err := Validate(n)
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), Rule) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidName naming the rule", n, err)
		}
	}
}

func TestLayout(t *testing.T) {
	l := Layout{Home: "/opt/data", Scandir: "/run/service"}
	for _, c := range [][2]string{
		{l.ProfileDir("default"), "/opt/data"},
		{l.ProfileDir("coder"), "/opt/data/profiles/coder"},
		{l.SlotDir("coder"), "/run/service/gateway-coder"},
		{l.SlotDir("default"), "/run/service/gateway-default"},
		{l.StateFile("default"), "/opt/data/gateway_state.json"},
		{l.StateFile("coder"), "/opt/data/profiles/coder/gateway_state.json"},
		{l.LogDir("coder"), "/opt/data/logs/gateways/coder"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %s, want %s", c[0], c[1])
		}
	}
}

func TestScan(t *testing.T) {
	home := t.TempDir()
	l := Layout{Home: home}
	mk := func(name string, soul bool) {
		d := filepath.Join(home, "profiles", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if soul {
			os.WriteFile(filepath.Join(d, "SOUL.md"), nil, 0o644)
		}
	}
	if names, skipped, err := l.Scan(); err != nil || names != nil || skipped != nil {
		t.Fatalf("no profiles dir: %v %v %v", names, skipped, err)
	}
	mk("zeta", true)
	mk("alpha", true)
	mk("nosoul", false)
	mk("Bad", true)
	mk("default", true)
	os.WriteFile(filepath.Join(home, "profiles", "file"), nil, 0o644)
	names, skipped, err := l.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alpha", "zeta"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	var got []string
	for _, s := range skipped {
		got = append(got, filepath.Base(s.Dir))
	}
	if diff := cmp.Diff([]string{"Bad", "default", "file", "nosoul"}, got); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if err := l.Exists("nosoul"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("Exists(nosoul) = %v", err)
	}
	if err := l.Exists("default"); err != nil {
		t.Errorf("default always exists: %v", err)
	}
}
