package integration

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// doctorReport is `hermes-s6 doctor --json`.
type doctorReport struct {
	OK     bool `json:"ok"`
	Counts struct {
		OK, Warn, Fail int
	} `json:"counts"`
	Findings []doctorFinding `json:"findings"`
}

type doctorFinding struct {
	Check    string `json:"check"`
	Severity string `json:"severity"`
	Problem  string `json:"problem"`
	Fix      string `json:"fix"`
}

// doctorRun runs doctor twice, as text and as JSON, with run, and checks
// that both agree on the exit code.
func doctorRun(t *testing.T, run func(args ...string) s6tree.Result) (s6tree.Result, doctorReport) {
	t.Helper()
	text := run("doctor")
	js := run("doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(js.Stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, js)
	}
	if text.Code != js.Code || (text.Code == 0) != rep.OK || text.Stderr != "" {
		t.Fatalf("doctor: text %s\njson %s", text, js)
	}
	return text, rep
}

// find returns the findings of check with severity sev whose problem
// contains sub.
func (r doctorReport) find(check, sev, sub string) []doctorFinding {
	var out []doctorFinding
	for _, f := range r.Findings {
		if f.Check == check && f.Severity == sev && strings.Contains(f.Problem, sub) {
			out = append(out, f)
		}
	}
	return out
}

// mustFind fails unless the report has exactly one such finding.
func (r doctorReport) mustFind(t *testing.T, text, check, sev, sub string) doctorFinding {
	t.Helper()
	got := r.find(check, sev, sub)
	if len(got) != 1 {
		t.Fatalf("want one %s %s finding with %q, got %d:\n%s", sev, check, sub, len(got), text)
	}
	return got[0]
}

// onlyOK fails unless every line but the summary is an ok line.
func onlyOK(t *testing.T, r s6tree.Result) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "ok    ") {
			t.Fatalf("want only ok lines:\n%s", r)
		}
	}
	if r.Code != 0 || !strings.HasPrefix(lines[len(lines)-1], "doctor: ") || !strings.HasSuffix(lines[len(lines)-1], " 0 warn, 0 FAIL: nothing breaks operation") {
		t.Fatalf("summary: %s", r)
	}
}

// paste runs each fix line of rep that is a command (not a "# …" note)
// through sh, as an operator pasting it would, with env and binDir first
// on PATH.
func paste(t *testing.T, rep doctorReport, env []string, binDir string) {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Fix == "" || strings.HasPrefix(f.Fix, "#") {
			continue
		}
		cmd := exec.Command("/bin/sh", "-c", f.Fix)
		cmd.Env = append(env, "PATH="+binDir+":"+s6tree.Bin+":/usr/sbin:/usr/bin:/sbin:/bin")
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pasting the fix of %s (%s):\n%s\nfailed: %v\n%s", f.Check, f.Problem, f.Fix, err, out)
		}
	}
}

// quietSnapshot records what doctor could change on a live tree and what
// nothing else changes meanwhile: every path's type, mode and owner, and
// the content and ctime of every file but the ones s6 and s6-log rewrite.
func quietSnapshot(t *testing.T, tr *s6tree.Tree) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, root := range []string{tr.Scandir, tr.Home} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			m[p] = fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
			busy := strings.Contains(p, "/supervise/") || strings.Contains(p, "/event/") || strings.HasPrefix(p, filepath.Join(tr.Home, "logs"))
			if fi.Mode().IsRegular() && !busy {
				b, _ := os.ReadFile(p)
				m[p] += fmt.Sprintf(" ino=%d ctime=%d %q", st.Ino, st.Ctim.Nano(), b)
			}
			return nil
		})
	}
	return m
}

// svc runs Debian's s6-svc.
func svc(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(filepath.Join(s6tree.Bin, "s6-svc"), args...).CombinedOutput(); err != nil {
		t.Fatalf("s6-svc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// svstatUp reports what s6-svstat says of dir's up field.
func svstatUp(dir string) bool {
	out, _ := exec.Command(filepath.Join(s6tree.Bin, "s6-svstat"), "-o", "up", dir).Output()
	return strings.TrimSpace(string(out)) == "true"
}

// loggersUp waits until every slot's s6-log runs and holds its lock.
func loggersUp(t *testing.T, tr *s6tree.Tree, slots map[string]string) {
	t.Helper()
	tr.Eventually(t, wait, "every logger up with its lock", func() bool {
		for slot, logDir := range slots {
			if _, err := os.Stat(filepath.Join(logDir, "lock")); err != nil || !svstatUp(filepath.Join(tr.Scandir, slot, "log")) {
				return false
			}
		}
		return true
	})
}

// Doctor on a real tree: clean after a boot; each problem made on it is
// found, nothing is changed by looking, and the fix lines, pasted into sh,
// make it clean again.
func TestDoctor(t *testing.T) {
	t.Run("live_tree", func(t *testing.T) {
		tr := s6tree.Start(t)
		roots := s6Roots(t, "s6-svscan")
		run := func(args ...string) s6tree.Result { return tr.RunEnv(t, roots, args...) }
		addProfile(t, tr, "coder")
		addProfile(t, tr, "gone")
		setState(t, tr, "default", `{"desired_state":"running"}`)
		setState(t, tr, "coder", `{"desired_state":"stopped"}`)
		if r := run("reconcile"); r.Code != 0 {
			t.Fatalf("reconcile: %s", r)
		}
		gw := func(p string) string { return filepath.Join(tr.Home, "logs", "gateways", p) }
		loggersUp(t, tr, map[string]string{"gateway-default": gw("default"), "gateway-coder": gw("coder"), "gateway-gone": gw("gone"),
			"dashboard": filepath.Join(tr.Home, "logs", "dashboard")})
		eventually(t, tr, "default", "default up", func(s status) bool { return s.Up })

		r, rep := doctorRun(t, run)
		onlyOK(t, r)
		if rep.Counts.Fail != 0 || rep.Counts.OK != len(rep.Findings) {
			t.Fatalf("json counts: %+v", rep.Counts)
		}

		// One problem per check.
		setState(t, tr, "coder", `{"desired_state":`)
		svc(t, "-d", filepath.Join(tr.Scandir, "gateway-default"))
		eventually(t, tr, "default", "default down", func(s status) bool { return !s.Up && !s.WantUp })
		for _, p := range []string{"coder", "gone"} {
			svc(t, "-d", filepath.Join(tr.Scandir, "gateway-"+p, "log"))
			tr.Eventually(t, wait, p+"'s logger down", func() bool { return !svstatUp(filepath.Join(tr.Scandir, "gateway-"+p, "log")) })
		}
		if err := os.RemoveAll(gw("gone")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(t.TempDir(), gw("gone")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(tr.Home, "profiles", "gone")); err != nil {
			t.Fatal(err)
		}
		addProfile(t, tr, "newp")
		staging := filepath.Join(tr.Scandir, ".hermes-s6-staging.gateway-x.123")
		writeFile(t, filepath.Join(staging, "run"), "#!/bin/sh\n")
		old := time.Now().Add(-time.Hour)
		os.Chtimes(staging, old, old)

		before := quietSnapshot(t, tr)
		r, rep = doctorRun(t, run)
		if r.Code != 1 {
			t.Fatalf("doctor on a broken tree: want exit 1, got %s", r)
		}
		if diff := cmp.Diff(before, quietSnapshot(t, tr)); diff != "" {
			t.Fatalf("doctor changed the tree (-before +after):\n%s", diff)
		}
		for _, w := range []struct{ check, sev, sub string }{
			{"state", "fail", filepath.Join(tr.Home, "profiles", "coder", "gateway_state.json")},
			{"drift", "fail", "gateway-default: desired state running, but s6 keeps it down"},
			{"logger", "fail", "gateway-coder's logger is down"},
			{"logger", "fail", "gateway-gone's logger is down"},
			{"log-dir", "fail", gw("gone") + " is a symlink"},
			{"slots", "warn", "gateway-gone belongs to profile gone, whose directory is gone"},
			{"profiles", "warn", "profile newp has no slot"},
			{"leftovers", "warn", staging},
		} {
			rep.mustFind(t, r.Stdout, w.check, w.sev, w.sub)
			line := map[string]string{"fail": "FAIL", "warn": "warn"}[w.sev] + "  " + w.check + ": "
			if !strings.Contains(r.Stdout, line) {
				t.Errorf("text output lacks %q:\n%s", line, r.Stdout)
			}
		}
		if n := rep.Counts.Warn + rep.Counts.Fail; n != 8 {
			t.Errorf("want exactly the 8 problems made, got %d:\n%s", n, r.Stdout)
		}

		// Paste every fix; doctor is clean again once s6 has caught up.
		hs6, _ := s6tree.Binaries(t)
		paste(t, rep, append(tr.Env(t), roots...), filepath.Dir(hs6))
		if !s6tree.Poll(wait, func() bool { r = run("doctor"); return r.Code == 0 && !strings.Contains(r.Stdout, "\nwarn") }) {
			t.Fatalf("doctor after pasting the fixes:\n%s\ns6-svscan output:\n%s", r, tr.Output())
		}
		r, _ = doctorRun(t, run)
		onlyOK(t, r)
	})

	// A gateway that dies at once is restarted after a backoff, waiting in
	// its run script, so s6 sees it up most of the time: the death tally is
	// what shows the loop.
	t.Run("crash_loop", func(t *testing.T) {
		tr := s6tree.Start(t)
		roots := s6Roots(t, "s6-svscan")
		run := func(args ...string) s6tree.Result { return tr.RunEnv(t, roots, args...) }
		addProfile(t, tr, "loop")
		writeFile(t, filepath.Join(tr.Home, "standin", "loop.exit"), "1")
		tr.MustRun(t, "register", "--profile", "loop", "--start")
		tr.Eventually(t, 30*time.Second, "three deaths of gateway-loop", func() bool { return countStarts(t, tr, "loop") > 3 })
		r, rep := doctorRun(t, run)
		f := rep.mustFind(t, r.Stdout, "crash-loop", "fail", "gateway-loop is crash-looping")
		if !strings.Contains(f.Problem, "(last exit 1)") || !strings.Contains(f.Fix, "hermes-s6 logs --profile loop") {
			t.Fatalf("finding: %+v", f)
		}
		// Stopped, it is no loop any more.
		tr.MustRun(t, "stop", "--profile", "loop")
		r, rep = doctorRun(t, run)
		if got := rep.find("crash-loop", "fail", ""); len(got) != 0 || r.Code != 0 {
			t.Fatalf("after stop: %s", r)
		}
	})

	// The dashboard slot is held to HERMES_DASHBOARD, its desired state.
	t.Run("dashboard", func(t *testing.T) {
		tr := s6tree.Start(t)
		roots := s6Roots(t, "s6-svscan")
		on := append([]string{"HERMES_DASHBOARD=1", "HERMES_DASHBOARD_PORT=" + freePort(t)}, roots...)
		if r := tr.RunEnv(t, on, "reconcile"); r.Code != 0 {
			t.Fatalf("reconcile: %s", r)
		}
		dash := filepath.Join(tr.Scandir, "dashboard")
		tr.Eventually(t, wait, "the dashboard up", func() bool { return svstatUp(dash) })
		r, rep := doctorRun(t, func(args ...string) s6tree.Result { return tr.RunEnv(t, on, args...) })
		if got := rep.find("drift", "warn", "dashboard"); len(got) != 0 || r.Code != 0 {
			t.Fatalf("HERMES_DASHBOARD=1 and the dashboard up: %s", r)
		}
		// The same tree seen from a shell without HERMES_DASHBOARD: the
		// next container start (reconcile) would leave it down.
		r, rep = doctorRun(t, func(args ...string) s6tree.Result { return tr.RunEnv(t, roots, args...) })
		f := rep.mustFind(t, r.Stdout, "drift", "warn", "dashboard runs")
		if !strings.Contains(f.Problem, "HERMES_DASHBOARD is off") {
			t.Fatalf("finding: %+v", f)
		}
	})

	t.Run("no_tree", func(t *testing.T) {
		tr := s6tree.New(t)
		r, rep := doctorRun(t, func(args ...string) s6tree.Result { return tr.RunEnv(t, s6Roots(t, "s6-svscan"), args...) })
		if r.Code != 1 {
			t.Fatalf("no tree: want exit 1, got %s", r)
		}
		x := rep.mustFind(t, r.Stdout, "s6-svscan", "fail", "no s6-svscan is listening")
		if !strings.Contains(x.Fix, "s6-svscan "+tr.Scandir) {
			t.Errorf("fix: %s", x.Fix)
		}
		if r := tr.Run(t, "doctor", "extra"); r.Code != 2 || r.Stdout != "" || !strings.Contains(r.Stderr, `unexpected argument "extra"`) {
			t.Errorf("usage error: want exit 2 and a message, got %s", r)
		}
	})

	t.Run("service_account", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to create the account and run the tree as root")
		}
		name, uid, gid := newAccount(t, "dr", 10000) // removed after the tree is down
		tr := s6tree.Start(t)
		// The account must reach the tree and run hermes-s6: t.TempDir()s
		// are 0700.
		tr.OpenToAccounts(t)
		bin := filepath.Join(tr.Root, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		hs6, _ := s6tree.Binaries(t)
		hs6 = copyExecutable(t, hs6, bin)
		chownTree(t, tr.Home, uid, gid)
		env := append(append(tr.Env(t), s6Roots(t, "s6-svscan")...), "HERMES_S6_ACCOUNT="+name)
		run := func(args ...string) s6tree.Result {
			cmd := exec.Command(hs6, args...)
			cmd.Env, cmd.Dir = env, "/"
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			r := s6tree.Result{Stdout: stdout.String(), Stderr: stderr.String()}
			if ee, ok := err.(*exec.ExitError); ok {
				r.Code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return r
		}
		owner := fmt.Sprintf("%d:%d", uid, gid)

		// Before the boot reconcile the tree is root's alone, as it must be.
		r, rep := doctorRun(t, run)
		for _, check := range []string{"scandir", "s6-svscan"} {
			for _, f := range rep.Findings {
				if f.Check == check && f.Severity != "ok" {
					t.Errorf("%s of a root-only tree: %s", check, r.Stdout)
				}
			}
		}
		// An older hermes-s6 (or a /run that outlived a restart) left the
		// scandir and s6-svscan's control FIFO to the account, which could
		// then make root run anything: doctor fails both, and its fixes
		// take them back.
		ctl := filepath.Join(tr.Scandir, ".s6-svscan")
		for _, p := range []string{tr.Scandir, filepath.Join(ctl, "control")} {
			if err := os.Lchown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		r, rep = doctorRun(t, run)
		if r.Code != 1 {
			t.Fatalf("a scandir the account owns: want exit 1, got %s", r)
		}
		rep.mustFind(t, r.Stdout, "scandir", "fail", "is the service account's")
		rep.mustFind(t, r.Stdout, "s6-svscan", "fail", "can send s6-svscan commands")
		paste(t, rep, env, bin)
		r, rep = doctorRun(t, run)
		for _, check := range []string{"scandir", "s6-svscan"} {
			for _, f := range rep.Findings {
				if f.Check == check && f.Severity != "ok" {
					t.Errorf("%s after pasting its fixes: %s", check, r.Stdout)
				}
			}
		}

		if r := run("reconcile"); r.Code != 0 {
			t.Fatalf("reconcile as root: %s", r)
		}
		loggersUp(t, tr, map[string]string{"gateway-default": filepath.Join(tr.Home, "logs", "gateways", "default"),
			"dashboard": filepath.Join(tr.Home, "logs", "dashboard")})
		r, rep = doctorRun(t, run)
		onlyOK(t, r)
		if got := rep.find("supervise", "ok", name); len(got) != 1 {
			t.Fatalf("supervise should have checked the skeleton for %s:\n%s", name, r.Stdout)
		}
		// The account sees the same clean tree (docker exec -u hermes).
		as := exec.Command(hs6, "doctor")
		as.Env, as.Dir = env, "/"
		as.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if out, err := as.CombinedOutput(); err != nil {
			t.Fatalf("doctor as the account: %v\n%s", err, out)
		}

		// A control FIFO root took back, a log dir the account cannot write.
		ctlFIFO := filepath.Join(tr.Scandir, "gateway-default", "supervise", "control")
		logDir := filepath.Join(tr.Home, "logs", "gateways", "default")
		for _, p := range []string{ctlFIFO, logDir} {
			if err := os.Lchown(p, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(ctlFIFO, 0o600); err != nil {
			t.Fatal(err)
		}
		r, rep = doctorRun(t, run)
		if r.Code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		x := rep.mustFind(t, r.Stdout, "supervise", "fail", "gateway-default/supervise/control (owner 0:0 mode 0600)")
		if x.Fix != fmt.Sprintf("chown 0:%d %s && chmod 0620 %s", gid, ctlFIFO, ctlFIFO) {
			t.Errorf("supervise fix: %s", x.Fix)
		}
		x = rep.mustFind(t, r.Stdout, "log-dir", "fail", logDir+" (owner 0:0 mode 0755)")
		if !strings.HasPrefix(x.Fix, "chown -h "+owner+" "+logDir+" && ") {
			t.Errorf("log-dir fix: %s", x.Fix)
		}
		paste(t, rep, env, bin)
		if !s6tree.Poll(wait, func() bool { r = run("doctor"); return r.Code == 0 && !strings.Contains(r.Stdout, "\nwarn") }) {
			t.Fatalf("doctor after pasting the fixes:\n%s\ns6-svscan output:\n%s", r, tr.Output())
		}
		r, _ = doctorRun(t, run)
		onlyOK(t, r)
		// The account controls the slot again.
		as = exec.Command(hs6, "start", "--profile", "default", "--no-wait")
		as.Env, as.Dir = env, "/"
		as.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if out, err := as.CombinedOutput(); err != nil {
			t.Fatalf("start as the account after the fix: %v\n%s", err, out)
		}
	})
}
