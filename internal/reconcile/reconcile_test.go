package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/lock"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shard"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// fixture is a HERMES_HOME and a scandir with no s6-svscan on it: these
// tests look at files only (tests/integration runs a real tree).
type fixture struct {
	t       *testing.T
	home    string
	scandir string
	env     map[string]string
	now     time.Time
	sel     shard.Selection
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{t: t, home: filepath.Join(root, "home"), scandir: filepath.Join(root, "service"),
		env: map[string]string{}, now: time.Date(2026, 5, 28, 3, 18, 41, 0, time.UTC)}
	for _, d := range []string{f.home, f.scandir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// profile creates a named profile (with SOUL.md) and returns its dir.
func (f *fixture) profile(p string) string {
	f.t.Helper()
	dir := filepath.Join(f.home, "profiles", p)
	f.write(filepath.Join(dir, "SOUL.md"), "# "+p+"\n")
	return dir
}

func (f *fixture) write(p, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// state writes profile p's gateway_state.json.
func (f *fixture) state(p, content string) {
	f.t.Helper()
	f.write(profile.Layout{Home: f.home}.StateFile(p), content)
}

type outcome struct {
	sum    *Summary
	err    error
	stdout string
	log    string
}

func (f *fixture) run(dryRun bool) outcome {
	f.t.Helper()
	var out, log bytes.Buffer
	sum, err := Run(context.Background(), Options{
		Env: config.Env{
			Layout: profile.Layout{Home: f.home, Scandir: f.scandir},
			Tools:  s6.Tools{Dir: "/usr/bin"},
			Slot: render.Config{Home: f.home, Shebang: render.ShebangSh, Hermes: "hermes",
				LogArchives: render.DefaultLogArchives, LogSize: render.DefaultLogSize, Stderr: "log"},
			Identity:  account.Resolve(nil),
			Getenv:    func(k string) string { return f.env[k] },
			Log:       slog.New(slog.NewTextHandler(&log, nil)),
			Now:       func() time.Time { return f.now },
			Selection: f.sel,
		},
		DryRun: dryRun,
		Out:    &out,
		Volume: Local{},
	})
	return outcome{sum, err, out.String(), log.String()}
}

func (f *fixture) mustRun() outcome {
	f.t.Helper()
	o := f.run(false)
	if o.err != nil {
		f.t.Fatalf("reconcile: %v\nstdout:\n%s\nlog:\n%s", o.err, o.stdout, o.log)
	}
	return o
}

func (f *fixture) slotDir(name string) string { return filepath.Join(f.scandir, name) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// upOnPickup reports whether the slot would start when s6 picks it up.
func (f *fixture) upOnPickup(name string) bool {
	f.t.Helper()
	if !exists(filepath.Join(f.slotDir(name), "run")) {
		f.t.Fatalf("slot %s not installed", name)
	}
	return !exists(filepath.Join(f.slotDir(name), "down"))
}

func TestDecisionMatrix(t *testing.T) {
	for _, c := range []struct {
		name    string
		content string // "" for no state file
		up      bool
		prior   state.Desired
	}{
		{"desired_running", `{"desired_state":"running"}`, true, state.Running},
		{"desired_stopped", `{"desired_state":"stopped"}`, false, state.Stopped},
		{"gateway_running", `{"gateway_state":"running"}`, true, state.Running},
		{"gateway_draining", `{"gateway_state":"draining"}`, true, state.Running},
		{"gateway_degraded", `{"gateway_state":"degraded"}`, true, state.Running},
		{"gateway_starting", `{"gateway_state":"starting"}`, false, state.Stopped},
		{"gateway_startup_failed", `{"gateway_state":"startup_failed"}`, false, state.Stopped},
		{"gateway_stopped", `{"gateway_state":"stopped"}`, false, state.Stopped},
		{"missing_file", "", false, state.None},
		{"corrupt_json", `{"desired_state":`, false, state.Corrupt},
		{"desired_running_beats_gateway_stopped", `{"desired_state":"running","gateway_state":"stopped"}`, true, state.Running},
		{"desired_stopped_beats_gateway_running", `{"desired_state":"stopped","gateway_state":"running"}`, false, state.Stopped},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range []string{"default", "coder"} {
				t.Run(p, func(t *testing.T) {
					f := newFixture(t)
					if p != "default" {
						f.profile(p)
					}
					if c.content != "" {
						f.state(p, c.content)
					}
					o := f.mustRun()
					slotName := profile.SlotName(p)
					if got := f.upOnPickup(slotName); got != c.up {
						t.Fatalf("%s: up on pickup = %v, want %v", slotName, got, c.up)
					}
					action := "registered"
					if c.up {
						action = "started"
					}
					want := fmt.Sprintf("profile=%s prior_state=%s action=%s", p, c.prior, action)
					if !strings.Contains(o.stdout, want) {
						t.Fatalf("stdout lacks %q:\n%s", want, o.stdout)
					}
					if c.prior == state.Corrupt {
						b, _ := os.ReadFile(profile.Layout{Home: f.home}.StateFile(p))
						if string(b) != c.content {
							t.Fatalf("reconcile rewrote a corrupt state file: %q", b)
						}
						if !strings.Contains(o.log, "corrupt desired state") {
							t.Fatalf("no warning about the corrupt state:\n%s", o.log)
						}
					}
				})
			}
		})
	}
}

func TestOrderDefaultFirstThenSorted(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"zeta", "alpha", "m-1", "b_2"} {
		f.profile(p)
	}
	o := f.mustRun()
	var got []string
	for _, s := range o.sum.Slots {
		got = append(got, s.Name)
	}
	want := []string{"gateway-default", "gateway-alpha", "gateway-b_2", "gateway-m-1", "gateway-zeta", "dashboard"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("slot order (-want +got):\n%s", diff)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
		lines = append(lines, strings.SplitN(l, " ", 3)[1])
	}
	if diff := cmp.Diff([]string{"profile=default", "profile=alpha", "profile=b_2", "profile=m-1", "profile=zeta", "slot=dashboard"}, lines); diff != "" {
		t.Fatalf("stdout order (-want +got):\n%s", diff)
	}
}

func TestSkippedDirsWarnAndTheRestIsReconciled(t *testing.T) {
	f := newFixture(t)
	f.profile("good")
	f.profile("Bad")
	f.profile("default")
	if err := os.MkdirAll(filepath.Join(f.home, "profiles", "nosoul"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(filepath.Join(f.home, "profiles", "afile"), "x")
	o := f.mustRun()
	for _, dir := range []string{"Bad", "default", "nosoul", "afile"} {
		want := "dir=" + filepath.Join(f.home, "profiles", dir)
		if !regexp.MustCompile(`level=WARN .*` + regexp.QuoteMeta(want) + `( |$)`).MatchString(o.log) {
			t.Errorf("no warning naming %s:\n%s", want, o.log)
		}
	}
	if !strings.Contains(o.log, "the default profile lives at HERMES_HOME") {
		t.Errorf("profiles/default warning does not say why:\n%s", o.log)
	}
	ents, _ := os.ReadDir(f.scandir)
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), lock.Prefix) { // per-slot lock files stay
			names = append(names, e.Name())
		}
	}
	if diff := cmp.Diff([]string{"dashboard", "gateway-default", "gateway-good"}, names); diff != "" {
		t.Fatalf("scandir (-want +got):\n%s", diff)
	}
}

func TestOneBadSlotDoesNotBlockTheOthers(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"alpha", "beta", "gamma"} {
		f.profile(p)
		f.state(p, `{"desired_state":"running"}`)
	}
	// A regular file where beta's slot directory should be.
	f.write(f.slotDir("gateway-beta"), "not a slot")
	o := f.run(false)
	if o.err == nil || !strings.Contains(o.err.Error(), "gateway-beta") || strings.Contains(o.err.Error(), "gateway-alpha") {
		t.Fatalf("want an error naming gateway-beta only, got %v", o.err)
	}
	for _, name := range []string{"gateway-default", "gateway-alpha", "gateway-gamma", "dashboard"} {
		f.upOnPickup(name)
	}
	if strings.Contains(o.stdout, "profile=beta") {
		t.Fatalf("a failed slot has a boot line:\n%s", o.stdout)
	}
	b, _ := os.ReadFile(BootLogPath(f.home))
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Fatalf("boot log: want 4 lines, got %d:\n%s", n, b)
	}
}

func TestLegacyMigration(t *testing.T) {
	for _, c := range []struct {
		name    string
		cmd     string // HERMES_S6_CMD; "" unset
		env     map[string]string
		state   string // existing default state file
		migrate string // profile migrated, "" none
	}{
		{name: "gateway_run", cmd: `["gateway","run"]`, migrate: "default"},
		{name: "gateway_run_replace", cmd: `["gateway","run","--replace"]`, migrate: "default"},
		{name: "hermes_gateway_run", cmd: `["hermes","gateway","run"]`, migrate: "default"},
		{name: "profile_before", cmd: `["-p","coder","gateway","run"]`, migrate: "coder"},
		{name: "profile_after", cmd: `["gateway","run","--profile=coder"]`, migrate: "coder"},
		{name: "explicit_default", cmd: `["--profile","default","gateway","run"]`, migrate: "default"},
		{name: "no_supervise_flag", cmd: `["gateway","run","--no-supervise"]`},
		{name: "env_opt_out_1", cmd: `["gateway","run"]`, env: map[string]string{"HERMES_GATEWAY_NO_SUPERVISE": "1"}},
		{name: "env_opt_out_true", cmd: `["gateway","run"]`, env: map[string]string{"HERMES_GATEWAY_NO_SUPERVISE": "TRUE"}},
		{name: "env_opt_out_yes", cmd: `["gateway","run"]`, env: map[string]string{"HERMES_GATEWAY_NO_SUPERVISE": "Yes"}},
		{name: "env_not_truthy", cmd: `["gateway","run"]`, env: map[string]string{"HERMES_GATEWAY_NO_SUPERVISE": "0"}, migrate: "default"},
		{name: "extra_args_stay_foreground", cmd: `["gateway","run","--verbose"]`},
		{name: "no_cmd", cmd: ""},
		{name: "unreadable_cmd", cmd: `gateway run`},
		{name: "other_cmd", cmd: `["bash"]`},
		{name: "unknown_profile", cmd: `["-p","ghost","gateway","run"]`},
		{name: "corrupt_state_counts_as_present", cmd: `["gateway","run"]`, state: `{"desired`},
		{name: "stopped_state_wins", cmd: `["gateway","run"]`, state: `{"desired_state":"stopped"}`},
		{name: "foreign_keys_only", cmd: `["gateway","run"]`, state: `{"pid":1}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.profile("coder")
			if c.cmd != "" {
				f.env[CmdEnv] = c.cmd
			}
			for k, v := range c.env {
				f.env[k] = v
			}
			if c.state != "" {
				f.state("default", c.state)
			}
			o := f.mustRun()
			for _, p := range []string{"default", "coder"} {
				sf := profile.Layout{Home: f.home}.StateFile(p)
				st, err := state.Read(f.home, profile.Layout{Home: f.home}.StateRel(p))
				if err != nil {
					t.Fatal(err)
				}
				raw, hasMark := st.Get("migrated_from")
				if p == c.migrate {
					if st.Desired != state.Running || !hasMark || string(raw) != `"legacy-container-cmd"` {
						t.Fatalf("%s: want desired running migrated_from legacy-container-cmd, got %s %s", p, st.Desired, raw)
					}
					if !f.upOnPickup(profile.SlotName(p)) {
						t.Fatalf("migrated %s must be installed up", p)
					}
					if !strings.Contains(o.stdout, "profile="+p+" prior_state=none action=started") {
						t.Fatalf("boot line for the migrated profile:\n%s", o.stdout)
					}
					continue
				}
				if hasMark {
					t.Fatalf("%s migrated but should not be", p)
				}
				if c.state != "" && p == "default" {
					if b, _ := os.ReadFile(sf); string(b) != c.state {
						t.Fatalf("existing state file changed: %q", b)
					}
				} else if exists(sf) {
					t.Fatalf("%s: a state file was written: %s", p, sf)
				}
				if f.upOnPickup(profile.SlotName(p)) {
					t.Fatalf("%s must be installed down", p)
				}
			}
		})
	}
}

func TestDashboardContainerDoesOnlyTheRootWork(t *testing.T) {
	for _, cmd := range []string{`["dashboard"]`, `["hermes","dashboard","--port","9200"]`, `["serve"]`, `["gui"]`, `["hermes","desktop"]`} {
		t.Run(cmd, func(t *testing.T) {
			f := newFixture(t)
			f.env[CmdEnv] = cmd
			f.env[DashboardEnv] = "1"
			f.state("default", `{"desired_state":"running"}`)
			f.write(filepath.Join(f.home, "gateway.pid"), "12")
			stage := filepath.Join(f.scandir, slot.StagingPrefix+"gateway-x.123")
			if err := os.Mkdir(stage, 0o755); err != nil {
				t.Fatal(err)
			}
			o := f.mustRun()
			if !o.sum.DashboardContainer || len(o.sum.Slots) != 0 {
				t.Fatalf("want a dashboard container and no slots, got %+v", o.sum)
			}
			if lines := strings.Split(strings.TrimSpace(o.stdout), "\n"); len(lines) != 1 || !strings.Contains(lines[0], o.sum.Role+" container") || o.sum.Role == "" {
				t.Fatalf("want one line saying so, got %q", o.stdout)
			}
			ents, _ := os.ReadDir(f.scandir)
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), lock.Prefix) { // the swept slot's lock file stays
					t.Fatalf("scandir should hold no slot (staging dir swept), got %v", ents)
				}
			}
			if !exists(filepath.Join(f.home, "gateway.pid")) || exists(BootLogPath(f.home)) {
				t.Fatal("a dashboard container must not touch the volume")
			}
		})
	}
}

// The selection decides which profiles get a slot here; the rest are
// reported with why, and nothing is written for them.
func TestSelection(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"coder", "team-a", "team-b", "ops"} {
		f.profile(p)
		f.state(p, `{"desired_state":"running"}`)
	}
	f.state("default", `{"desired_state":"running"}`)
	f.sel = shard.Selection{Patterns: []string{"team-*", "coder"}}
	o := f.run(false)
	if o.err != nil {
		t.Fatal(o.err)
	}
	var got []string
	for _, r := range o.sum.Slots {
		got = append(got, r.Name)
	}
	if want := []string{"gateway-coder", "gateway-team-a", "gateway-team-b", "dashboard"}; !slices.Equal(got, want) {
		t.Fatalf("slots: got %v, want %v", got, want)
	}
	if len(o.sum.NotHere) != 2 || o.sum.NotHere[0].Profile != "default" || o.sum.NotHere[1].Profile != "ops" ||
		!strings.Contains(o.sum.NotHere[1].Why, "not named by HERMES_S6_PROFILES=team-*,coder") {
		t.Fatalf("not here: %+v", o.sum.NotHere)
	}
	for _, p := range []string{"gateway-default", "gateway-ops"} {
		if exists(f.slotDir(p)) {
			t.Fatalf("%s installed, but it is not selected", p)
		}
	}
}

// A CMD that runs a gateway in the foreground gets that profile's slot
// installed down, whatever its desired state, which stays as it is.
func TestForegroundProfileSlotStaysDown(t *testing.T) {
	for _, c := range []struct{ cmd, env string }{
		{`["gateway","run","--no-supervise","-p","coder"]`, ""},
		{`["-p","coder","gateway","run"]`, "1"},
	} {
		f := newFixture(t)
		f.profile("coder")
		f.state("coder", `{"desired_state":"running"}`)
		f.state("default", `{"desired_state":"running"}`)
		f.env[CmdEnv] = c.cmd
		f.env["HERMES_GATEWAY_NO_SUPERVISE"] = c.env
		o := f.mustRun()
		if o.sum.Foreground != "coder" || f.upOnPickup("gateway-coder") || !f.upOnPickup("gateway-default") {
			t.Fatalf("%s: want gateway-coder down and default up, got %+v", c.cmd, o.sum)
		}
		st, err := state.Read(f.home, profile.Layout{Home: f.home}.StateRel("coder"))
		if err != nil || st.Desired != state.Running {
			t.Fatalf("%s: the desired state must stay running: %+v %v", c.cmd, st, err)
		}
	}
}

func TestDashboardSlot(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		up   bool
		host string
		port string
	}{
		{map[string]string{}, false, "127.0.0.1", "9119"},
		{map[string]string{DashboardEnv: "0"}, false, "127.0.0.1", "9119"},
		{map[string]string{DashboardEnv: "yes"}, true, "127.0.0.1", "9119"},
		{map[string]string{DashboardEnv: "TRUE", DashboardHostEnv: "0.0.0.0", DashboardPortEnv: "8080"}, true, "0.0.0.0", "8080"},
	} {
		t.Run(fmt.Sprint(c.env), func(t *testing.T) {
			f := newFixture(t)
			f.env = c.env
			o := f.mustRun()
			last := o.sum.Slots[len(o.sum.Slots)-1]
			if last.Name != "dashboard" {
				t.Fatalf("the dashboard must come after the gateways: %+v", o.sum.Slots)
			}
			if got := f.upOnPickup("dashboard"); got != c.up {
				t.Fatalf("dashboard up on pickup = %v, want %v", got, c.up)
			}
			run, _ := os.ReadFile(filepath.Join(f.slotDir("dashboard"), "run"))
			want := "hermes dashboard --host " + c.host + " --port " + c.port + " --no-open"
			if !strings.Contains(string(run), want) {
				t.Fatalf("run lacks %q:\n%s", want, run)
			}
			logRun, _ := os.ReadFile(filepath.Join(f.slotDir("dashboard"), "log", "run"))
			if !strings.Contains(string(logRun), "logs/dashboard") {
				t.Fatalf("log/run does not log to logs/dashboard:\n%s", logRun)
			}
			action := map[bool]string{true: "started", false: "registered"}[c.up]
			if !strings.Contains(o.stdout, "slot=dashboard prior_state=none action="+action) {
				t.Fatalf("dashboard boot line:\n%s", o.stdout)
			}
		})
	}
}

func TestDashboardBadAddressFailsOnlyTheDashboard(t *testing.T) {
	for _, env := range []map[string]string{
		{DashboardPortEnv: "http"},
		{DashboardPortEnv: "0"},
		{DashboardPortEnv: "65536"},
		{DashboardHostEnv: "a b"},
	} {
		f := newFixture(t)
		f.env = env
		o := f.run(false)
		if o.err == nil || !strings.Contains(o.err.Error(), "dashboard") {
			t.Fatalf("%v: want an error naming the dashboard, got %v", env, o.err)
		}
		f.upOnPickup("gateway-default")
		if exists(f.slotDir("dashboard")) {
			t.Fatalf("%v: a dashboard slot was installed", env)
		}
	}
}

var bootLine = regexp.MustCompile(BootLine)

func TestBootLogFormat(t *testing.T) {
	f := newFixture(t)
	f.profile("coder")
	f.state("default", `{"desired_state":"running"}`)
	f.state("coder", `{"desired_state":"stopped"}`)
	o := f.mustRun()
	b, err := os.ReadFile(BootLogPath(f.home))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != o.stdout {
		t.Fatalf("stdout and boot log differ:\nstdout:\n%s\nlog:\n%s", o.stdout, b)
	}
	want := "2026-05-28T03:18:41Z profile=default prior_state=running action=started\n" +
		"2026-05-28T03:18:41Z profile=coder prior_state=stopped action=registered\n" +
		"2026-05-28T03:18:41Z slot=dashboard prior_state=none action=registered\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Fatalf("boot log (-want +got):\n%s", diff)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !bootLine.MatchString(l) {
			t.Errorf("line %q does not match %s", l, BootLine)
		}
	}
	// A second boot appends.
	f.now = f.now.Add(time.Hour)
	f.mustRun()
	b, _ = os.ReadFile(BootLogPath(f.home))
	if n := strings.Count(string(b), "\n"); n != 6 || !strings.HasPrefix(string(b), want) {
		t.Fatalf("second run must append 3 lines, got:\n%s", b)
	}
}

func TestBootLogRotation(t *testing.T) {
	for _, c := range []struct {
		name   string
		size   int
		rotate bool
	}{
		{"below_threshold", BootLogMax - 1, false},
		{"at_threshold", BootLogMax, true},
		{"above_threshold", BootLogMax + 100, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			p := BootLogPath(f.home)
			old := strings.Repeat("o", c.size)
			f.write(p, old)
			f.write(p+".1", "older rotation\n")
			o := f.mustRun()
			cur, _ := os.ReadFile(p)
			prev, _ := os.ReadFile(p + ".1")
			if c.rotate {
				if string(prev) != old {
					t.Fatalf(".1 should hold the rotated log (%d bytes), holds %d bytes", len(old), len(prev))
				}
				if string(cur) != o.stdout {
					t.Fatalf("the fresh log should hold only this boot's lines:\n%s", cur)
				}
				return
			}
			if string(prev) != "older rotation\n" {
				t.Fatalf(".1 changed below the threshold: %q", prev)
			}
			if string(cur) != old+o.stdout {
				t.Fatalf("below the threshold the lines must be appended (log is %d bytes)", len(cur))
			}
		})
	}
}

// Containers on one volume append to one boot log at once, across a
// rotation: every line lands whole, exactly once, in the log or its .1,
// and the log is rotated once.
func TestBootLogConcurrentAppends(t *testing.T) {
	home := t.TempDir()
	p := BootLogPath(home)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	old := "2026-01-01T00:00:00Z profile=old prior_state=none action=registered\n"
	if err := os.WriteFile(p, []byte(strings.Repeat(old, BootLogMax/len(old)-20)), 0o644); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 40
	var wg sync.WaitGroup
	rotations := make(chan bool, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				line := fmt.Sprintf("2026-01-01T00:00:00Z profile=w%d-%d prior_state=none action=registered", w, i)
				rep, err := appendBootLog(BootLogRequest{Home: home, Lines: []string{line}})
				if err != nil {
					t.Error(err)
					return
				}
				rotations <- rep.Rotated
			}
		}()
	}
	wg.Wait()
	close(rotations)
	rotated := 0
	for r := range rotations {
		if r {
			rotated++
		}
	}
	var all []byte
	for _, f := range []string{p + ".1", p} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(all), old, ""), "\n"), "\n") {
		if !regexp.MustCompile(BootLine).MatchString(l) {
			t.Fatalf("a torn or mixed line: %q", l)
		}
		seen[l]++
	}
	for w := range writers {
		for i := range each {
			if n := seen[fmt.Sprintf("2026-01-01T00:00:00Z profile=w%d-%d prior_state=none action=registered", w, i)]; n != 1 {
				t.Fatalf("line w%d-%d written %d times", w, i, n)
			}
		}
	}
	if rotated != 1 {
		t.Fatalf("rotated %d times, want once", rotated)
	}
}

func TestBootLogIsNeverFollowedThroughASymlink(t *testing.T) {
	f := newFixture(t)
	target := filepath.Join(t.TempDir(), "target")
	f.write(target, "keep\n")
	if err := os.MkdirAll(filepath.Dir(BootLogPath(f.home)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, BootLogPath(f.home)); err != nil {
		t.Fatal(err)
	}
	o := f.run(false)
	if o.err == nil || !strings.Contains(o.err.Error(), "boot log") {
		t.Fatalf("want a boot log error, got %v", o.err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	f.upOnPickup("gateway-default")
}

func TestLeftoverStagingDirsRemoved(t *testing.T) {
	f := newFixture(t)
	left := []string{slot.StagingPrefix + "gateway-a.1", slot.RemovingPrefix + "gateway-b.2"}
	for _, d := range left {
		f.write(filepath.Join(f.scandir, d, "run"), "#!/bin/sh\n")
	}
	keep := filepath.Join(f.scandir, ".s6-svscan")
	if err := os.Mkdir(keep, 0o700); err != nil {
		t.Fatal(err)
	}
	f.mustRun()
	for _, d := range left {
		if exists(filepath.Join(f.scandir, d)) {
			t.Errorf("%s survived", d)
		}
	}
	if !exists(keep) {
		t.Fatal(".s6-svscan was removed")
	}
}

func TestStalePidFilesRemoved(t *testing.T) {
	f := newFixture(t)
	coder := f.profile("coder")
	skipped := f.profile("Skipped")
	for _, d := range []string{f.home, coder, skipped} {
		f.write(filepath.Join(d, "gateway.pid"), "42\n")
		f.write(filepath.Join(d, "processes.json"), "{}")
	}
	f.write(filepath.Join(f.home, "other.pid"), "1")
	f.mustRun()
	for _, d := range []string{f.home, coder} {
		for _, n := range staleFiles {
			if exists(filepath.Join(d, n)) {
				t.Errorf("%s survived", filepath.Join(d, n))
			}
		}
	}
	for _, p := range []string{filepath.Join(skipped, "gateway.pid"), filepath.Join(f.home, "other.pid")} {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
}

// fileID is what proves a file was not rewritten.
type fileID struct {
	Ino   uint64
	Mtime int64
	Mode  fs.FileMode
}

// idsOf lists every path under dir with its inode, mtime and mode.
func idsOf(t *testing.T, dir string) map[string]fileID {
	t.Helper()
	m := map[string]fileID{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = fileID{Ino: st.Ino, Mtime: fi.ModTime().UnixNano(), Mode: fi.Mode()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSecondRunRewritesNothing(t *testing.T) {
	f := newFixture(t)
	f.profile("coder")
	f.state("default", `{"desired_state":"running"}`)
	f.env[CmdEnv] = `["gateway","run"]`
	f.env[DashboardEnv] = "1"
	first := f.mustRun()
	for _, s := range first.sum.Slots {
		if s.Change != slot.Created {
			t.Fatalf("first run: %s %s, want created", s.Name, s.Change)
		}
	}
	slots, home := idsOf(t, f.scandir), idsOf(t, f.home)
	delete(home, "logs/container-boot.log")
	second := f.mustRun()
	for _, s := range second.sum.Slots {
		if s.Change != slot.Unchanged {
			t.Errorf("second run: %s %s, want unchanged", s.Name, s.Change)
		}
	}
	if diff := cmp.Diff(slots, idsOf(t, f.scandir)); diff != "" {
		t.Fatalf("second run changed the scandir (-first +second):\n%s", diff)
	}
	after := idsOf(t, f.home)
	delete(after, "logs/container-boot.log")
	if diff := cmp.Diff(home, after); diff != "" {
		t.Fatalf("second run changed the volume beyond the boot log (-first +second):\n%s", diff)
	}
}

func TestSecondRunSyncsTheDownFile(t *testing.T) {
	f := newFixture(t)
	f.state("default", `{"desired_state":"running"}`)
	f.mustRun()
	f.state("default", `{"desired_state":"stopped"}`)
	o := f.mustRun()
	if f.upOnPickup("gateway-default") {
		t.Fatal("desired stopped on the second run: want a down file")
	}
	if o.sum.Slots[0].Change != slot.Updated {
		t.Fatalf("want updated, got %s", o.sum.Slots[0].Change)
	}
	f.state("default", `{"desired_state":"running"}`)
	f.mustRun()
	if !f.upOnPickup("gateway-default") {
		t.Fatal("desired running again: want no down file")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.profile("coder")
	f.state("coder", `{"desired_state":"running"}`)
	f.write(filepath.Join(f.home, "gateway.pid"), "1")
	f.write(filepath.Join(f.scandir, slot.StagingPrefix+"gateway-x.1", "run"), "x")
	f.env[CmdEnv] = `["gateway","run"]`
	f.env[DashboardEnv] = "1"
	root := filepath.Dir(f.home)
	before := s6tree.Snapshot(root, true)
	o := f.run(true)
	if o.err != nil {
		t.Fatalf("dry run: %v", o.err)
	}
	if diff := cmp.Diff(before, s6tree.Snapshot(root, true)); diff != "" {
		t.Fatalf("dry run changed files (-before +after):\n%s", diff)
	}
	for _, want := range []string{
		"dry-run: remove leftover " + filepath.Join(f.scandir, slot.StagingPrefix+"gateway-x.1"),
		"dry-run: migrate profile=default to desired state running",
		"dry-run: remove stale " + filepath.Join(f.home, "gateway.pid"),
		"dry-run: profile=default prior_state=none action=started change=create",
		"dry-run: profile=coder prior_state=running action=started change=create",
		"dry-run: slot=dashboard prior_state=none action=started change=create",
		"dry-run: no rescan: no s6-svscan answers",
	} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, o.stdout)
		}
	}
	// After the real run, the plan says there is nothing left to do.
	f.mustRun()
	o = f.run(true)
	if strings.Contains(o.stdout, "change=create") || strings.Contains(o.stdout, "change=update") || strings.Contains(o.stdout, "remove") {
		t.Fatalf("plan after a real run should change nothing:\n%s", o.stdout)
	}
}

func TestNoTreeWritesSlotsWarnsAndSucceeds(t *testing.T) {
	f := newFixture(t)
	f.state("default", `{"desired_state":"running"}`)
	o := f.run(false)
	if o.err != nil {
		t.Fatalf("no tree must not fail reconcile: %v", o.err)
	}
	f.upOnPickup("gateway-default")
	if o.sum.Rescanned {
		t.Fatal("reported a rescan with no tree")
	}
	if !strings.Contains(o.log, "level=WARN") || !strings.Contains(o.log, "rescan could not be sent") {
		t.Fatalf("want a warning about the rescan:\n%s", o.log)
	}
}

func TestMissingScandirIsCreated(t *testing.T) {
	f := newFixture(t)
	if err := os.Remove(f.scandir); err != nil {
		t.Fatal(err)
	}
	f.mustRun()
	f.upOnPickup("dashboard")
}

func TestSlotCountWarning(t *testing.T) {
	for _, c := range []struct {
		others int
		warn   bool
	}{{WarnSlots - 3, false}, {WarnSlots - 2, true}} {
		f := newFixture(t)
		// Other services in the scandir count too; default and dashboard
		// make 2 more.
		for i := 0; i < c.others; i++ {
			if err := os.Mkdir(filepath.Join(f.scandir, fmt.Sprintf("svc%03d", i)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		o := f.mustRun()
		if got := strings.Contains(o.log, "s6-svscan supervises at most about 500 logged slots"); got != c.warn {
			t.Fatalf("%d service dirs: warned %v, want %v\n%s", c.others+2, got, c.warn, o.log)
		}
	}
}

func TestServeVolumeRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.profile("coder")
	f.state("coder", `{"gateway_state":"draining"}`)
	f.write(filepath.Join(f.home, "processes.json"), "{}")
	req, _ := json.Marshal(request{Scan: &ScanRequest{Home: f.home, Migrate: "default", Now: 1700000000}})
	var out bytes.Buffer
	if err := ServeVolume(bytes.NewReader(req), &out); err != nil {
		t.Fatal(err)
	}
	var resp response
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Error != "" || resp.Scan == nil {
		t.Fatalf("answer %s: %v", out.Bytes(), err)
	}
	want := []ProfileState{{Profile: "default", Desired: state.Running, Migrated: true}, {Profile: "coder", Desired: state.Running}}
	if diff := cmp.Diff(want, resp.Scan.Profiles); diff != "" {
		t.Fatalf("profiles (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(f.home, "processes.json")}, resp.Scan.Removed); diff != "" {
		t.Fatalf("removed (-want +got):\n%s", diff)
	}
	// One child serves a whole run: requests follow each other on stdin.
	two, _ := json.Marshal(request{BootLog: &BootLogRequest{Home: f.home, Lines: []string{"line one"}}})
	out.Reset()
	if err := ServeVolume(bytes.NewReader(append(append(req, '\n'), two...)), &out); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	var first, second response
	if err := dec.Decode(&first); err != nil || first.Scan == nil || first.Error != "" {
		t.Fatalf("first answer of a session: %+v %v", first, err)
	}
	if err := dec.Decode(&second); err != nil || second.BootLog == nil || second.Error != "" {
		t.Fatalf("second answer of a session: %+v %v", second, err)
	}
	// An empty stream is a session with no request: no answer, no error.
	out.Reset()
	if err := ServeVolume(strings.NewReader(""), &out); err != nil || out.Len() != 0 {
		t.Fatalf("empty stream: %v %q", err, out.String())
	}
	for _, bad := range []string{"{}", "garbage", `{"scan":{"home":"relative"}}`, `{"nope":1}`} {
		out.Reset()
		if err := ServeVolume(strings.NewReader(bad), &out); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Error == "" {
			t.Fatalf("request %q: want an error answer, got %s", bad, out.Bytes())
		}
	}
}

// Root takes back the scandir, s6-svscan's control FIFO and lock, and every
// slot's directory and the files s6 runs from it, from whoever else owns
// them or may write them (an older hermes-s6 handed them to the service
// account, which could then make root run anything); the supervise and
// event skeletons keep their group.
func TestRootWork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root: run as root (CI does)")
	}
	f := newFixture(t)
	ctl := filepath.Join(f.scandir, ".s6-svscan")
	if err := os.Mkdir(ctl, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(ctl, "control"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.write(filepath.Join(ctl, "lock"), "")
	f.write(filepath.Join(f.scandir, "gateway-x", "run"), "")
	f.write(filepath.Join(f.scandir, "gateway-x", "supervise", "status"), "")
	f.write(filepath.Join(f.scandir, "foreign", "run"), "")
	svc := &account.Account{Name: "svc", UID: 54321, GID: 54322}
	for _, p := range []string{f.scandir, filepath.Join(ctl, "control"), filepath.Join(ctl, "lock"),
		filepath.Join(f.scandir, "gateway-x"), filepath.Join(f.scandir, "gateway-x", "run"),
		filepath.Join(f.scandir, "gateway-x", "supervise"), filepath.Join(f.scandir, "foreign", "run")} {
		if err := os.Lchown(p, svc.UID, svc.GID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(f.scandir, 0o777); err != nil {
		t.Fatal(err)
	}
	root := account.Identity{Self: account.Account{Name: "root"}, Service: svc}
	owner := func(p string) (int, int) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid)
	}

	before := s6tree.Snapshot(f.scandir, true)
	changes, err := rootWork(f.scandir, root, true)
	if err != nil || len(changes) != 6 {
		t.Fatalf("dry run: want 6 planned changes (5 chowns, 1 chmod), got %q %v", changes, err)
	}
	if diff := cmp.Diff(before, s6tree.Snapshot(f.scandir, true)); diff != "" {
		t.Fatalf("dry run changed the scandir:\n%s", diff)
	}

	if _, err := rootWork(f.scandir, root, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.scandir, filepath.Join(ctl, "control"), filepath.Join(ctl, "lock"), filepath.Join(f.scandir, "gateway-x"), filepath.Join(f.scandir, "gateway-x", "run")} {
		if u, g := owner(p); u != 0 || g != 0 {
			t.Errorf("%s owned by %d:%d, want root", p, u, g)
		}
	}
	if fi, _ := os.Stat(f.scandir); fi.Mode().Perm() != 0o755 {
		t.Errorf("scandir mode %04o, want 0755", fi.Mode().Perm())
	}
	// The skeleton is how the account controls its slot; a foreign service
	// is none of hermes-s6's business.
	for _, p := range []string{filepath.Join(f.scandir, "gateway-x", "supervise"), filepath.Join(f.scandir, "foreign", "run")} {
		if u, _ := owner(p); u != svc.UID {
			t.Errorf("%s was taken although it is not hermes-s6's to take", p)
		}
	}
	// Idempotent: nothing left to change.
	if changes, err := rootWork(f.scandir, root, false); err != nil || len(changes) != 0 {
		t.Fatalf("second root work: %q %v", changes, err)
	}
	// Nothing to do when not root.
	if changes, _ := rootWork(f.scandir, account.Identity{Self: *svc, Service: svc}, false); len(changes) != 0 {
		t.Fatalf("as the service account: %q", changes)
	}
}

// A volume worker that cannot run loses the gateways (their state is
// unknown), not the dashboard, and says what the account needs.
func TestVolumeWorkerFailure(t *testing.T) {
	f := newFixture(t)
	var out, log bytes.Buffer
	_, err := Run(context.Background(), Options{
		Env: config.Env{
			Layout: profile.Layout{Home: f.home, Scandir: f.scandir},
			Tools:  s6.Tools{Dir: "/usr/bin"},
			Slot: render.Config{Home: f.home, Shebang: render.ShebangSh, Hermes: "hermes",
				LogArchives: render.DefaultLogArchives, LogSize: render.DefaultLogSize},
			Identity: account.Resolve(nil),
			Getenv:   func(string) string { return "" },
			Log:      slog.New(slog.NewTextHandler(&log, nil)),
		},
		Out:    &out,
		Volume: &AsAccount{Account: &account.Account{Name: "nobody", UID: 65534, GID: 65534}, Exe: filepath.Join(t.TempDir(), "missing-hermes-s6")},
	})
	if err == nil || !strings.Contains(err.Error(), "read the volume") {
		t.Fatalf("want a volume error, got %v", err)
	}
	if hs := hint.Of(err); len(hs) != 1 || !strings.Contains(hs[0], "service account nobody") {
		t.Fatalf("want a hint naming the account, got %q", hs)
	}
	if exists(f.slotDir("gateway-default")) {
		t.Fatal("a gateway slot was installed without its desired state")
	}
	f.upOnPickup("dashboard")
}
