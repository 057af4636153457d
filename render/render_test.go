package render_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/golden"
	"github.com/nousresearch/hermes-s6/render"
)

// base is the image's configuration: s6-overlay paths, the hermes account.
func base() render.Config {
	return render.Config{
		Kind:        render.Gateway,
		Profile:     "default",
		Home:        "/opt/data",
		Shebang:     render.ShebangContenv,
		S6Bin:       "/command",
		Account:     "hermes",
		Hermes:      "hermes",
		Self:        "/usr/local/bin/hermes-s6",
		LogArchives: render.DefaultLogArchives,
		LogSize:     render.DefaultLogSize,
		Stderr:      "log",
		Down:        true,
	}
}

func goldenCases() map[string]render.Config {
	cases := map[string]render.Config{}
	cases["default"] = base()

	named := base()
	named.Profile = "coder"
	named.Down = false
	cases["named"] = named

	plain := base()
	plain.Shebang = render.ShebangSh
	plain.S6Bin = ""
	plain.Home = "/srv/hermes data"
	cases["plain-sh"] = plain

	hostile := base()
	hostile.Profile = "ops_2"
	hostile.Env = []render.EnvVar{
		{Key: "Z_LAST", Value: "plain"},
		{Key: "QUOTES", Value: `it's "quoted"`},
		{Key: "DOLLAR", Value: "$HOME and ${PATH}"},
		{Key: "BACKTICK", Value: "`id` $(id)"},
		{Key: "SPACES", Value: "  a  b  "},
		{Key: "NEWLINE", Value: "line1\nline2"},
		{Key: "EMPTY", Value: ""},
	}
	cases["hostile-env"] = hostile

	nonroot := base()
	nonroot.Account = ""
	nonroot.Shebang = render.ShebangSh
	nonroot.S6Bin = "/usr/bin"
	cases["nonroot"] = nonroot

	tuned := base()
	tuned.Profile = "tuned"
	tuned.CrashLimit = &render.CrashLimit{Deaths: 5, Window: time.Minute}
	tuned.Stderr = "console"
	tuned.LogArchives = 3
	tuned.LogSize = 65536
	cases["tuned"] = tuned

	dash := base()
	dash.Kind = render.Dashboard
	dash.Profile = ""
	dash.DashboardHost = "127.0.0.1"
	dash.DashboardPort = 9119
	cases["dashboard"] = dash
	return cases
}

func TestGolden(t *testing.T) {
	for name, c := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			slot, err := render.Render(c)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name, slot)
		})
	}
}

// Every golden case on disk must still be produced by a config above, so a
// stale directory cannot linger unchecked.
func TestNoStaleGolden(t *testing.T) {
	cases := goldenCases()
	for _, name := range golden.Cases(t) {
		if _, ok := cases[name]; !ok {
			t.Errorf("golden/%s has no config in goldenCases: remove it or add the case", name)
		}
	}
}

func TestScriptsAreClean(t *testing.T) {
	for name, c := range goldenCases() {
		slot, err := render.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slot.Files {
			if f.Mode&0o111 == 0 {
				continue
			}
			switch {
			case !bytes.HasPrefix(f.Data, []byte(c.Shebang+"\n")):
				t.Errorf("%s/%s: does not start with %q", name, f.Path, c.Shebang)
			case !bytes.HasSuffix(f.Data, []byte("\n")):
				t.Errorf("%s/%s: no final newline", name, f.Path)
			case bytes.ContainsRune(f.Data, '\r'), bytes.HasPrefix(f.Data, []byte("\xef\xbb\xbf")):
				t.Errorf("%s/%s: CR or BOM", name, f.Path)
			}
		}
	}
}

// shellcheck -s sh over every golden script: any finding fails.
func TestShellcheckGolden(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck not found: install it (apt-get install shellcheck); `make test` does this as root")
	}
	scripts := golden.Scripts(t)
	if len(scripts) < 3*len(goldenCases()) {
		t.Fatalf("found %d golden scripts, want at least %d: run `go test ./render -update`", len(scripts), 3*len(goldenCases()))
	}
	out, err := exec.Command(sc, append([]string{"-s", "sh", "-f", "gcc"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestRenderContract(t *testing.T) {
	c := base()
	slot, err := render.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	logRun := string(slot.File("log/run").Data)
	if !strings.Contains(logRun, `exec /command/s6-log -d 3 1 n10 s1000000 T "$log_dir"`) {
		t.Errorf("log/run lacks the tee-to-stdout s6-log line:\n%s", logRun)
	}
	// The lease: the logger holds it, as the account; s6-log's lock file is
	// never deleted, except one the account cannot use (SPEC: log/run).
	for _, want := range []string{
		`exec /command/s6-setuidgid hermes sh ./run account`,
		`exec /command/s6-setlock "$log_dir/lease" sh ./run leased`,
	} {
		if !strings.Contains(logRun, want) {
			t.Errorf("log/run must take the lease with s6-setlock as the account: no %q in\n%s", want, logRun)
		}
	}
	if n := strings.Count(logRun, "rm "); n != 1 || !strings.Contains(logRun, `{ [ ! -f "$lock" ] || [ ! -w "$lock" ]; }; }; then
    rm -f "$lock"`) {
		t.Errorf("log/run may delete s6-log's lock only when the account cannot use it:\n%s", logRun)
	}
	if nf := slot.File("log/notification-fd"); nf == nil || string(nf.Data) != "3\n" {
		t.Errorf("log/notification-fd: want 3, got %+v", nf)
	}
	run := string(slot.File("run").Data)
	for _, want := range []string{"export HERMES_S6_SUPERVISED_CHILD=1", "exec 2>&1", "/command/s6-svwait -U log",
		`exec /command/s6-setlock "$gateway_lock" hermes gateway run --replace`,
		`exec /command/s6-setuidgid hermes /command/s6-setlock "$gateway_lock" hermes gateway run --replace`} {
		if !strings.Contains(run, want) {
			t.Errorf("run lacks %q:\n%s", want, run)
		}
	}
	if strings.Contains(run, "-p default") {
		t.Errorf("default profile must not pass -p default:\n%s", run)
	}
	c.Profile = "coder"
	slot, _ = render.Render(c)
	if run := string(slot.File("run").Data); !strings.Contains(run, `"$gateway_lock" hermes -p coder gateway run --replace`) {
		t.Errorf("named profile run:\n%s", run)
	}
	c.Down = false
	slot, _ = render.Render(c)
	if slot.File("down") != nil {
		t.Error("down present with Down=false")
	}
}

func TestRenderRejects(t *testing.T) {
	for name, mut := range map[string]func(*render.Config){
		"bad profile":   func(c *render.Config) { c.Profile = "../x" },
		"relative home": func(c *render.Config) { c.Home = "data" },
		"bad shebang":   func(c *render.Config) { c.Shebang = "#!/bin/sh\necho" },
		"bad env key":   func(c *render.Config) { c.Env = []render.EnvVar{{Key: "A-B", Value: "x"}} },
		"dup env key":   func(c *render.Config) { c.Env = []render.EnvVar{{Key: "A", Value: "x"}, {Key: "A", Value: "y"}} },
		"NUL value":     func(c *render.Config) { c.Env = []render.EnvVar{{Key: "A", Value: "x\x00"}} },
		"tiny log":      func(c *render.Config) { c.LogSize = 10 },
		"no archives":   func(c *render.Config) { c.LogArchives = 0 },
		"bad stderr":    func(c *render.Config) { c.Stderr = "file" },
		"bad kind":      func(c *render.Config) { c.Kind = "cron" },
	} {
		c := base()
		mut(&c)
		if _, err := render.Render(c); err == nil {
			t.Errorf("%s: Render accepted %+v", name, c)
		}
	}
}

func TestParseCrashLimit(t *testing.T) {
	for in, want := range map[string]string{"": "off", "off": "off", "5/60s": "5/1m0s", "3/2m": "3/2m0s"} {
		got, err := render.ParseCrashLimit(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseCrashLimit(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "0/60s", "x/60s", "5/0s", "5/1500ms", "5/abc"} {
		if _, err := render.ParseCrashLimit(in); err == nil {
			t.Errorf("ParseCrashLimit(%q) accepted", in)
		}
	}
}

func TestParseEnv(t *testing.T) {
	if e, err := render.ParseEnv("A_1=x=y"); err != nil || e.Key != "A_1" || e.Value != "x=y" {
		t.Errorf("ParseEnv: %+v %v", e, err)
	}
	for _, in := range []string{"novalue", "1A=x", "=x", "A B=x"} {
		if _, err := render.ParseEnv(in); err == nil {
			t.Errorf("ParseEnv(%q) accepted", in)
		}
	}
}
