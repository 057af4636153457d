package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// bootLine is one line of container-boot.log (docs/reconcile.md: The boot log).
var bootLine = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (profile=[a-z0-9][a-z0-9_-]*|slot=dashboard) prior_state=(running|stopped|none|corrupt) action=(started|registered|left-out)$`)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func setState(t *testing.T, tr *s6tree.Tree, p, content string) {
	t.Helper()
	dir := tr.Home
	if p != "default" {
		dir = filepath.Join(tr.Home, "profiles", p)
	}
	writeFile(t, filepath.Join(dir, "gateway_state.json"), content)
}

// countingTools is an s6 tool directory whose s6-svscanctl records every
// call in the returned file before running the real one.
func countingTools(t *testing.T) (dir, calls string) {
	t.Helper()
	dir = t.TempDir()
	calls = filepath.Join(dir, "svscanctl.calls")
	ents, err := os.ReadDir(s6tree.Bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "s6-") && e.Name() != "s6-svscanctl" {
			if err := os.Symlink(filepath.Join(s6tree.Bin, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	script := "#!/bin/sh\necho \"$*\" >>" + calls + "\nexec " + filepath.Join(s6tree.Bin, "s6-svscanctl") + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "s6-svscanctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, calls
}

func callsIn(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func allStatus(t *testing.T, tr *s6tree.Tree) map[string]status {
	t.Helper()
	r := tr.MustRun(t, "status", "--json")
	var sts []status
	if err := json.Unmarshal([]byte(r.Stdout), &sts); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	m := map[string]status{}
	for _, s := range sts {
		m[s.Name] = s
	}
	return m
}

// A boot on a live tree: desired running comes up, everything else is
// supervised and down, and one s6-svscanctl -a picks up every slot.
func TestReconcileBoot(t *testing.T) {
	tr := s6tree.Start(t)
	tools, calls := countingTools(t)
	for _, p := range []string{"alpha", "beta", "gamma", "delta", "eps"} {
		addProfile(t, tr, p)
	}
	setState(t, tr, "default", `{"desired_state":"running"}`)
	setState(t, tr, "alpha", `{"desired_state":"stopped","gateway_state":"running"}`)
	setState(t, tr, "gamma", `{"desired_state":`)
	setState(t, tr, "delta", `{"gateway_state":"draining"}`)
	setState(t, tr, "eps", `{"gateway_state":"startup_failed"}`)

	r := tr.RunEnv(t, []string{"HERMES_S6_BIN=" + tools}, "reconcile")
	if r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	want := []string{
		"profile=default prior_state=running action=started",
		"profile=alpha prior_state=stopped action=registered",
		"profile=beta prior_state=none action=registered",
		"profile=delta prior_state=running action=started",
		"profile=eps prior_state=stopped action=registered",
		"profile=gamma prior_state=corrupt action=registered",
		"slot=dashboard prior_state=none action=registered",
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d boot lines, got:\n%s", len(want), r.Stdout)
	}
	for i, l := range lines {
		if !bootLine.MatchString(l) || !strings.HasSuffix(l, " "+want[i]) {
			t.Errorf("line %d: got %q, want <time> %s", i, l, want[i])
		}
	}
	log, _ := os.ReadFile(filepath.Join(tr.Home, "logs", "container-boot.log"))
	if string(log) != r.Stdout {
		t.Fatalf("boot log differs from stdout:\n%s", log)
	}
	if got := callsIn(calls); len(got) != 1 || got[0] != "-a "+tr.Scandir {
		t.Fatalf("want exactly one s6-svscanctl -a for 7 new slots, got %q", got)
	}

	up := map[string]bool{"gateway-default": true, "gateway-delta": true}
	var sts map[string]status
	if !s6tree.Poll(wait, func() bool {
		sts = allStatus(t, tr)
		for _, name := range []string{"gateway-default", "gateway-alpha", "gateway-beta", "gateway-gamma", "gateway-delta", "gateway-eps", "dashboard"} {
			s := sts[name]
			if !s.Supervised || s.Up != up[name] {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("slots did not settle: %+v\n%s", sts, tr.Output())
	}
	for name, s := range sts {
		if s.NormallyUp != up[name] || s.WantUp != up[name] {
			t.Errorf("%s: normally up %v, want up %v; want both %v", name, s.NormallyUp, s.WantUp, up[name])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(tr.Home, "profiles", "gamma", "gateway_state.json")); string(b) != `{"desired_state":` {
		t.Fatalf("reconcile rewrote a corrupt state file: %q", b)
	}
}

// slotFileIDs records inode and mtime of every file hermes-s6 writes in
// the scandir (not the directories: s6-supervise adds supervise/ and event/
// to them as it starts, and those change as it works).
func slotFileIDs(t *testing.T, scandir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, _ := os.ReadDir(scandir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for _, f := range []string{"run", "finish", "type", "down", "log/run"} {
			p := filepath.Join(scandir, e.Name(), f)
			fi, err := os.Lstat(p)
			if err != nil {
				continue
			}
			st := fi.Sys().(*syscall.Stat_t)
			rel, _ := filepath.Rel(scandir, p)
			m[rel] = fmt.Sprintf("ino=%d mtime=%d mode=%s", st.Ino, fi.ModTime().UnixNano(), fi.Mode())
		}
	}
	return m
}

// A second run rewrites no slot file, sends no rescan, restarts nothing and
// keeps the pid files of gateways that run.
func TestReconcileSecondRunIsIdempotent(t *testing.T) {
	tr := s6tree.Start(t)
	tools, calls := countingTools(t)
	addProfile(t, tr, "coder")
	addProfile(t, tr, "idle")
	setState(t, tr, "default", `{"desired_state":"running"}`)
	setState(t, tr, "coder", `{"desired_state":"running"}`)
	writeFile(t, filepath.Join(tr.Home, "gateway.pid"), "999999\n")
	env := []string{"HERMES_S6_BIN=" + tools, "HERMES_DASHBOARD=1", "HERMES_DASHBOARD_PORT=" + freePort(t)}

	if r := tr.RunEnv(t, env, "reconcile"); r.Code != 0 {
		t.Fatalf("first reconcile: %s", r)
	}
	if _, err := os.Stat(filepath.Join(tr.Home, "gateway.pid")); !os.IsNotExist(err) {
		t.Fatalf("a stale gateway.pid survived the first boot: %v", err)
	}
	var before map[string]status
	if !s6tree.Poll(wait, func() bool {
		before = allStatus(t, tr)
		return before["gateway-default"].Up && before["gateway-coder"].Up && before["dashboard"].Up &&
			before["gateway-idle"].Supervised
	}) {
		t.Fatalf("first boot did not bring the slots up: %+v\n%s", before, tr.Output())
	}
	// The live default gateway has a pid file now: it is not stale.
	writeFile(t, filepath.Join(tr.Home, "gateway.pid"), strconv.Itoa(before["gateway-default"].PID)+"\n")
	ids := slotFileIDs(t, tr.Scandir)
	firstCalls := callsIn(calls)

	r := tr.RunEnv(t, env, "reconcile")
	if r.Code != 0 {
		t.Fatalf("second reconcile: %s", r)
	}
	if n := len(strings.Split(strings.TrimSpace(r.Stdout), "\n")); n != 4 {
		t.Fatalf("second run: want 4 boot lines, got:\n%s", r.Stdout)
	}
	if diff := cmp.Diff(ids, slotFileIDs(t, tr.Scandir)); diff != "" {
		t.Fatalf("second run rewrote slot files (-first +second):\n%s", diff)
	}
	if got := callsIn(calls); len(got) != len(firstCalls) {
		t.Fatalf("second run sent s6-svscanctl: %q", got[len(firstCalls):])
	}
	after := allStatus(t, tr)
	for _, name := range []string{"gateway-default", "gateway-coder", "dashboard"} {
		if after[name].PID != before[name].PID || !pidAlive(after[name].PID) {
			t.Errorf("%s restarted: pid %d -> %d", name, before[name].PID, after[name].PID)
		}
	}
	if _, err := os.Stat(filepath.Join(tr.Home, "gateway.pid")); err != nil {
		t.Fatalf("the pid file of a running gateway was removed: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(tr.Home, "logs", "container-boot.log"))
	if n := strings.Count(string(b), "\n"); n != 8 {
		t.Fatalf("boot log: want 4 lines per run, got %d:\n%s", n, b)
	}
}

func TestReconcileDryRunChangesNothing(t *testing.T) {
	prepare := func(t *testing.T, tr *s6tree.Tree) {
		addProfile(t, tr, "coder")
		setState(t, tr, "coder", `{"desired_state":"running"}`)
		writeFile(t, filepath.Join(tr.Home, "gateway.pid"), "1\n")
		writeFile(t, filepath.Join(tr.Scandir, ".hermes-s6-staging.gateway-x.1", "run"), "x")
	}
	env := []string{`HERMES_S6_CMD=["gateway","run"]`, "HERMES_DASHBOARD=1"}
	check := func(t *testing.T, tr *s6tree.Tree) {
		// A settled tree: two snapshots 20ms apart agree.
		var before map[string]string
		tr.Eventually(t, wait, "the tree to settle", func() bool {
			s := s6tree.Snapshot(tr.Root, true)
			settled := cmp.Equal(before, s)
			before = s
			return settled
		})
		r := tr.RunEnv(t, env, "reconcile", "--dry-run")
		if r.Code != 0 {
			t.Fatalf("dry run: %s", r)
		}
		if diff := cmp.Diff(before, s6tree.Snapshot(tr.Root, true)); diff != "" {
			t.Fatalf("dry run changed the tree (-before +after):\n%s", diff)
		}
		for _, want := range []string{
			"dry-run: remove leftover ",
			"dry-run: migrate profile=default to desired state running",
			"dry-run: remove stale " + filepath.Join(tr.Home, "gateway.pid"),
			"dry-run: profile=default prior_state=none action=started change=create",
			"dry-run: profile=coder prior_state=running action=started change=create",
			"dry-run: slot=dashboard prior_state=none action=started change=create",
		} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("plan lacks %q:\n%s", want, r.Stdout)
			}
		}
	}
	t.Run("no_tree", func(t *testing.T) {
		tr := s6tree.New(t)
		prepare(t, tr)
		check(t, tr)
	})
	t.Run("live_tree", func(t *testing.T) {
		tr := s6tree.Start(t)
		// One slot of a previous boot, down, so nothing moves while the
		// snapshots are taken.
		addProfile(t, tr, "old")
		tr.MustRun(t, "register", "--profile", "old")
		tr.Eventually(t, wait, "old supervised, its s6-log set up", func() bool {
			for _, f := range []string{"current", "lock", "state"} {
				if _, err := os.Stat(filepath.Join(tr.Home, "logs", "gateways", "old", f)); err != nil {
					return false
				}
			}
			ok, _ := supervised(filepath.Join(tr.Scandir, "gateway-old", "log"))
			return ok && statusOf(t, tr, "old").Supervised
		})
		prepare(t, tr)
		check(t, tr)
	})
}

// With no tree answering, the slots are written, a warning says the rescan
// could not be sent, and s6-svscan picks them up when it starts.
func TestReconcileWithoutTree(t *testing.T) {
	tr := s6tree.New(t)
	setState(t, tr, "default", `{"desired_state":"running"}`)
	r := tr.Run(t, "reconcile")
	if r.Code != 0 {
		t.Fatalf("reconcile without a tree must exit 0: %s", r)
	}
	if !strings.Contains(r.Stderr, "level=WARN") || !strings.Contains(r.Stderr, "rescan could not be sent") {
		t.Fatalf("want a warning that the rescan could not be sent:\n%s", r.Stderr)
	}
	for _, name := range []string{"gateway-default", "dashboard"} {
		if _, err := os.Stat(filepath.Join(tr.Scandir, name, "run")); err != nil {
			t.Fatalf("slot %s not written: %v", name, err)
		}
	}
	tr.StartScan(t)
	eventually(t, tr, "default", "default up once s6-svscan starts", func(s status) bool { return s.Up })
}

func TestReconcileLegacyMigration(t *testing.T) {
	t.Run("gateway_run", func(t *testing.T) {
		tr := s6tree.Start(t)
		r := tr.RunEnv(t, []string{`HERMES_S6_CMD=["gateway","run"]`}, "reconcile")
		if r.Code != 0 || !strings.Contains(r.Stdout, "profile=default prior_state=none action=started") {
			t.Fatalf("reconcile: %s", r)
		}
		var st map[string]any
		b, _ := os.ReadFile(filepath.Join(tr.Home, "gateway_state.json"))
		if err := json.Unmarshal(b, &st); err != nil || st["desired_state"] != "running" || st["migrated_from"] != "legacy-container-cmd" {
			t.Fatalf("migrated state: %s (%v)", b, err)
		}
		current := filepath.Join(tr.Home, "logs", "gateways", "default", "current")
		tr.Eventually(t, wait, "the migrated gateway's banner", func() bool {
			b, _ := os.ReadFile(current)
			return strings.Contains(string(b), banner)
		})
		if st := statusOf(t, tr, "default"); !st.Up || st.DesiredState != "running" {
			t.Fatalf("migrated default: %+v", st)
		}
	})
	for _, c := range []struct{ name, cmd, env string }{
		{"no_supervise_flag", `HERMES_S6_CMD=["gateway","run","--no-supervise"]`, ""},
		{"env_opt_out", `HERMES_S6_CMD=["gateway","run"]`, "HERMES_GATEWAY_NO_SUPERVISE=yes"},
		{"no_cmd", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := s6tree.Start(t)
			r := tr.RunEnv(t, []string{c.cmd, c.env}, "reconcile")
			if r.Code != 0 || !strings.Contains(r.Stdout, "profile=default prior_state=none action=registered") {
				t.Fatalf("reconcile: %s", r)
			}
			if _, err := os.Stat(filepath.Join(tr.Home, "gateway_state.json")); !os.IsNotExist(err) {
				t.Fatalf("a state file was written: %v", err)
			}
			st := eventually(t, tr, "default", "default supervised", func(s status) bool { return s.Supervised })
			if st.Up || st.WantUp {
				t.Fatalf("default must stay down: %+v", st)
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestReconcileDashboard(t *testing.T) {
	t.Run("up", func(t *testing.T) {
		tr := s6tree.Start(t)
		port := freePort(t)
		r := tr.RunEnv(t, []string{"HERMES_DASHBOARD=true", "HERMES_DASHBOARD_PORT=" + port}, "reconcile")
		if r.Code != 0 || !strings.Contains(r.Stdout, "slot=dashboard prior_state=none action=started") {
			t.Fatalf("reconcile: %s", r)
		}
		url := "http://127.0.0.1:" + port + "/"
		tr.Eventually(t, wait, "the dashboard answering on "+url, func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		tr.Eventually(t, wait, "logs/dashboard/current", func() bool {
			b, _ := os.ReadFile(filepath.Join(tr.Home, "logs", "dashboard", "current"))
			return strings.Contains(string(b), "Hermes dashboard on")
		})
	})
	t.Run("down", func(t *testing.T) {
		tr := s6tree.Start(t)
		r := tr.Run(t, "reconcile")
		if r.Code != 0 || !strings.Contains(r.Stdout, "slot=dashboard prior_state=none action=registered") {
			t.Fatalf("reconcile: %s", r)
		}
		var d status
		if !s6tree.Poll(wait, func() bool { d = allStatus(t, tr)["dashboard"]; return d.Supervised }) {
			t.Fatalf("dashboard slot not supervised: %+v", d)
		}
		if d.Up || d.WantUp || d.PID != -1 || d.Profile != nil {
			t.Fatalf("dashboard must be present and down with no process: %+v", d)
		}
	})
	t.Run("dashboard_container", func(t *testing.T) {
		tr := s6tree.Start(t)
		r := tr.RunEnv(t, []string{`HERMES_S6_CMD=["dashboard","--port","1"]`, "HERMES_DASHBOARD=1"}, "reconcile")
		if r.Code != 0 {
			t.Fatalf("reconcile: %s", r)
		}
		if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "dashboard container") {
			t.Fatalf("want one line saying this is a dashboard container, got %q", r.Stdout)
		}
		ents, _ := os.ReadDir(tr.Scandir)
		for _, e := range ents {
			if e.Name() != ".s6-svscan" {
				t.Errorf("a dashboard container got %s in its scandir", e.Name())
			}
		}
		if _, err := os.Stat(filepath.Join(tr.Home, "logs")); !os.IsNotExist(err) {
			t.Errorf("a dashboard container wrote to the volume: %v", err)
		}
	})
}

// A hundred profiles cost one rescan, and every slot is supervised.
func TestReconcileManyProfilesOneRescan(t *testing.T) {
	tr := s6tree.Start(t)
	tools, calls := countingTools(t)
	const n = 100
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("p%03d", i)
		addProfile(t, tr, p)
		if i%20 == 0 {
			setState(t, tr, p, `{"desired_state":"running"}`)
		}
	}
	r := tr.RunEnv(t, []string{"HERMES_S6_BIN=" + tools}, "reconcile")
	if r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	if got := callsIn(calls); len(got) != 1 {
		t.Fatalf("want one s6-svscanctl for %d new slots, got %d: %q", n+2, len(got), got)
	}
	tr.Eventually(t, wait, "every slot supervised", func() bool {
		ents, _ := os.ReadDir(tr.Scandir)
		count := 0
		for _, e := range ents {
			if ok, _ := supervised(filepath.Join(tr.Scandir, e.Name())); ok && !strings.HasPrefix(e.Name(), ".") {
				count++
			}
		}
		return count == n+2
	})
}

func supervised(dir string) (bool, error) {
	fd, err := syscall.Open(filepath.Join(dir, "supervise", "control"), syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false, err
	}
	syscall.Close(fd)
	return true, nil
}

// copyExecutable copies src into dir (mode 0755).
func copyExecutable(t *testing.T, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func ownerOf(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// As root with a service account: root prepares the scandir for the
// account, and everything on the volume is read and written as the account
// (a volume file only root could read is not read).
func TestReconcileAsServiceAccount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a service account and switching to it needs root (CI runs as root)")
	}
	name, uid, gid := newAccount(t, "rec", 10002) // removed after the tree is down
	tr := s6tree.Start(t)
	// The account must reach the tree and run the binaries: t.TempDir()s
	// are 0700.
	tr.OpenToAccounts(t)
	hs6, standin := s6tree.Binaries(t)
	bin := filepath.Join(tr.Root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	hs6 = copyExecutable(t, hs6, bin)
	standin = copyExecutable(t, standin, bin)

	// The volume as the image prepares it: owned by the account.
	addProfile(t, tr, "coder")
	addProfile(t, tr, "secret")
	setState(t, tr, "coder", `{"desired_state":"stopped"}`)
	writeFile(t, filepath.Join(tr.Home, "profiles", "coder", "gateway.pid"), "7\n")
	if err := filepath.WalkDir(tr.Home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	// A state file only root can read, planted by symlink: root would see
	// "running"; the account cannot read it at all.
	rootOnly := filepath.Join(tr.Root, "root-only.json")
	writeFile(t, rootOnly, `{"desired_state":"running"}`)
	if err := os.Chmod(rootOnly, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rootOnly, filepath.Join(tr.Home, "profiles", "secret", "gateway_state.json")); err != nil {
		t.Fatal(err)
	}

	env := append(tr.Env(t), "HERMES_S6_ACCOUNT="+name, "HERMES_S6_GATEWAY_BIN="+standin, `HERMES_S6_CMD=["gateway","run"]`,
		"HERMES_S6_BROKER="+filepath.Join(tr.Root, "no-broker.sock"))
	run := func(cred *syscall.Credential, args ...string) s6tree.Result {
		cmd := exec.Command(hs6, args...)
		cmd.Env = env
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := s6tree.Result{Stdout: stdout.String(), Stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.Code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run %s: %v", hs6, err)
		}
		return r
	}

	r := run(nil, "reconcile")
	// secret's state is a symlink to a root-only file: it is not read
	// (not even tried); like a corrupt one it is reported and its slot
	// registered down; the rest come up.
	if r.Code != 0 || !strings.Contains(r.Stderr, "level=WARN") || !strings.Contains(r.Stderr, "a symbolic link on the data volume: not read") {
		t.Fatalf("reconcile as root: want exit 0 and a warning about the symlinked state, got %s", r)
	}
	for _, want := range []string{
		"profile=default prior_state=none action=started",
		"profile=coder prior_state=stopped action=registered",
		"profile=secret prior_state=corrupt action=registered",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
		}
	}
	if _, err := os.Lstat(filepath.Join(tr.Home, "profiles", "coder", "gateway.pid")); !os.IsNotExist(err) {
		t.Errorf("stale gateway.pid not removed: %v", err)
	}

	// Files on the volume belong to the account.
	for _, p := range []string{
		filepath.Join(tr.Home, "gateway_state.json"),
		filepath.Join(tr.Home, "logs"),
		filepath.Join(tr.Home, "logs", "container-boot.log"),
	} {
		if u, g := ownerOf(t, p); u != uid || g != gid {
			t.Errorf("%s owned by %d:%d, want the account %d:%d", p, u, g, uid, gid)
		}
	}
	// The scandir, s6-svscan's control and every slot stay root's; the
	// account's group gets the supervise skeleton, nothing more.
	for _, p := range []string{tr.Scandir, filepath.Join(tr.Scandir, ".s6-svscan", "control"), filepath.Join(tr.Scandir, "gateway-default"), filepath.Join(tr.Scandir, "gateway-default", "run")} {
		if u, _ := ownerOf(t, p); u != 0 {
			t.Errorf("%s owned by uid %d, want root", p, u)
		}
	}
	if u, g := ownerOf(t, filepath.Join(tr.Scandir, "gateway-default", "supervise", "control")); u != 0 || g != gid {
		t.Errorf("supervise/control owned by %d:%d, want root with the account's group %d", u, g, gid)
	}

	// The migrated default gateway runs as the account.
	st := eventually(t, tr, "default", "the migrated default gateway up", func(s status) bool { return s.Up })
	// (run is a shell as root until it execs s6-setuidgid, same pid.)
	asAccount := regexp.MustCompile(`(?m)^Uid:\s+` + strconv.Itoa(uid) + `\s`)
	tr.Eventually(t, wait, fmt.Sprintf("gateway pid %d running as uid %d", st.PID, uid), func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.PID))
		return err == nil && asAccount.Match(b)
	})

	// The account can now drive the tree without root.
	as := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if r := run(as, "start", "--profile", "coder"); r.Code != 0 {
		t.Fatalf("start as the account: %s", r)
	}
	addProfile(t, tr, "later")
	if err := os.Lchown(filepath.Join(tr.Home, "profiles", "later"), uid, gid); err != nil {
		t.Fatal(err)
	}
	// Registering needs root: with no broker to ask, the account is told
	// so, and nothing is installed.
	r = run(as, "register", "--profile", "later")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no hermes-s6 broker") || !strings.Contains(r.Stderr, "hint: registering a slot needs root") {
		t.Fatalf("register as the account without a broker: %s", r)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-later")); !os.IsNotExist(err) {
		t.Fatalf("a slot appeared: %v", err)
	}
}
