package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// The breadcrumb's phrases (docs/shim.md); "s6 supervision" appears in no other
// message, so its absence proves the redirect did not fire.
var breadcrumb = []string{"s6 supervision", "--no-supervise", "HERMES_GATEWAY_NO_SUPERVISE"}

// s6Roots fakes the shim's s6 detection: a proc root whose 1/comm says
// comm, and an s6 basedir. It returns the environment entries.
func s6Roots(t *testing.T, comm string) []string {
	t.Helper()
	dir := t.TempDir()
	proc, base := filepath.Join(dir, "proc"), filepath.Join(dir, "basedir")
	for _, d := range []string{filepath.Join(proc, "1"), base} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(proc, "1", "comm"), []byte(comm+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"HERMES_S6_PROC=" + proc, "HERMES_S6_BASEDIR=" + base}
}

// recordStarts makes the stand-in append to $HERMES_HOME/standin/starts.log.
func recordStarts(t *testing.T, tr *s6tree.Tree) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(tr.Home, "standin"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// startLines is starts.log as "<pid> <profile>" lines.
func startLines(tr *s6tree.Tree) []string {
	b, _ := os.ReadFile(filepath.Join(tr.Home, "standin", "starts.log"))
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// bg is a hermes-s6 process running in the background.
type bg struct {
	cmd            *exec.Cmd
	stdout, stderr *s6tree.SyncBuffer
	done           chan struct{}
	err            error
}

// startBg starts hermes-s6 args with the tree's environment plus extra.
func startBg(t *testing.T, tr *s6tree.Tree, extra []string, args ...string) *bg {
	t.Helper()
	bin, _ := s6tree.Binaries(t)
	b := &bg{cmd: exec.Command(bin, args...), stdout: &s6tree.SyncBuffer{}, stderr: &s6tree.SyncBuffer{}, done: make(chan struct{})}
	b.cmd.Env = append(tr.Env(t), extra...)
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		if !b.exited() {
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *bg) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func (b *bg) String() string {
	state := "running"
	if b.exited() {
		state = "exited: " + b.cmd.ProcessState.String()
	}
	return "pid " + strconv.Itoa(b.cmd.Process.Pid) + " " + state + "\nstdout:\n" + b.stdout.String() + "\nstderr:\n" + b.stderr.String()
}

// cmdline is /proc/PID/cmdline: argv joined by NULs.
func (b *bg) cmdline() string {
	c, _ := os.ReadFile("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/cmdline")
	return string(c)
}

// await polls cond, failing with the process's output when it exits or
// the deadline passes first.
func (b *bg) await(t *testing.T, tr *s6tree.Tree, what string, cond func() bool) {
	t.Helper()
	if !s6tree.Poll(wait, func() bool { return cond() || b.exited() }) || !cond() {
		t.Fatalf("waiting for %s: %s\ns6-svscan output:\n%s", what, b, tr.Output())
	}
}

// stop sends sig and returns the exit code (128+n when killed by signal n).
func (b *bg) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	if !s6tree.Poll(wait, b.exited) {
		t.Fatalf("still running %s after %v: %s", wait, sig, b)
	}
	ws := b.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func TestShimRedirectsGatewayRunToSupervisedSlot(t *testing.T) {
	tr := s6tree.Start(t)
	recordStarts(t, tr)
	roots := s6Roots(t, "s6-svscan")

	shim := startBg(t, tr, roots, "shim", "--", "gateway", "run")
	shim.await(t, tr, "the shim to become `sleep infinity`", func() bool { return shim.cmdline() == "sleep\x00infinity\x00" })
	for _, want := range breadcrumb {
		if !strings.Contains(shim.stderr.String(), want) {
			t.Errorf("breadcrumb lacks %q:\n%s", want, shim.stderr)
		}
	}
	if !strings.Contains(shim.stderr.String(), filepath.Join(tr.Home, "logs", "gateways", "default", "current")) {
		t.Errorf("breadcrumb must say where the log file is:\n%s", shim.stderr)
	}
	if shim.stdout.String() != "" {
		t.Errorf("stdout must stay empty, got %q", shim.stdout)
	}

	st := statusOf(t, tr, "default")
	if !st.Up || !st.WantUp || !st.NormallyUp || st.DesiredState != "running" || !pidAlive(st.PID) {
		t.Fatalf("gateway-default after the redirect: want up, want up, normally up, desired running; got %+v", st)
	}
	var starts []string
	tr.Eventually(t, wait, "the stand-in to record its start", func() bool { starts = startLines(tr); return len(starts) > 0 })
	if diff := cmp.Diff([]string{strconv.Itoa(st.PID) + "_default"}, starts); diff != "" {
		t.Fatalf("the supervised gateway must have started exactly once (-want +got):\n%s", diff)
	}

	// Inside the slot, the run script exports the sentinel: a shim there
	// runs the gateway in the foreground and starts nothing.
	child := startBg(t, tr, append(roots, "HERMES_S6_SUPERVISED_CHILD=1"), "shim", "--", "gateway", "run", "--replace")
	child.await(t, tr, "the foreground gateway to record its start", func() bool { return len(startLines(tr)) == 2 })
	if got, want := startLines(tr)[1], strconv.Itoa(child.cmd.Process.Pid)+"_default"; got != want {
		t.Fatalf("the shim process itself must have become the gateway: want start %q, got %q", want, got)
	}
	child.await(t, tr, "the stand-in's log line", func() bool {
		return strings.Contains(child.stderr.String(), `flags=["--replace"] supervised_child="1"`)
	})
	if s := child.stderr.String(); strings.Contains(s, "s6 supervision") {
		t.Fatalf("the supervised child must not redirect again:\n%s", s)
	}
	if again := statusOf(t, tr, "default"); again.PID != st.PID || !again.Up {
		t.Fatalf("the sentinel run touched the slot: before %+v, after %+v", st, again)
	}
	if code := child.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("foreground gateway on SIGTERM: want exit 0, got %d: %s", code, child)
	}

	if code := shim.stop(t, syscall.SIGTERM); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("sleep infinity on SIGTERM: want killed by it, got %d", code)
	}
	if n := len(startLines(tr)); n != 2 {
		t.Fatalf("want 2 starts in all (supervised + sentinel foreground), got %d", n)
	}
}

func TestShimRedirectNamedProfileAndExistingSlot(t *testing.T) {
	tr := s6tree.Start(t)
	addProfile(t, tr, "coder")
	roots := s6Roots(t, "s6-svscan")
	// Boot reconcile normally registers the slot down before the CMD runs.
	tr.MustRun(t, "register", "--profile", "coder")
	slotRun := filepath.Join(tr.Scandir, "gateway-coder", "run")
	before, err := os.Stat(slotRun)
	if err != nil {
		t.Fatal(err)
	}

	shim := startBg(t, tr, roots, "shim", "--", "gateway", "run", "-p", "coder")
	shim.await(t, tr, "the shim to become `sleep infinity`", func() bool { return shim.cmdline() == "sleep\x00infinity\x00" })
	if st := statusOf(t, tr, "coder"); !st.Up || !st.NormallyUp || st.DesiredState != "running" {
		t.Fatalf("gateway-coder: want up and desired running, got %+v", st)
	}
	if after, err := os.Stat(slotRun); err != nil || !os.SameFile(before, after) {
		t.Fatalf("an existing slot must be started as it is, not re-installed: %v", err)
	}
	if !strings.Contains(shim.stderr.String(), "-p coder gateway run --no-supervise") {
		t.Errorf("breadcrumb must show the profile's own opt-out:\n%s", shim.stderr)
	}
}

func TestShimRedirectFailureIsLoud(t *testing.T) {
	tr := s6tree.Start(t)
	roots := s6Roots(t, "s6-svscan")
	// A named profile that does not exist cannot be started.
	r := tr.RunEnv(t, roots, "shim", "--", "gateway", "run", "-p", "ghost")
	if r.Code != 2 || !strings.Contains(r.Stderr, "hermes-s6: error: gateway run: the supervised slot gateway-ghost did not start") ||
		!strings.Contains(r.Stderr, "hermes-s6: hint: to run the gateway unsupervised in the foreground instead, add --no-supervise") {
		t.Fatalf("want exit 2 naming the slot, with the opt-out hint: %s", r)
	}
	if strings.Contains(r.Stderr, "s6 supervision") {
		t.Fatalf("no breadcrumb when nothing started: %s", r)
	}

	// s6 detected but no tree answering at the scandir: exit 4.
	noTree := s6tree.New(t)
	r = noTree.RunEnv(t, roots, "shim", "--", "gateway", "run")
	if r.Code != 4 || !strings.Contains(r.Stderr, "no s6 supervision tree") {
		t.Fatalf("want exit 4 with the tree's error: %s", r)
	}
}

func TestShimForegroundPaths(t *testing.T) {
	tr := s6tree.Start(t)
	s6 := s6Roots(t, "s6-svscan")
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		flags  string // the stand-in's log of its flags
		reason string // "" when no line is due
	}{
		{"--no-supervise is stripped", s6, []string{"gateway", "run", "--no-supervise", "--replace"}, `flags=["--replace"]`, "--no-supervise given"},
		{"--no-supervise before gateway", s6, []string{"--no-supervise", "gateway", "run"}, `flags=[]`, "--no-supervise given"},
		{"env opt-out", append(s6, "HERMES_GATEWAY_NO_SUPERVISE=Yes"), []string{"gateway", "run"}, `flags=[]`, "HERMES_GATEWAY_NO_SUPERVISE=Yes"},
		{"extra argument", s6, []string{"gateway", "run", "--verbose"}, `flags=["--verbose"]`, `arguments "--verbose" cannot be carried into the supervised slot gateway-default`},
		{"no s6", s6Roots(t, "tini"), []string{"gateway", "run"}, `flags=[]`, `s6 not detected (PID 1 is "tini"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tr.RunEnv(t, append(tc.env, "HERMES_STANDIN_EXIT=0"), append([]string{"shim", "--"}, tc.args...)...)
			if r.Code != 0 || !strings.Contains(r.Stdout, banner) {
				t.Fatalf("want the stand-in's banner and its exit 0: %s", r)
			}
			if !strings.Contains(r.Stderr, "hermes-standin: gateway profile=default") || !strings.Contains(r.Stderr, tc.flags) {
				t.Fatalf("stand-in flags: want %s: %s", tc.flags, r)
			}
			if want := "hermes-s6: gateway run stays in the foreground, unsupervised: " + tc.reason; !strings.Contains(r.Stderr, want) {
				t.Errorf("want the reason %q: %s", want, r)
			}
			if strings.Contains(r.Stderr, "s6 supervision") {
				t.Errorf("the redirect's breadcrumb must not appear: %s", r)
			}
			if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-default")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a foreground gateway must not register a slot: %v", err)
			}
		})
	}
	// The gateway's exit code is the CMD's.
	if r := tr.RunEnv(t, append(s6, "HERMES_STANDIN_EXIT=7"), "shim", "--", "gateway", "run", "--no-supervise"); r.Code != 7 {
		t.Fatalf("want the gateway's exit 7: %s", r)
	}
}

func TestShimRoutesCommands(t *testing.T) {
	tr := s6tree.New(t)
	bin, _ := s6tree.Binaries(t)
	path := []string{"PATH=" + filepath.Dir(bin) + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, tc := range []struct {
		name           string
		env            []string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"program on PATH, exit code kept", nil, []string{"sh", "-c", "echo out; exit 3"}, 3, "out\n", ""},
		{"hermes-s6 itself", nil, []string{"hermes-s6", "version"}, 0, "hermes-s6 ", ""},
		{"no args run hermes", nil, nil, 2, "", "hermes-standin: unsupported arguments []"},
		{"hermes arguments", nil, []string{"--version"}, 0, "hermes-standin 0", ""},
		{"unknown word goes to hermes", nil, []string{"no-such-program-xyz"}, 2, "", `unsupported arguments ["no-such-program-xyz"]`},
		{"missing gateway program", []string{"HERMES_S6_GATEWAY_BIN=/nonexistent/hermes"}, []string{"gateway", "run", "--no-supervise"}, 127, "", `hermes-s6: error: cannot run "/nonexistent/hermes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tr.RunEnv(t, append(path, tc.env...), append([]string{"shim", "--"}, tc.args...)...)
			if r.Code != tc.code || !strings.Contains(r.Stdout, tc.stdout) || !strings.Contains(r.Stderr, tc.stderr) {
				t.Fatalf("want exit %d, stdout ~ %q, stderr ~ %q; got %s", tc.code, tc.stdout, tc.stderr, r)
			}
		})
	}
}

func TestShimHoldsInProcessWithoutSleep(t *testing.T) {
	tr := s6tree.Start(t)
	empty := t.TempDir() // PATH without sleep; the s6 tools come from HERMES_S6_BIN
	shim := startBg(t, tr, append(s6Roots(t, "s6-svscan"), "PATH="+empty), "shim", "--", "gateway", "run")
	shim.await(t, tr, "the shim to say it is waiting", func() bool { return strings.Contains(shim.stderr.String(), "waiting for SIGTERM") })
	if st := statusOf(t, tr, "default"); !st.Up || !st.WantUp {
		t.Fatalf("the slot must be up while the shim holds: %+v", st)
	}
	if !strings.Contains(shim.cmdline(), "shim") {
		t.Fatalf("want the shim itself holding, got cmdline %q", shim.cmdline())
	}
	if code := shim.stop(t, syscall.SIGTERM); code != 143 {
		t.Fatalf("want exit 143 on SIGTERM, got %d: %s", code, shim)
	}
}

// publicBinary copies hermes-s6 where any uid can execute it.
func publicBinary(t *testing.T) string {
	t.Helper()
	bin, _ := s6tree.Binaries(t)
	dir, err := os.MkdirTemp("", "hermes-s6-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, "hermes-s6"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dst.Name()
}

// runAs runs bin with args as uid:gid in env.
func runAs(t *testing.T, bin string, uid, gid uint32, env []string, args ...string) s6tree.Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := s6tree.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShimUserGuardAndPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as other uids")
	}
	bin := publicBinary(t)
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "HERMES_S6_ACCOUNT=nobody"}
	const nobody = 65534

	// Some other uid (docker run --user 12345): refused, nothing runs.
	r := runAs(t, bin, 12345, 12345, env, "shim", "--", "sh", "-c", "echo ran")
	if r.Code != 1 || r.Stdout != "" {
		t.Fatalf("--user guard: want exit 1 and nothing run, got %s", r)
	}
	for _, want := range []string{"hermes-s6: error: refusing to run as this uid 12345", "--user", "HERMES_UID", "PUID"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("refusal lacks %q: %s", want, r)
		}
	}

	// The service account itself runs as it is.
	if r := runAs(t, bin, nobody, nobody, env, "shim", "--", "id", "-u"); r.Code != 0 || r.Stdout != "65534\n" {
		t.Fatalf("as the service account: %s", r)
	}

	// Root drops to the service account: uid, gid, groups and HOME.
	r = runAs(t, bin, 0, 0, env, "shim", "--", "sh", "-c", `id -u; id -g; id -G; echo "$HOME"`)
	if r.Code != 0 || r.Stdout != "65534\n65534\n65534\n/nonexistent\n" {
		t.Fatalf("as root: want uid, gid, groups and HOME of nobody, got %s", r)
	}

	// Root with a service account that does not exist: bad configuration.
	bad := append(env[:2:2], "HERMES_S6_ACCOUNT=no-such-account-xyz")
	if r := runAs(t, bin, 0, 0, bad, "shim", "--", "true"); r.Code != 2 || !strings.Contains(r.Stderr, "no-such-account-xyz") {
		t.Fatalf("unknown service account as root: want exit 2 naming it, got %s", r)
	}
}

func TestEntrypointAsPID1ExecsInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	tr := s6tree.New(t)
	bin, _ := s6tree.Binaries(t)
	self, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	// A fake /init: report its pid, its arguments and HERMES_S6_CMD.
	init := filepath.Join(t.TempDir(), "init")
	script := "#!/bin/sh\necho \"pid=$$\"\nprintf 'arg=%s\\n' \"$@\"\nprintf 'cmd=%s\\n' \"$HERMES_S6_CMD\"\n"
	if err := os.WriteFile(init, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "--pid", "--fork", bin, "entrypoint", "--", "-p", "coder", "gateway", "run")
	cmd.Env = append(tr.Env(t), "HERMES_S6_INIT="+init)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		t.Skipf("no PID namespace here: %s", out)
	}
	if err != nil {
		t.Fatalf("entrypoint as PID 1: %v\n%s", err, out)
	}
	want := "pid=1\narg=" + self + "\narg=shim\narg=--\narg=-p\narg=coder\narg=gateway\narg=run\n" +
		`cmd=["-p","coder","gateway","run"]` + "\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Fatalf("/init must replace the entrypoint as PID 1 and run the shim (-want +got):\n%s", diff)
	}
}

func TestEntrypointNotPID1RunsCommandDirectly(t *testing.T) {
	tr := s6tree.Start(t)
	roots := s6Roots(t, "s6-svscan")
	r := tr.RunEnv(t, append(roots, "HERMES_STANDIN_EXIT=0"), "entrypoint", "--", "gateway", "run")
	if r.Code != 0 || !strings.Contains(r.Stdout, banner) {
		t.Fatalf("want the gateway in the foreground: %s", r)
	}
	if n := strings.Count(r.Stderr, "hermes-s6:"); n != 1 || !strings.Contains(r.Stderr, "hermes-s6: warning: not PID 1") {
		t.Fatalf("want exactly one warning line from hermes-s6, got %d: %s", n, r)
	}
	if strings.Contains(r.Stderr, "s6 supervision") {
		t.Fatalf("no redirect without /init: %s", r)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-default")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no slot without /init: %v", err)
	}

	// The CMD sees HERMES_S6_CMD, a JSON array of its arguments.
	args := []string{"sh", "-c", `printf %s "$HERMES_S6_CMD"`}
	r = tr.RunEnv(t, nil, append([]string{"entrypoint", "--"}, args...)...)
	var got []string
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || r.Code != 0 {
		t.Fatalf("HERMES_S6_CMD: %v: %s", err, r)
	}
	if diff := cmp.Diff(args, got); diff != "" {
		t.Fatalf("HERMES_S6_CMD (-want +got):\n%s", diff)
	}
}

// The container's boot order: the cont-init hook reconciles (a legacy
// `gateway run` CMD migrates to desired running and the slot comes up at
// pickup), then the CMD's shim redirects. The gateway runs exactly once.
func TestReconcileThenShimStartsTheGatewayOnce(t *testing.T) {
	tr := s6tree.Start(t)
	recordStarts(t, tr)
	roots := s6Roots(t, "s6-svscan")
	cmd := []string{`HERMES_S6_CMD=["gateway","run"]`}
	if r := tr.RunEnv(t, cmd, "reconcile"); r.Code != 0 || !strings.Contains(r.Stdout, "profile=default prior_state=none action=started") {
		t.Fatalf("reconcile: %s", r)
	}
	shim := startBg(t, tr, append(roots, cmd...), "shim", "--", "gateway", "run")
	shim.await(t, tr, "the shim to become `sleep infinity`", func() bool { return shim.cmdline() == "sleep\x00infinity\x00" })
	st := eventually(t, tr, "default", "gateway-default up", func(s status) bool { return s.Up && s.WantUp })
	if st.DesiredState != "running" {
		t.Fatalf("desired state after boot: %+v", st)
	}
	// Give a second start every chance to show: s6 restarts no faster than
	// once a second, and the start log is polled over that window.
	if s6tree.Poll(1500*time.Millisecond, func() bool { return len(startLines(tr)) > 1 }) {
		t.Fatalf("the gateway started more than once: %q", startLines(tr))
	}
	if diff := cmp.Diff([]string{strconv.Itoa(st.PID) + "_default"}, startLines(tr)); diff != "" {
		t.Fatalf("want exactly one start, by the supervised slot (-want +got):\n%s", diff)
	}
	if code := shim.stop(t, syscall.SIGTERM); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("sleep infinity on SIGTERM: got %d", code)
	}
}
