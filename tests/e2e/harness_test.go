//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// banner is the first line the gateway (and the stand-in) prints on stdout.
const banner = "⚕ Hermes Gateway Starting…"

// runLabel is put on every container a test creates, with the run's id as
// its value, so that the harness can remove them all whatever happens.
const runLabel = "hermes-s6-e2e.run"

var cfg struct {
	image    string
	provider string
	runID    string
	timeout  time.Duration
}

func TestMain(m *testing.M) {
	cfg.image = os.Getenv("HERMES_S6_E2E_IMAGE")
	cfg.provider = os.Getenv("HERMES_S6_E2E_PROVIDER")
	cfg.runID = os.Getenv("HERMES_S6_E2E_RUN_ID")
	if cfg.runID == "" {
		cfg.runID = "pid" + strconv.Itoa(os.Getpid())
	}
	cfg.timeout = 45 * time.Second
	if v := os.Getenv("HERMES_S6_E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: HERMES_S6_E2E_TIMEOUT: %v\n", err)
			os.Exit(2)
		}
		cfg.timeout = d
	}
	if cfg.image == "" {
		fmt.Println("e2e: HERMES_S6_E2E_IMAGE is unset, every test skips: run `make e2e`")
	} else {
		fmt.Printf("e2e: image %s, s6 provider %s, run %s\n", cfg.image, orDash(cfg.provider), cfg.runID)
	}
	os.Exit(m.Run())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// setup is the first call of every test: it skips without an image and
// runs the test in parallel with the others (they mostly wait).
func setup(t *testing.T) {
	t.Helper()
	if cfg.image == "" {
		t.Skip("HERMES_S6_E2E_IMAGE unset: run `make e2e`")
	}
	t.Parallel()
}

// setupAlone is setup for a test that times something against a bound:
// it runs before the parallel tests start, with the engine to itself, so
// that the other tests' containers do not count in its time.
func setupAlone(t *testing.T) {
	t.Helper()
	if cfg.image == "" {
		t.Skip("HERMES_S6_E2E_IMAGE unset: run `make e2e`")
	}
}

// result is one finished command.
type result struct {
	argv   []string
	stdout string
	stderr string
	code   int // -1 when it did not run or was killed
	err    error
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d, err %v\nstdout:\n%s\nstderr:\n%s", quoteArgv(r.argv), r.code, r.err, r.stdout, r.stderr)
}

func (r result) ok() bool { return r.err == nil && r.code == 0 }

// docker runs the docker CLI with a deadline. It and stream are the only
// places that start a process.
func docker(timeout time.Duration, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{argv: append([]string{"docker"}, args...), stdout: out.String(), stderr: errb.String(), code: -1}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	case ctx.Err() != nil:
		r.err = fmt.Errorf("timed out after %s", timeout)
	default:
		r.err = err
	}
	return r
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = strconv.Quote(a)
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// containerName is unique per run and test: hermes-s6-e2e-RUN-TEST.
func containerName(t *testing.T, suffix string) string {
	n := "hermes-s6-e2e-" + cfg.runID + "-" + strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-"))
	if suffix != "" {
		n += "-" + suffix
	}
	return n
}

// container is one container of the image under test.
type container struct {
	t    *testing.T
	name string
}

// startDetached runs `docker run -d` with the given docker flags and CMD,
// and registers its removal (and, if the test failed, its diagnostics).
func startDetached(t *testing.T, flags []string, cmd ...string) *container {
	t.Helper()
	return startNamed(t, "", flags, cmd...)
}

// startNamed is startDetached for a test with several containers: suffix
// tells them apart.
func startNamed(t *testing.T, suffix string, flags []string, cmd ...string) *container {
	t.Helper()
	c := create(t, suffix)
	args := append([]string{"run", "-d", "--name", c.name, "--label", runLabel + "=" + cfg.runID}, flags...)
	args = append(append(args, cfg.image), cmd...)
	if r := docker(2*time.Minute, args...); !r.ok() {
		t.Fatalf("starting the container: %s", r)
	}
	return c
}

// runForeground runs `docker run` (attached, not removed on exit, so that
// its diagnostics can be read) with the wait deadline, and returns its
// result and duration.
func runForeground(t *testing.T, suffix string, flags []string, cmd ...string) (*container, result, time.Duration) {
	t.Helper()
	c := create(t, suffix)
	args := append([]string{"run", "--name", c.name, "--label", runLabel + "=" + cfg.runID}, flags...)
	args = append(append(args, cfg.image), cmd...)
	start := time.Now()
	r := docker(cfg.timeout, args...)
	return c, r, time.Since(start)
}

func create(t *testing.T, suffix string) *container {
	c := &container{t: t, name: containerName(t, suffix)}
	t.Cleanup(func() {
		if t.Failed() {
			c.diagnose()
		}
		if r := docker(time.Minute, "rm", "-f", "-v", c.name); !r.ok() && !strings.Contains(r.stderr, "No such container") {
			t.Logf("removing %s: %s", c.name, r)
		}
	})
	return c
}

// volume creates a Docker volume for the test, labelled like its
// containers, and removes it when the test ends: after the containers,
// since cleanups run last registered first, so call it before starting any.
func volume(t *testing.T) string {
	t.Helper()
	name := containerName(t, "vol")
	if r := docker(time.Minute, "volume", "create", "--label", runLabel+"="+cfg.runID, name); !r.ok() {
		t.Fatalf("creating a volume: %s", r)
	}
	t.Cleanup(func() {
		if r := docker(time.Minute, "volume", "rm", "-f", name); !r.ok() {
			t.Logf("removing volume %s: %s", name, r)
		}
	})
	return name
}

// stream starts `docker ARGS…` with a pipe on its stdin and one on its
// stdout, for a long-running `docker exec -i`; the caller waits for it.
func stream(args ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	cmd := exec.Command("docker", args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	return cmd, in, out, cmd.Start()
}

// exec runs argv in the container as user ("" is the image's user, root).
func (c *container) exec(user string, argv ...string) result {
	args := []string{"exec"}
	if user != "" {
		args = append(args, "-u", user)
	}
	args = append(append(args, c.name), argv...)
	return docker(time.Minute, args...)
}

// mustExec runs argv as user and fails the test unless it exits 0.
func (c *container) mustExec(user string, argv ...string) string {
	c.t.Helper()
	r := c.exec(user, argv...)
	if !r.ok() {
		c.t.Fatalf("%s", r)
	}
	return r.stdout
}

// logs is everything the container wrote to stdout and stderr so far.
func (c *container) logs() string {
	r := docker(time.Minute, "logs", c.name)
	return r.stdout + r.stderr
}

// state is .State.Status and .State.ExitCode.
func (c *container) state() (status string, exitCode int) {
	r := docker(time.Minute, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c.name)
	f := strings.Fields(r.stdout)
	if !r.ok() || len(f) != 2 {
		return "unknown", -1
	}
	code, _ := strconv.Atoi(f[1])
	return f[0], code
}

// svstat is s6-svstat's field output for one slot.
type svstat struct {
	up, wantUp, normallyUp bool
	pid, exitCode, seconds int
}

func (s svstat) String() string {
	return fmt.Sprintf("up=%t want_up=%t normally_up=%t pid=%d exit=%d for=%ds", s.up, s.wantUp, s.normallyUp, s.pid, s.exitCode, s.seconds)
}

// svstat reads a slot's state as the service account, with the tool of the
// s6 that runs the tree (/command), in field mode.
func (c *container) svstat(slot string) (svstat, error) {
	r := c.exec("hermes", "/command/s6-svstat", "-o", "up,wantedup,normallyup,pid,exitcode,updownfor", "/run/service/"+slot)
	if !r.ok() {
		return svstat{}, fmt.Errorf("s6-svstat %s: exit %d %v: %s", slot, r.code, r.err, strings.TrimSpace(r.stderr))
	}
	f := strings.Fields(r.stdout)
	if len(f) != 6 {
		return svstat{}, fmt.Errorf("s6-svstat %s: unexpected output %q", slot, r.stdout)
	}
	var s svstat
	s.up, s.wantUp, s.normallyUp = f[0] == "true", f[1] == "true", f[2] == "true"
	s.pid, _ = strconv.Atoi(f[3])
	s.exitCode, _ = strconv.Atoi(f[4])
	s.seconds, _ = strconv.Atoi(f[5])
	return s, nil
}

// proc is one line of ps.
type proc struct {
	pid, ppid int
	user      string
	stat      string
	comm      string
	args      string
}

func (p proc) String() string {
	return fmt.Sprintf("%d(%d) %s %s [%s] %s", p.pid, p.ppid, p.user, p.stat, p.comm, p.args)
}

// procs is the container's process list.
func (c *container) procs() ([]proc, error) {
	r := c.exec("hermes", "ps", "-eo", "pid=,ppid=,user=,stat=,comm=,args=")
	if !r.ok() {
		return nil, fmt.Errorf("ps: %s", r)
	}
	var ps []proc
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		var p proc
		p.pid, _ = strconv.Atoi(f[0])
		p.ppid, _ = strconv.Atoi(f[1])
		p.user, p.stat, p.comm = f[2], f[3], f[4]
		p.args = strings.Join(f[5:], " ")
		ps = append(ps, p)
	}
	return ps, nil
}

// The stage-2 runner is the process that runs the CMD: s6-overlay's
// rc.init.
func runner(ps []proc) (proc, bool) {
	for _, p := range ps {
		if strings.Contains(p.args, "rc.init") && p.comm != "ps" {
			return p, true
		}
	}
	return proc{}, false
}

// cmdProcs are the CMD's processes: the children of the stage-2 runner.
func cmdProcs(ps []proc) []proc {
	r, ok := runner(ps)
	if !ok {
		return nil
	}
	return children(ps, r.pid)
}

func children(ps []proc, pid int) []proc {
	var out []proc
	for _, p := range ps {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

func find(ps []proc, pid int) (proc, bool) {
	for _, p := range ps {
		if p.pid == pid {
			return p, true
		}
	}
	return proc{}, false
}

// gateways are the gateway processes (`hermes … gateway run`).
func gateways(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		if p.comm == "hermes" && strings.Contains(p.args, "gateway run") {
			out = append(out, p)
		}
	}
	return out
}

// dashboards are the dashboard processes (`hermes dashboard …`).
func dashboards(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		if p.comm == "hermes" && strings.Contains(p.args, " dashboard") {
			out = append(out, p)
		}
	}
	return out
}

func isHold(p proc) bool { return p.comm == "sleep" && p.args == "sleep infinity" }

func procList(ps []proc) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

// eventually polls check every 200 ms until it reports true or the
// deadline (cfg.timeout) passes, and then fails the test with what check
// saw last. It returns how long it took.
func (c *container) eventually(what string, check func() (bool, string)) time.Duration {
	c.t.Helper()
	return eventuallyWithin(c.t, cfg.timeout, what, check)
}

func eventuallyWithin(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, seen := check()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, seen)
		}
		<-tick.C
	}
}

// pollEvery is how often conditions inside a container are checked: each
// check is a docker exec, so not much more often than this.
const pollEvery = 200 * time.Millisecond

// holds polls check every 200 ms for the whole window and fails the test
// the first time it reports false: a property that must stay true, not a
// wait.
func (c *container) holds(window time.Duration, what string, check func() (bool, string)) {
	c.t.Helper()
	end := time.Now().Add(window)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if ok, seen := check(); !ok {
			c.t.Fatalf("%s stopped holding: %s", what, seen)
		}
		if time.Now().After(end) {
			return
		}
		<-tick.C
	}
}

// waitCmd waits until the container runs and match accepts its process
// list and the CMD's processes (the stage-2 runner's children).
func (c *container) waitCmd(what string, match func(ps []proc, cmd []proc) (bool, string)) []proc {
	c.t.Helper()
	var last []proc
	c.eventually(what, func() (bool, string) {
		if st, code := c.state(); st != "running" {
			return false, fmt.Sprintf("container %s (exit %d)", st, code)
		}
		ps, err := c.procs()
		if err != nil {
			return false, err.Error()
		}
		last = ps
		ok, seen := match(ps, cmdProcs(ps))
		return ok, seen + "\nps:\n" + procList(ps)
	})
	return last
}

// waitSlot waits until the slot's state satisfies want.
func (c *container) waitSlot(slot, what string, want func(svstat) bool) svstat {
	c.t.Helper()
	var s svstat
	c.eventually(slot+": "+what, func() (bool, string) {
		var err error
		s, err = c.svstat(slot)
		if err != nil {
			return false, err.Error()
		}
		return want(s), s.String()
	})
	return s
}

// waitLogs waits until docker logs contain substr.
func (c *container) waitLogs(substr string) string {
	c.t.Helper()
	var logs string
	c.eventually(fmt.Sprintf("docker logs contain %q", substr), func() (bool, string) {
		logs = c.logs()
		return strings.Contains(logs, substr), tail(logs, 30)
	})
	return logs
}

// readFile reads a file in the container as the service account.
func (c *container) readFile(path string) (string, error) {
	r := c.exec("hermes", "cat", path)
	if !r.ok() {
		return "", fmt.Errorf("cat %s: exit %d: %s", path, r.code, strings.TrimSpace(r.stderr))
	}
	return r.stdout, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}

// diagnose prints what is needed to understand a failure: state, logs,
// processes, every slot's s6-svstat and the boot log.
func (c *container) diagnose() {
	t := c.t
	st, code := c.state()
	if st == "unknown" {
		return // already removed, nothing to show
	}
	var b strings.Builder
	fmt.Fprintf(&b, "=== diagnostics of %s: %s (exit %d)\n", c.name, st, code)
	fmt.Fprintf(&b, "--- docker logs:\n%s\n", c.logs())
	if st == "running" {
		if r := c.exec("", "ps", "-eo", "pid,ppid,user,stat,args"); r.ok() {
			fmt.Fprintf(&b, "--- ps -eo pid,ppid,user,stat,args:\n%s", r.stdout)
		} else {
			fmt.Fprintf(&b, "--- ps: %s\n", r)
		}
		fmt.Fprintf(&b, "--- s6-svstat of every slot:\n")
		r := c.exec("", "ls", "-A", "/run/service")
		for _, slot := range strings.Fields(r.stdout) {
			if strings.HasPrefix(slot, ".") {
				fmt.Fprintf(&b, "  %s (dot-name, ignored by s6-svscan)\n", slot)
				continue
			}
			if !isHermesSlot(slot) {
				continue // s6-overlay's own services
			}
			for _, d := range []string{slot, slot + "/log"} {
				s := c.exec("", "/command/s6-svstat", "/run/service/"+d)
				fmt.Fprintf(&b, "  %-24s %s%s\n", d, strings.TrimSpace(s.stdout), strings.TrimSpace(s.stderr))
			}
		}
		if r := c.exec("", "cat", "/opt/data/logs/container-boot.log"); r.ok() {
			fmt.Fprintf(&b, "--- /opt/data/logs/container-boot.log:\n%s", r.stdout)
		}
	}
	// Under scripts/e2e/run.sh the dump goes to a file it prints once the
	// tests are over: in the test's own output, pages of it would bury the
	// line that says what failed.
	if dir := os.Getenv("HERMES_S6_E2E_DIAG_DIR"); dir != "" {
		f := filepath.Join(dir, c.name+".txt")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if err = os.WriteFile(f, []byte(b.String()), 0o644); err == nil {
				t.Logf("diagnostics of %s (%s, exit %d): %s", c.name, st, code, f)
				return
			}
		}
	}
	t.Log(b.String())
}
