package config

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the table in docs/environment.md")

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// table renders Vars as the Markdown table docs/environment.md carries.
func table() string {
	var b strings.Builder
	b.WriteString("| variable | default | what it does |\n|---|---|---|\n")
	for _, v := range Vars {
		def := "unset"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		b.WriteString("| `" + v.Name + "` | " + def + " | " + v.Meaning + " |\n")
	}
	return b.String()
}

const begin, end = "<!-- vars:begin (generated from internal/config/vars.go: go test ./internal/config -update) -->\n", "<!-- vars:end -->\n"

// docs/environment.md lists exactly Vars, as Vars says them.
func TestVarsDocumented(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docs", "environment.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated table between %q and %q", path, begin, end)
	}
	got := doc[i+len(begin) : j]
	if got == table() {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+table()+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the table in %s is stale: run go test ./internal/config -update", path)
}

// Every HERMES_ or S6_ variable named in hermes-s6's Go sources and image
// hooks is in Vars.
func TestVarsComplete(t *testing.T) {
	root := repoRoot(t)
	names := regexp.MustCompile(`\b(HERMES_[A-Z0-9_]+|S6_[A-Z0-9_]+)\b`)
	var known []string
	for _, v := range Vars {
		known = append(known, v.Name)
	}
	// Read, never set, by hermes-s6: PUID/PGID are aliases the boot hook
	// documents with HERMES_UID/HERMES_GID; S6_ names that are not
	// s6-overlay settings hermes-s6 acts on are not its business.
	ignore := map[string]bool{"HERMES_S6_DOCTOR_TEST_HOLD": true}
	seen := map[string]string{}
	for _, dir := range []string{"internal", "s6", "render", "templates", "cmd", "rootfs"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") || strings.HasSuffix(p, ".md") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, n := range names.FindAllString(string(b), -1) {
				if strings.HasPrefix(n, "S6_") && !strings.HasPrefix(n, "S6_KILL_") {
					continue
				}
				if strings.HasSuffix(n, "_") {
					continue
				}
				seen[n] = p
			}
			return nil
		})
	}
	for n, p := range seen {
		if !slices.Contains(known, n) && !ignore[n] {
			t.Errorf("%s (in %s) is not in config.Vars", n, p)
		}
	}
}
