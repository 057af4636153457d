package doctor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/reconcile"
	"github.com/nousresearch/hermes-s6/s6"
	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// A clean environment: every check reports one ok line, nothing else.
func TestCleanEnvironment(t *testing.T) {
	f := newFixture(t)
	f.addProfile(t, "coder")
	def := f.addSlot(t, "default")
	f.status[def] = s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 42, ExitCode: -1, Seconds: 100}
	f.addSlot(t, "coder")
	f.addSlot(t, "")
	f.logDir(t, "gateways", "default")
	f.logDir(t, "dashboard")
	writeFile(t, filepath.Join(f.home, "gateway_state.json"), `{"desired_state":"running"}`, 0o644)
	fs := f.run()
	clean(t, fs)
	if len(fs) != len(checks) {
		t.Fatalf("want one ok line per check (%d), got %d:\n%s", len(checks), len(fs), dump(fs))
	}
	if Failed(fs) {
		t.Fatal("Failed on a clean run")
	}
}

func TestPrintFormat(t *testing.T) {
	fs := []Finding{
		{Check: CheckTools, Severity: OK, Problem: "fine"},
		{Check: CheckState, Severity: Fail, Problem: "broken", Fix: "mend it"},
		{Check: CheckDetect, Severity: Warn, Problem: "odd", Fix: "look"},
	}
	var b bytes.Buffer
	if err := Print(&b, fs); err != nil {
		t.Fatal(err)
	}
	want := "ok    s6-tools: fine\n" +
		"FAIL  state: broken\n" +
		"      fix: mend it\n" +
		"warn  s6-detect: odd\n" +
		"      fix: look\n" +
		"doctor: 1 ok, 1 warn, 1 FAIL: operation is broken: fix the FAIL lines\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Fatalf("text output (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := PrintJSON(&b, fs); err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, b.String())
	}
	if r.OK || r.Counts != (Tally{OK: 1, Warn: 1, Fail: 1}) || !cmp.Equal(r.Findings, fs) {
		t.Fatalf("json report: %+v", r)
	}
	if !strings.Contains(b.String(), `"severity": "fail"`) || strings.Contains(b.String(), `"fix": ""`) {
		t.Fatalf("json field spelling:\n%s", b.String())
	}
}

// Doctor changes nothing, however broken what it looks at.
func TestChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.addProfile(t, "coder")
	f.addProfile(t, "Bad")
	dir := f.addSlot(t, "gone")
	chmod(t, filepath.Join(dir, "supervise", "control"), 0)
	writeFile(t, filepath.Join(f.home, "profiles", "coder", "gateway_state.json"), "{", 0o644)
	ld := f.logDir(t, "gateways", "gone")
	writeFile(t, filepath.Join(ld, "lock"), "", 0o644)
	mkdir(t, filepath.Join(f.scandir, ".hermes-s6-staging.gateway-x.1"), 0o755)
	old := f.now.Add(-time.Hour)
	os.Chtimes(filepath.Join(f.scandir, ".hermes-s6-staging.gateway-x.1"), old, old)
	before := s6tree.Snapshot(f.root, true)
	fs := f.run()
	if !Failed(fs) {
		t.Fatalf("want failures:\n%s", dump(fs))
	}
	if diff := cmp.Diff(before, s6tree.Snapshot(f.root, true)); diff != "" {
		t.Fatalf("doctor changed the tree (-before +after):\n%s", diff)
	}
	for _, x := range fs {
		if x.Severity != OK {
			pasteable(t, x.Fix)
		}
	}
}

func TestToolsMissing(t *testing.T) {
	f := newFixture(t)
	f.env.Tools.Dir = t.TempDir()
	fs := f.run()
	got := problems(fs, CheckTools)
	if len(got) != 4 || got[0].Severity != Fail || got[1].Severity != Warn || got[2].Severity != Warn || got[3].Severity != Warn ||
		!strings.Contains(got[1].Problem, "s6-permafailon") || !strings.Contains(got[2].Problem, "s6-svdt") ||
		!strings.Contains(got[3].Problem, "s6-notifyoncheck") {
		t.Fatalf("want a fail for the tools and a warning each for s6-permafailon, s6-svdt and s6-notifyoncheck:\n%s", dump(fs))
	}
	for _, tool := range RequiredTools {
		if !strings.Contains(got[0].Problem, tool) {
			t.Errorf("%s not named: %s", tool, got[0].Problem)
		}
	}
	if !strings.Contains(got[0].Fix, "HERMES_S6_BIN=") {
		t.Errorf("fix: %s", got[0].Fix)
	}
	// A tool that is there but not executable counts as missing.
	dir := t.TempDir()
	for _, tool := range AllTools() {
		mode := os.FileMode(0o755)
		if tool == "s6-svstat" {
			mode = 0o644
		}
		writeFile(t, filepath.Join(dir, tool), "#!/bin/sh\n", mode)
	}
	f.env.Tools.Dir = dir
	want(t, f.run(), CheckTools, Fail, "s6-svstat not found in "+dir)
}

// No /command but the tools on PATH: fine (README: Commands; docs/lifecycle.md).
func TestToolsOnPath(t *testing.T) {
	f := newFixture(t)
	t.Setenv("PATH", f.env.Tools.Dir)
	f.env.Tools.Dir = ""
	fs := f.run()
	if got := problems(fs, CheckTools); len(got) != 0 {
		t.Fatalf("tools on PATH: %+v", got)
	}
	if s6.DefaultBin() == "" {
		for _, x := range fs {
			if x.Check == CheckTools && !strings.Contains(x.Problem, "on PATH") {
				t.Fatalf("ok line should say where: %s", x.Problem)
			}
		}
	}
	os.Remove(filepath.Join(os.Getenv("PATH"), "s6-log"))
	want(t, f.run(), CheckTools, Fail, "s6-log not found on PATH")
}

func TestDetect(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.env.ProcRoot, "1", "comm"), "bash\n", 0o644)
	want(t, f.run(), CheckDetect, Warn, `PID 1 is "bash"`, "foreground")
	writeFile(t, filepath.Join(f.env.ProcRoot, "1", "comm"), "s6-svscan\n", 0o644)
	os.Remove(f.env.Basedir)
	want(t, f.run(), CheckDetect, Warn, f.env.Basedir)
	// Never a fail: outside a container this is expected.
	if Failed(problems(f.run(), CheckDetect)) {
		t.Fatal("s6 detection failed the run")
	}
}

func TestAccountMissing(t *testing.T) {
	f := newFixture(t)
	f.env.AccountName, f.env.Identity.Service, f.env.AccountErr = "no-such-user-hs6", nil, fmt.Errorf(`service account "no-such-user-hs6": unknown user`)
	sev := Warn
	if os.Geteuid() == 0 {
		sev = Fail
	}
	x := want(t, f.run(), CheckAccount, sev, "no-such-user-hs6")
	if !strings.Contains(x.Fix, "useradd --system --user-group no-such-user-hs6") {
		t.Errorf("fix: %s", x.Fix)
	}
	f.env.AccountName, f.env.AccountErr = "", nil
	if got := problems(f.run(), CheckAccount); len(got) != 0 {
		t.Fatalf("no account configured is fine: %+v", got)
	}
}

func TestHome(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		f := newFixture(t)
		os.RemoveAll(f.home)
		x := want(t, f.run(), CheckHome, Fail, "does not exist")
		if !strings.HasPrefix(x.Fix, "mkdir -p "+f.home) {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	t.Run("not_a_directory", func(t *testing.T) {
		f := newFixture(t)
		os.RemoveAll(f.home)
		writeFile(t, f.home, "", 0o644)
		want(t, f.run(), CheckHome, Fail, "not a directory")
	})
	t.Run("not_writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("as root the scandir is root's: nothing to write for anyone else")
		}
		f := newFixture(t)
		chmod(t, f.scandir, 0o555)
		x := want(t, f.run(), CheckScandir, Fail, "cannot create slots")
		if x.Fix != "chown "+uidGid(f.acct)+" "+f.scandir {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	// Root's scandir, as it must be in the image: nobody else may write it.
	t.Run("the_service_accounts", func(t *testing.T) {
		f := newFixture(t)
		if f.acct == nil {
			t.Skip("needs root and a service account")
		}
		chown(t, f.scandir, f.acct)
		x := want(t, f.run(), CheckScandir, Fail, "is the service account's")
		if !strings.HasPrefix(x.Fix, "chown 0:0 "+f.scandir+" && chmod 0755 "+f.scandir) {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	t.Run("writable_by_others", func(t *testing.T) {
		f := newFixture(t)
		if f.acct == nil {
			t.Skip("needs root")
		}
		chmod(t, f.scandir, 0o777)
		x := want(t, f.run(), CheckScandir, Fail, "others than root can create slots")
		if x.Fix != "chmod go-w "+f.scandir {
			t.Errorf("fix: %s", x.Fix)
		}
	})
}

func TestSvscanNotListening(t *testing.T) {
	f := newFixture(t)
	f.env.Layout.Scandir = t.TempDir() // nothing listens there
	x := want(t, f.run(), CheckSvscan, Fail, "no s6-svscan is listening")
	if !strings.Contains(x.Fix, "s6-svscan "+f.env.Layout.Scandir) {
		t.Errorf("fix: %s", x.Fix)
	}
}

// s6-svscan's control FIFO is root's: the service account may not rescan,
// halt the container or otherwise drive s6-svscan.
func TestSvscanOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("s6-svscan's files belong to another account only when root runs the tree")
	}
	f := newFixture(t)
	if got := problems(f.run(), CheckSvscan); len(got) != 0 {
		t.Fatalf("a root-only s6-svscan: %+v", got)
	}
	control := filepath.Join(f.scandir, ".s6-svscan", "control")
	chown(t, control, f.acct)
	x := want(t, f.run(), CheckSvscan, Fail, "the service account nobody (65534:65534) can send s6-svscan commands")
	if !strings.HasPrefix(x.Fix, "chown 0:0 "+control+" && chmod 0600 "+control) {
		t.Errorf("fix: %s", x.Fix)
	}
}

func TestLeftovers(t *testing.T) {
	f := newFixture(t)
	f.addSlot(t, "default")
	staging := filepath.Join(f.scandir, ".hermes-s6-staging.gateway-x.123")
	removing := filepath.Join(f.scandir, ".hermes-s6-removing.gateway-y.456")
	fresh := filepath.Join(f.scandir, ".hermes-s6-staging.gateway-z.789")
	for _, d := range []string{staging, removing, fresh} {
		mkdir(t, d, 0o755)
	}
	old := f.now.Add(-time.Hour)
	os.Chtimes(staging, old, old)
	os.Chtimes(removing, old, old)
	got := problems(f.run(), CheckLeftovers)
	if len(got) != 2 {
		t.Fatalf("want the two old leftovers, not the fresh one: %+v", got)
	}
	if got[1].Fix != "rm -rf -- "+staging || !strings.Contains(got[0].Fix, "s6-svscanctl -an "+f.scandir+" && rm -rf -- "+removing) {
		t.Errorf("fixes: %q, %q", got[0].Fix, got[1].Fix)
	}
}

func TestSupervise(t *testing.T) {
	t.Run("control_unwritable", func(t *testing.T) {
		f := newFixture(t)
		dir := f.addSlot(t, "default")
		ctl := filepath.Join(dir, "supervise", "control")
		if f.acct != nil {
			os.Lchown(ctl, 0, 0)
		}
		chmod(t, ctl, 0o600)
		if f.acct == nil {
			chmod(t, ctl, 0o400)
		}
		x := want(t, f.run(), CheckSupervise, Fail, "gateway-default/supervise/control", "cannot send s6-svc commands")
		mode := "0660" // the caller's own slot
		if f.acct != nil {
			mode = "0620" // root's slot, the account's group
		}
		if !strings.Contains(x.Fix, "chmod "+mode+" "+ctl) {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	t.Run("no_skeleton", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("without root the caller owns whatever it creates")
		}
		f := newFixture(t)
		dir := f.addSlot(t, "default")
		// As s6-supervise leaves a slot that had no skeleton.
		log := filepath.Join(dir, "log")
		for _, d := range []string{dir, log} {
			os.RemoveAll(filepath.Join(d, "supervise"))
			os.RemoveAll(filepath.Join(d, "event"))
			os.Lchown(d, 0, 0)
		}
		mkdir(t, filepath.Join(log, "supervise"), 0o700)
		got := problems(f.run(), CheckSupervise)
		if len(got) != 2 || got[0].Severity != Fail || got[1].Severity != Fail {
			t.Fatalf("want a fail for the slot and one for its logger: %+v", got)
		}
		if !strings.Contains(got[0].Problem, "supervise is missing") || !strings.Contains(got[0].Fix, "mkfifo "+filepath.Join(dir, "supervise", "control")) {
			t.Errorf("slot: %+v", got[0])
		}
		if !strings.Contains(got[1].Problem, "gateway-default/log/supervise (owner 0:0 mode 0700)") {
			t.Errorf("logger: %+v", got[1])
		}
	})
	t.Run("usable_not_owned", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chown to another account needs root")
		}
		f := newFixture(t)
		dir := f.addSlot(t, "default")
		ev := filepath.Join(dir, "event")
		os.Lchown(ev, f.acct.UID, f.acct.GID)
		os.Chmod(ev, 0o3730)
		x := want(t, f.run(), CheckSupervise, Warn, fmt.Sprintf("event is owner %s", uidGid(f.acct)))
		if x.Fix != fmt.Sprintf("chown 0:%d %s && chmod 3730 %s", f.acct.GID, ev, ev) {
			t.Errorf("fix: %s", x.Fix)
		}
	})
}

func TestLogDirSymlink(t *testing.T) {
	f := newFixture(t)
	f.addProfile(t, "coder")
	f.addSlot(t, "default")
	dir := f.addSlot(t, "coder")
	f.logDir(t, "gateways", "default")
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(f.home, "logs", "gateways", "coder")); err != nil {
		t.Fatal(err)
	}
	x := want(t, f.run(), CheckLogDir, Fail, "logs/gateways/coder is a symlink (to "+elsewhere+")", "never followed")
	if !strings.HasPrefix(x.Fix, "rm -- "+filepath.Join(f.home, "logs", "gateways", "coder")+" && ") || !strings.Contains(x.Fix, "s6-svc -ru "+filepath.Join(dir, "log")) {
		t.Errorf("fix: %s", x.Fix)
	}
	// A symlinked logs/ is one finding, not one per slot.
	os.RemoveAll(filepath.Join(f.home, "logs"))
	os.Symlink(elsewhere, filepath.Join(f.home, "logs"))
	want(t, f.run(), CheckLogDir, Fail, filepath.Join(f.home, "logs")+" is a symlink")
}

func TestLogDirOwner(t *testing.T) {
	t.Run("unwritable", func(t *testing.T) {
		f := newFixture(t)
		f.addSlot(t, "default")
		dir := f.logDir(t, "gateways", "default")
		if f.acct != nil {
			os.Lchown(dir, 0, 0)
		} else {
			chmod(t, dir, 0o555)
		}
		x := want(t, f.run(), CheckLogDir, Fail, "cannot write logs there")
		if !strings.HasPrefix(x.Fix, "chown -h "+uidGid(f.acct)+" "+dir+" && ") {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	t.Run("writable_not_owned", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chown to another account needs root")
		}
		f := newFixture(t)
		f.addSlot(t, "default")
		dir := f.logDir(t, "gateways", "default")
		os.Lchown(dir, 0, 0)
		os.Chmod(dir, 0o777)
		want(t, f.run(), CheckLogDir, Warn, "is not nobody")
	})
	t.Run("current_unwritable", func(t *testing.T) {
		f := newFixture(t)
		f.addSlot(t, "")
		dir := f.logDir(t, "dashboard")
		chmod(t, filepath.Join(dir, "current"), 0o444)
		want(t, f.run(), CheckLogDir, Fail, filepath.Join(dir, "current"), "cannot write it")
	})
}

func TestLogLock(t *testing.T) {
	setup := func(t *testing.T) (*fixture, string, string) {
		f := newFixture(t)
		slotDir := f.addSlot(t, "default")
		lock := filepath.Join(f.logDir(t, "gateways", "default"), "lock")
		writeFile(t, lock, "", 0o644)
		return f, slotDir, lock
	}
	t.Run("leftover", func(t *testing.T) {
		f, slotDir, _ := setup(t)
		// No logger holds it, and none runs: an flock nobody holds blocks
		// nothing, so it is no problem and never to be removed.
		f.status[filepath.Join(slotDir, "log")] = s6.Status{PID: -1, ExitCode: -1}
		if got := problems(f.run(), CheckLogLock); len(got) != 0 {
			t.Fatalf("a leftover lock is no problem: %+v", got)
		}
	})
	t.Run("standby", func(t *testing.T) {
		f, slotDir, lock := setup(t)
		hold(t, lock)
		// The slot's logger is up, waiting for the lease: not ready.
		f.status[filepath.Join(slotDir, "log")] = s6.Status{Supervised: true, Up: true, WantUp: true, PID: 1, ExitCode: -1, Seconds: 100}
		fs := f.run()
		if got := problems(fs, CheckLogLock); len(got) != 0 {
			t.Fatalf("a standby is no problem: %+v", got)
		}
		found := false
		for _, x := range fs {
			found = found || x.Check == CheckLogLock && x.Severity == OK && strings.Contains(x.Problem, "gateway-default is a standby")
		}
		if !found {
			t.Fatalf("want an ok finding naming the standby:\n%s", dump(fs))
		}
	})
	t.Run("held_by_running_logger", func(t *testing.T) {
		f, slotDir, lock := setup(t)
		pid := hold(t, lock)
		f.status[filepath.Join(slotDir, "log")] = s6.Status{Supervised: true, Up: true, WantUp: true, PID: pid, ExitCode: -1, Seconds: 100}
		if got := problems(f.run(), CheckLogLock); len(got) != 0 {
			t.Fatalf("a running logger's lock is no problem: %+v", got)
		}
	})
	t.Run("held_by_another", func(t *testing.T) {
		f, slotDir, lock := setup(t)
		pid := hold(t, lock)
		f.status[filepath.Join(slotDir, "log")] = s6.Status{Supervised: true, WantUp: true, PID: -1, ExitCode: 111, Seconds: 30}
		want(t, f.run(), CheckLogLock, Fail, fmt.Sprintf("held by pid %d", pid), "logger is not running")
		// Or by another process while the slot's own logger runs, ready
		// (it has the lease).
		f.status[filepath.Join(slotDir, "log")] = s6.Status{Supervised: true, Up: true, WantUp: true, Ready: true, PID: 43, ExitCode: -1, Seconds: 100}
		want(t, f.run(), CheckLogLock, Fail, fmt.Sprintf("held by pid %d", pid), "logger runs as pid 43")
	})
	t.Run("passing_moment", func(t *testing.T) {
		// A logger that s6 restarts: down with its lock unheld at the
		// first look, up and holding it at the next.
		f, slotDir, lock := setup(t)
		f.env.recheck = time.Minute
		pid := hold(t, lock)
		looks := 0
		f.env.Status = func(_ context.Context, dir string) (s6.Status, error) {
			if dir != filepath.Join(slotDir, "log") {
				return f.status[dir], nil
			}
			looks++
			if looks == 1 {
				return s6.Status{Supervised: true, WantUp: true, PID: -1, ExitCode: 0}, nil
			}
			return s6.Status{Supervised: true, Up: true, WantUp: true, PID: pid, ExitCode: -1, Seconds: 1}, nil
		}
		if got := problems(f.run(), CheckLogLock); len(got) != 0 || looks < 2 {
			t.Fatalf("a restart in progress is no problem (looked %d times): %+v", looks, got)
		}
	})
	t.Run("not_a_file", func(t *testing.T) {
		f, slotDir, lock := setup(t)
		os.Remove(lock)
		syscall.Mkfifo(lock, 0o644) // opening it would block a careless reader
		f.status[filepath.Join(slotDir, "log")] = s6.Status{PID: -1, ExitCode: -1}
		want(t, f.run(), CheckLogLock, Fail, "is a FIFO")
	})
}

// holdEnv makes the test binary a lock holder (see TestMain).
const holdEnv = "HERMES_S6_DOCTOR_TEST_HOLD"

// TestMain lets the test binary stand in for an s6-log holding its lock:
// POSIX locks belong to a process, and doctor's own look at the file
// (open, F_OFD_GETLK, close) would drop a lock the test process held.
func TestMain(m *testing.M) {
	if p := os.Getenv(holdEnv); p != "" {
		fh, err := os.OpenFile(p, os.O_RDWR, 0)
		if err == nil {
			lk := syscall.Flock_t{Type: syscall.F_WRLCK}
			err = syscall.FcntlFlock(fh.Fd(), syscall.F_SETLK, &lk)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hold has another process take a POSIX write lock on p, as s6-log does,
// until cleanup, and returns its pid.
func hold(t *testing.T, p string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+p)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder: %q, %v", line, err)
	}
	return cmd.Process.Pid
}

func TestLogger(t *testing.T) {
	for _, c := range []struct {
		name string
		st   s6.Status
		sev  Severity
		sub  string
	}{
		{"down_for_long", s6.Status{Supervised: true, WantUp: true, PID: -1, ExitCode: 111, Seconds: 30}, Fail, "down for 30s"},
		{"wanted_down", s6.Status{Supervised: true, PID: -1, ExitCode: 0, Seconds: 1}, Fail, "will not restart it"},
		{"unsupervised", s6.Status{PID: -1, ExitCode: -1}, Warn, "not supervised"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			dir := f.addSlot(t, "default")
			f.status[filepath.Join(dir, "log")] = c.st
			want(t, f.run(), CheckLogger, c.sev, "gateway-default's logger", c.sub)
		})
	}
	t.Run("restarting", func(t *testing.T) {
		f := newFixture(t)
		dir := f.addSlot(t, "default")
		f.status[filepath.Join(dir, "log")] = s6.Status{Supervised: true, WantUp: true, PID: -1, ExitCode: 111, Seconds: 0}
		if got := problems(f.run(), CheckLogger); len(got) != 0 {
			t.Fatalf("a logger s6 restarts right now is no problem yet: %+v", got)
		}
	})
}

func TestStateCorrupt(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		f := newFixture(t)
		f.addSlot(t, "default")
		writeFile(t, filepath.Join(f.home, "gateway_state.json"), `{"desired_state":`, 0o644)
		x := want(t, f.run(), CheckState, Fail, filepath.Join(f.home, "gateway_state.json"), "registers profile default down")
		if !strings.HasPrefix(x.Fix, "hermes-s6 stop --profile default  # records stopped") {
			t.Errorf("fix: %s", x.Fix)
		}
		// s6 runs it: the fix records running.
		f.status[filepath.Join(f.scandir, "gateway-default")] = s6.Status{Supervised: true, Up: true, WantUp: true, PID: 9, ExitCode: -1}
		x = want(t, f.run(), CheckState, Fail)
		if !strings.HasPrefix(x.Fix, "hermes-s6 start --profile default  # records running") {
			t.Errorf("fix: %s", x.Fix)
		}
	})
	t.Run("named", func(t *testing.T) {
		f := newFixture(t)
		f.addProfile(t, "coder")
		writeFile(t, filepath.Join(f.home, "profiles", "coder", "gateway_state.json"), `{"desired_state":"paused"}`, 0o644)
		want(t, f.run(), CheckState, Fail, `desired_state "paused"`)
	})
	t.Run("symlink_not_followed", func(t *testing.T) {
		f := newFixture(t)
		target := filepath.Join(t.TempDir(), "x.json")
		writeFile(t, target, `{"desired_state":"running"}`, 0o600)
		os.Symlink(target, filepath.Join(f.home, "gateway_state.json"))
		want(t, f.run(), CheckState, Warn, "symlink: not followed")
	})
	t.Run("fifo", func(t *testing.T) {
		f := newFixture(t)
		syscall.Mkfifo(filepath.Join(f.home, "gateway_state.json"), 0o644)
		done := make(chan []Finding)
		go func() { done <- f.run() }()
		select {
		case fs := <-done:
			want(t, fs, CheckState, Fail, "not a regular file")
		case <-time.After(10 * time.Second):
			t.Fatal("doctor blocked opening a FIFO planted as a state file")
		}
	})
}

func TestDrift(t *testing.T) {
	for _, c := range []struct {
		name, state string
		st          s6.Status
		sev         Severity
		sub         string
	}{
		{"running_parked", `{"desired_state":"running"}`, s6.Status{Supervised: true, NormallyUp: true, PID: -1, ExitCode: 78, Seconds: 5}, Fail, "exit 78"},
		{"running_down_long", `{"desired_state":"running"}`, s6.Status{Supervised: true, WantUp: true, NormallyUp: true, PID: -1, ExitCode: 1, Seconds: 60}, Fail, "down for 60s"},
		{"running_down_file", `{"desired_state":"running"}`, s6.Status{Supervised: true, Up: true, WantUp: true, PID: 9, ExitCode: -1, Seconds: 60}, Warn, "down file"},
		{"stopped_up", `{"desired_state":"stopped"}`, s6.Status{Supervised: true, Up: true, WantUp: true, PID: 9, ExitCode: -1, Seconds: 60}, Warn, "desired state stopped, but s6 runs it (pid 9)"},
		{"stopped_no_down_file", `{"desired_state":"stopped"}`, s6.Status{Supervised: true, NormallyUp: true, PID: -1, ExitCode: 0, Seconds: 60}, Warn, "no down file"},
		{"none_up", ``, s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 9, ExitCode: -1, Seconds: 60}, Warn, "no desired state is recorded"},
		{"unsupervised", `{"desired_state":"running"}`, s6.Status{PID: -1, ExitCode: -1}, Warn, "not supervised"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			dir := f.addSlot(t, "default")
			if c.state != "" {
				writeFile(t, filepath.Join(f.home, "gateway_state.json"), c.state, 0o644)
			}
			f.status[dir] = c.st
			x := want(t, f.run(), CheckDrift, c.sev, "gateway-default", c.sub)
			if c.sev == Fail && c.name == "running_parked" && x.Fix != "hermes-s6 start --profile default  # if it exits by itself, read hermes-s6 logs --profile default -n 50 first" {
				t.Errorf("fix: %s", x.Fix)
			}
		})
	}
	t.Run("in_step", func(t *testing.T) {
		f := newFixture(t)
		f.addProfile(t, "idle")
		up := f.addSlot(t, "default")
		down := f.addSlot(t, "idle")
		writeFile(t, filepath.Join(f.home, "gateway_state.json"), `{"desired_state":"running"}`, 0o644)
		writeFile(t, filepath.Join(f.home, "profiles", "idle", "gateway_state.json"), `{"desired_state":"stopped"}`, 0o644)
		f.status[up] = s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 9, ExitCode: -1, Seconds: 60}
		f.status[down] = s6.Status{Supervised: true, PID: -1, ExitCode: 0, Seconds: 60}
		if got := problems(f.run(), CheckDrift); len(got) != 0 {
			t.Fatalf("slots in step with their desired state: %+v", got)
		}
	})
}

func TestProfilesWithoutSlot(t *testing.T) {
	f := newFixture(t)
	f.addSlot(t, "default")
	f.addProfile(t, "coder")
	x := want(t, f.run(), CheckProfiles, Warn, "profile coder has no slot")
	if x.Fix != "hermes-s6 register --profile coder" {
		t.Errorf("fix: %s", x.Fix)
	}
	// A dashboard container has no gateway slots at all.
	f.env.Getenv = func(k string) string {
		if k == "HERMES_S6_CMD" {
			return `["dashboard"]`
		}
		return ""
	}
	if got := problems(f.run(), CheckProfiles); len(got) != 0 {
		t.Fatalf("dashboard container: %+v", got)
	}
}

func TestProfilesNeverRegistered(t *testing.T) {
	for _, c := range []struct{ dir, sub, fix string }{
		{"default", "lives at HERMES_HOME itself", "rm -r -- "},
		{"Coder", `"Coder" is no valid profile name`, "profiles/coder"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			f := newFixture(t)
			f.addSlot(t, "default")
			f.addProfile(t, c.dir)
			x := want(t, f.run(), CheckProfiles, Warn, c.sub)
			if !strings.Contains(x.Fix, c.fix) {
				t.Errorf("fix: %s", x.Fix)
			}
		})
	}
}

func TestSlotsWithoutProfile(t *testing.T) {
	f := newFixture(t)
	f.addSlot(t, "default")
	f.addSlot(t, "gone")
	x := want(t, f.run(), CheckSlots, Warn, "gateway-gone belongs to profile gone, whose directory is gone")
	if x.Fix != "hermes-s6 unregister --profile gone" {
		t.Errorf("fix: %s", x.Fix)
	}
	f.addProfile(t, "gone")
	mkdir(t, filepath.Join(f.scandir, "gateway-Bad"), 0o755)
	x = want(t, f.run(), CheckSlots, Warn, `"Bad" is no valid profile name`)
	if !strings.Contains(x.Fix, "-an "+f.scandir) {
		t.Errorf("fix: %s", x.Fix)
	}
}

// deaths is a death tally of n deaths every gap, the last one exiting code.
func deaths(n int, gap time.Duration, code int) []s6.Death {
	t0 := time.Unix(1_800_000_000, 0)
	ds := make([]s6.Death, n)
	for i := range ds {
		ds[i] = s6.Death{TAI: t0.Add(time.Duration(i) * gap), Code: code}
	}
	return ds
}

func TestCrashLoop(t *testing.T) {
	looping := s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 9, ExitCode: -1, Seconds: 0}
	for _, c := range []struct {
		name   string
		st     s6.Status
		deaths []s6.Death
		fail   string // "" for no finding
	}{
		{"looping", looping, deaths(7, 1100*time.Millisecond, 1), "gateway-default is crash-looping: 7 deaths in 7s (last exit 1)"},
		{"looping_down_now", s6.Status{Supervised: true, WantUp: true, NormallyUp: true, PID: -1, ExitCode: 1, Seconds: 0}, deaths(5, time.Second, 1), "5 deaths in 4s"},
		{"stayed_up_since", s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 9, ExitCode: -1, Seconds: 61}, deaths(7, time.Second, 1), ""},
		{"few_deaths", looping, deaths(2, time.Second, 1), ""},
		{"spread_out", looping, deaths(9, 31*time.Second, 1), ""},
		{"kept_down", s6.Status{Supervised: true, NormallyUp: true, PID: -1, ExitCode: 1, Seconds: 0}, deaths(9, time.Second, 1), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			dir := f.addSlot(t, "default")
			writeFile(t, filepath.Join(f.home, "gateway_state.json"), `{"desired_state":"running"}`, 0o644)
			f.status[dir], f.deaths[dir] = c.st, c.deaths
			fs := f.run()
			if c.fail == "" {
				if got := problems(fs, CheckCrashLoop); len(got) != 0 {
					t.Fatalf("want no crash-loop finding, got %+v", got)
				}
				return
			}
			x := want(t, fs, CheckCrashLoop, Fail, c.fail)
			if !strings.Contains(x.Fix, "hermes-s6 logs --profile default -n 50") || !strings.Contains(x.Fix, "--crash-limit") {
				t.Errorf("fix: %s", x.Fix)
			}
			pasteable(t, x.Fix)
		})
	}
	t.Run("dashboard", func(t *testing.T) {
		f := newFixture(t)
		dir := f.addSlot(t, "")
		f.env.Getenv = func(k string) string { return map[string]string{"HERMES_DASHBOARD": "1"}[k] }
		ds := deaths(6, time.Second, -1)
		ds[5].Signal = "SIGSEGV"
		f.status[dir], f.deaths[dir] = looping, ds
		x := want(t, f.run(), CheckCrashLoop, Fail, "dashboard is crash-looping", "killed by SIGSEGV")
		if !strings.Contains(x.Fix, filepath.Join(f.home, "logs", "dashboard", "current")) {
			t.Errorf("fix: %s", x.Fix)
		}
	})
}

// The dashboard slot has no state file: HERMES_DASHBOARD is its desired
// state, as reconcile reads it.
func TestDashboardDrift(t *testing.T) {
	up := s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 9, ExitCode: -1, Seconds: 60}
	parked := s6.Status{Supervised: true, PID: -1, ExitCode: 1, Seconds: 60}
	for _, c := range []struct {
		name, env string
		st        s6.Status
		sev       Severity // "" for no finding
		sub       string
	}{
		{"on_but_down", "1", parked, Fail, "HERMES_DASHBOARD is on, but s6 keeps it down (last exit 1)"},
		{"on_wanted_but_down", "true", s6.Status{Supervised: true, WantUp: true, PID: -1, ExitCode: 1, Seconds: 30}, Fail, "down for 30s"},
		{"off_but_up", "", up, Warn, "dashboard runs (pid 9), but HERMES_DASHBOARD is off"},
		{"on_and_up", "1", up, "", ""},
		{"off_and_down", "0", parked, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			dir := f.addSlot(t, "")
			f.env.Getenv = func(k string) string { return map[string]string{"HERMES_DASHBOARD": c.env}[k] }
			f.status[dir] = c.st
			fs := f.run()
			if c.sev == "" {
				if got := problems(fs, CheckDrift); len(got) != 0 {
					t.Fatalf("want no drift finding, got %+v", got)
				}
				return
			}
			x := want(t, fs, CheckDrift, c.sev, c.sub)
			pasteable(t, x.Fix)
		})
	}
}

// Near s6-svscan's default limit, slots warns before pickups start failing.
func TestSlotsNearSvscanLimit(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < reconcile.WarnSlots-1; i++ {
		mkdir(t, filepath.Join(f.scandir, fmt.Sprintf("other-%03d", i)), 0o755)
	}
	if got := problems(f.run(), CheckSlots); len(got) != 0 {
		t.Fatalf("%d service directories: want no finding, got %+v", reconcile.WarnSlots-1, got)
	}
	mkdir(t, filepath.Join(f.scandir, "one-more"), 0o755)
	x := want(t, f.run(), CheckSlots, Warn, fmt.Sprintf("%d service directories", reconcile.WarnSlots), "at most about 500 logged slots")
	if !strings.HasPrefix(x.Fix, "# ") {
		t.Errorf("fix: %s", x.Fix)
	}
}

// The fix for an invalid profile name never moves it onto another
// profile: a 65-character name cut to 64 characters that are taken gets
// a suffix, still valid and at most 64 bytes.
func TestSuggestNameAvoidsTakenNames(t *testing.T) {
	long := strings.Repeat("a", 65)
	taken := map[string]bool{strings.Repeat("a", 64): true, strings.Repeat("a", 62) + "-2": true}
	got := suggestName(long, func(n string) bool { return taken[n] })
	if taken[got] || len(got) > profile.MaxLen || profile.Validate(got) != nil {
		t.Fatalf("suggestName(%d a's) = %q: taken, too long or invalid", len(long), got)
	}
	if got != strings.Repeat("a", 62)+"-3" {
		t.Fatalf("suggestName = %q", got)
	}
	if got := suggestName("Coder", func(string) bool { return false }); got != "coder" {
		t.Fatalf("suggestName(Coder) = %q", got)
	}
}
