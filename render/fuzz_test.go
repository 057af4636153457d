package render_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nousresearch/hermes-s6/render"
)

// FuzzRender renders slots with arbitrary extra-environment values and
// paths, and checks with a real /bin/sh that every script parses and that
// each exported value reads back byte for byte.
func FuzzRender(f *testing.F) {
	for _, s := range [][3]string{
		{"plain", "/opt/data", "hermes"},
		{`it's "q" $HOME ${x} $(id) ` + "`id`", "/srv/a b", "/usr/local/bin/her mes"},
		{"line1\nline2\n", "/x/'y'", "h'\"$"},
		{"", "/", "-"},
		{"\\\\'\\'", "/a\nb", "\t"},
		{"#!/bin/sh\nexit 1", "/$(reboot)", ";rm -rf /"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, value, home, hermes string) {
		c := render.Config{
			Kind: render.Gateway, Profile: "fuzz", Home: home, Shebang: render.ShebangSh, S6Bin: "/usr/bin",
			Account: "hermes", Hermes: hermes, LogArchives: 3, LogSize: 4096,
			Env: []render.EnvVar{{Key: "FUZZ_VALUE", Value: value}, {Key: "A", Value: "x"}},
		}
		slot, err := render.Render(c)
		if err != nil {
			// Refusals must be for input no environment or path can carry.
			if strings.ContainsRune(value+home+hermes, 0) || hermes == "" || !strings.HasPrefix(home, "/") {
				return
			}
			t.Fatalf("Render refused %q/%q/%q: %v", value, home, hermes, err)
		}
		for _, file := range slot.Files {
			if file.Mode&0o111 == 0 {
				continue
			}
			if out, err := exec.Command("/bin/sh", "-n", "-c", string(file.Data)).CombinedOutput(); err != nil {
				t.Fatalf("%s does not parse: %v\n%s\n%s", file.Path, err, out, file.Data)
			}
		}
		// Evaluate run's export lines (everything before the exec part,
		// with cd and set -e dropped) and read the value back.
		run := string(slot.File("run").Data)
		start := strings.Index(run, "export \\\n")
		end := strings.Index(run, "# Recursion guard")
		if start < 0 || end < start {
			t.Fatalf("run has no export block:\n%s", run)
		}
		script := run[start:end] + "printf '%s' \"$FUZZ_VALUE\" > \"$1\"\n"
		out := filepath.Join(dir, "value")
		os.Remove(out)
		if msg, err := exec.Command("/bin/sh", "-c", script, "sh", out).CombinedOutput(); err != nil {
			t.Fatalf("export block failed: %v\n%s\n%s", err, msg, script)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, []byte(value)) {
			t.Fatalf("FUZZ_VALUE read back %q, want %q (%v)\n%s", got, value, err, script)
		}
		// HERMES_HOME's fallback reads back too.
		hStart, hEnd := strings.Index(run, "HERMES_HOME=${"), strings.Index(run, "\nHOME=$HERMES_HOME\n")
		if hStart < 0 || hEnd < hStart {
			t.Fatalf("run has no HERMES_HOME fallback:\n%s", run)
		}
		hs := "unset HERMES_HOME\n" + run[hStart:hEnd] + "\nprintf '%s' \"$HERMES_HOME\" > \"$1\"\n"
		os.Remove(out)
		if msg, err := exec.Command("/bin/sh", "-c", hs, "sh", out).CombinedOutput(); err != nil {
			t.Fatalf("home fallback failed: %v\n%s\n%s", err, msg, hs)
		}
		if got, _ := os.ReadFile(out); string(got) != home {
			t.Fatalf("HERMES_HOME fallback read back %q, want %q", got, home)
		}
	})
}
