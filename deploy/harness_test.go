package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Docker tier: it runs when HERMES_S6_E2E_IMAGE names an image of the
// e2e stage (the stand-in gateway as `hermes`); `make e2e` sets it.

// runLabel goes on every container, volume and network these tests create,
// with the run's id as its value, so that scripts/e2e/run.sh removes them
// whatever happens.
const runLabel = "hermes-s6-e2e.run"

var cfg struct {
	image   string
	runID   string
	timeout time.Duration
}

func TestMain(m *testing.M) {
	cfg.image = os.Getenv("HERMES_S6_E2E_IMAGE")
	cfg.runID = os.Getenv("HERMES_S6_E2E_RUN_ID")
	if cfg.runID == "" {
		cfg.runID = "pid" + strconv.Itoa(os.Getpid())
	}
	cfg.timeout = 90 * time.Second
	if v := os.Getenv("HERMES_S6_E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "deploy: HERMES_S6_E2E_TIMEOUT: %v\n", err)
			os.Exit(2)
		}
		cfg.timeout = d
	}
	os.Exit(m.Run())
}

// needImage skips the test unless an image is under test, and runs it in
// parallel with the other Docker tests (they mostly wait).
func needImage(t *testing.T) {
	t.Helper()
	if cfg.image == "" {
		t.Skip("HERMES_S6_E2E_IMAGE is unset: the deployments are not run under Docker (make e2e runs them)")
	}
	t.Parallel()
}

// result is one finished command.
type result struct {
	argv           []string
	stdout, stderr string
	code           int // -1 when it did not run or was killed
	err            error
	took           time.Duration
}

func (r result) ok() bool { return r.err == nil && r.code == 0 }

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d, err %v, %s\nstdout:%s\nstderr:%s", strings.Join(r.argv, " "), r.code, r.err,
		r.took.Round(time.Millisecond), tail(r.stdout, 20), tail(r.stderr, 20))
}

// run runs a command with a deadline, env added to the test's own, and
// stdin when it is not nil. It is the only place that starts a process
// (but for follow).
func run(timeout time.Duration, env []string, stdin []byte, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	r := result{argv: append([]string{name}, args...), stdout: out.String(), stderr: errb.String(), code: -1, took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case ctx.Err() != nil:
		r.err = fmt.Errorf("timed out after %s", timeout)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		r.err = err
	}
	return r
}

func docker(timeout time.Duration, args ...string) result {
	return run(timeout, nil, nil, "docker", args...)
}

// mustDocker runs docker and fails the test unless it exits 0.
func mustDocker(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	r := docker(timeout, args...)
	if !r.ok() {
		t.Fatalf("%s", r)
	}
	return r.stdout
}

// follower is a `docker logs -f` running in the background.
type follower struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// follow starts `docker logs -f` of what id writes from now on (not what
// it wrote before, in an earlier run of the container): the stream ends
// when the container stops.
func follow(t *testing.T, id string) *follower {
	t.Helper()
	now := time.Now()
	since := fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
	f := &follower{cmd: exec.Command("docker", "logs", "-f", "--since", since, id), out: new(bytes.Buffer), done: make(chan error, 1)}
	var mu sync.Mutex
	f.cmd.Stdout = lockedWriter{&mu, f.out}
	f.cmd.Stderr = lockedWriter{&mu, f.out}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() {
		if f.cmd.ProcessState == nil {
			f.cmd.Process.Kill()
			<-f.done
		}
	})
	return f
}

// wait waits for the stream to end (the container stopped) and returns it.
func (f *follower) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		t.Errorf("docker logs -f did not end within %s of the container's stop", timeout)
		f.cmd.Process.Kill()
		<-f.done
	}
	return f.out.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sigkilled reports whether docker sent SIGKILL to container id since a
// moment: what a stop does when the grace period runs out. Docker keeps
// its events after the container is gone.
func sigkilled(t *testing.T, id string, since time.Time) bool {
	t.Helper()
	r := docker(time.Minute, "events", "--since", strconv.FormatInt(since.Unix()-1, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+id, "--filter", "event=kill", "--format", "{{.Actor.Attributes.signal}}")
	if !r.ok() {
		t.Fatalf("%s", r)
	}
	return slices.Contains(strings.Fields(r.stdout), "9")
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// name is unique per run and test: hs6-deploy-RUN-TEST[-SUFFIX], lowercase,
// as compose project names want.
func name(t *testing.T, suffix string) string {
	n := "hs6-deploy-" + cfg.runID + "-" + t.Name()
	if suffix != "" {
		n += "-" + suffix
	}
	return strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(n), "-"), "-")
}

// eventually polls check every 250 ms until it reports true, and fails the
// test with what check saw last once the deadline passes. It returns how
// long it took.
func eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, seen := check()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, seen)
		}
		<-tick.C
	}
}

// holds polls check for the whole window and fails the test the first time
// it reports false: a property that must stay true, not a wait.
func holds(t *testing.T, window time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(window)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if ok, seen := check(); !ok {
			t.Fatalf("%s stopped holding: %s", what, seen)
		}
		if time.Now().After(end) {
			return
		}
		<-tick.C
	}
}

const pollEvery = 250 * time.Millisecond

func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return " (empty)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// freePort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The data volume.

// profileNames are the profiles a seeded volume holds besides default.
var profileNames = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}

// dataDir is a host directory for /opt/data, owned by the service account
// as the image's own volume is, and removed at the end. With profiles, it
// holds the default profile and profileNames, each with desired state
// running; with fsGroup, its root is root:fsGroup 2775, as the kubelet
// leaves a volume it applied fsGroup to.
func dataDir(t *testing.T, profiles []string, fsGroup int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hermes-s6-deploy-data-")
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "standin"), 0o755); err != nil {
		t.Fatal(err)
	}
	const running = `{"desired_state": "running"}` + "\n"
	for _, p := range profiles {
		if p == "default" {
			write("gateway_state.json", running)
			continue
		}
		write("profiles/"+p+"/SOUL.md", "# "+p+"\n")
		write("profiles/"+p+"/gateway_state.json", running)
	}
	// A helper container owns the files the way the image would (the test
	// may not run as root).
	h := "hs6-deploy-data-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	mustDocker(t, time.Minute, "run", "-d", "--name", h, "--label", runLabel+"="+cfg.runID, "--network", "none",
		"-v", dir+":/d", "--entrypoint", "sleep", cfg.image, "infinity")
	t.Cleanup(func() {
		// Hand everything back to the test's user, then remove it.
		docker(time.Minute, "exec", h, "chown", "-R", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "/d")
		docker(time.Minute, "rm", "-f", "-v", h)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the data directory: %v", err)
		}
	})
	mustDocker(t, time.Minute, "exec", h, "chown", "-R", fmt.Sprintf("%d:%d", serviceUID, serviceUID), "/d")
	if fsGroup != 0 {
		mustDocker(t, time.Minute, "exec", h, "chown", fmt.Sprintf("0:%d", fsGroup), "/d")
		mustDocker(t, time.Minute, "exec", h, "chmod", "2775", "/d")
	}
	return dir
}

// allProfiles is default and profileNames.
func allProfiles() []string { return append([]string{"default"}, profileNames...) }

// Processes in a container.

type proc struct {
	pid, ppid int
	user      string
	comm      string
	args      string
}

func (p proc) String() string {
	return fmt.Sprintf("%d(%d) %s [%s] %s", p.pid, p.ppid, p.user, p.comm, p.args)
}

func procs(id string) ([]proc, error) {
	r := docker(time.Minute, "exec", id, "ps", "-eo", "pid=,ppid=,user=,comm=,args=")
	if !r.ok() {
		return nil, fmt.Errorf("ps: %s", r)
	}
	var ps []proc
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		var p proc
		p.pid, _ = strconv.Atoi(f[0])
		p.ppid, _ = strconv.Atoi(f[1])
		p.user, p.comm = f[2], f[3]
		p.args = strings.Join(f[4:], " ")
		ps = append(ps, p)
	}
	return ps, nil
}

func procList(ps []proc) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return b.String()
}

// gatewayProfiles are the profiles whose gateway (`hermes [-p P] gateway
// run`) runs in ps, sorted, with duplicates kept.
func gatewayProfiles(ps []proc) []string {
	var out []string
	for _, p := range ps {
		if p.comm != "hermes" || !strings.Contains(p.args, "gateway run") {
			continue
		}
		prof := "default"
		f := strings.Fields(p.args)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-p" || f[i] == "--profile" {
				prof = f[i+1]
			}
		}
		out = append(out, prof)
	}
	slices.Sort(out)
	return out
}

func dashboards(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		if p.comm == "hermes" && strings.Contains(p.args, " dashboard") {
			out = append(out, p)
		}
	}
	return out
}

func supervises(ps []proc, slot string) bool {
	for _, p := range ps {
		if p.comm == "s6-supervise" && slices.Contains(strings.Fields(p.args), slot) {
			return true
		}
	}
	return false
}

// lastLine is what the stand-in gateway writes just before it exits 0 on
// SIGTERM.
func lastLine(p string) string { return "gateway " + p + ": last line, exit 0" }

// partition waits until every profile runs in exactly one of the
// containers and returns which runs where. A profile running twice fails
// at once: shards and leases exist to prevent exactly that.
func partition(t *testing.T, ids map[string]string, want []string) map[string][]string {
	t.Helper()
	var where map[string][]string
	eventually(t, cfg.timeout, fmt.Sprintf("each of %v running in exactly one of %v", want, sortedKeys(ids)), func() (bool, string) {
		where = map[string][]string{}
		var all []string
		var lists []string
		for _, n := range sortedKeys(ids) {
			ps, err := procs(ids[n])
			if err != nil {
				return false, err.Error()
			}
			g := gatewayProfiles(ps)
			where[n] = g
			all = append(all, g...)
			lists = append(lists, fmt.Sprintf("%s: %v", n, g))
		}
		slices.Sort(all)
		seen := strings.Join(lists, "; ")
		for i := 1; i < len(all); i++ {
			if all[i] == all[i-1] {
				t.Fatalf("profile %s runs twice: %s", all[i], seen)
			}
		}
		return slices.Equal(all, want), seen
	})
	return where
}

// ownerOf is the container (key of where) that runs profile p.
func ownerOf(where map[string][]string, p string) string {
	for n, ps := range where {
		if slices.Contains(ps, p) {
			return n
		}
	}
	return ""
}

var (
	dryRunHere      = regexp.MustCompile(`(?m)^dry-run: profile=(\S+) prior_state=`)
	dryRunElsewhere = regexp.MustCompile(`(?m)^dry-run: profile=(\S+) not here:`)
)

// selection is which profiles the container's own hermes-s6 says are its
// (`reconcile --dry-run`: its shard and HERMES_S6_PROFILES), and which it
// says another container runs; both sorted.
func selection(t *testing.T, id string) (here, elsewhere []string) {
	t.Helper()
	r := docker(time.Minute, "exec", id, "hermes-s6", "reconcile", "--dry-run")
	if !r.ok() {
		t.Fatalf("%s", r)
	}
	for _, m := range dryRunHere.FindAllStringSubmatch(r.stdout, -1) {
		here = append(here, m[1])
	}
	for _, m := range dryRunElsewhere.FindAllStringSubmatch(r.stdout, -1) {
		elsewhere = append(elsewhere, m[1])
	}
	slices.Sort(here)
	slices.Sort(elsewhere)
	return here, elsewhere
}

// gatewaySlots are the profiles that have a slot in the container's
// scandir, sorted.
func gatewaySlots(t *testing.T, id string) []string {
	t.Helper()
	r := docker(time.Minute, "exec", id, "ls", "-A", "/run/service")
	if !r.ok() {
		t.Fatalf("%s", r)
	}
	var out []string
	for _, e := range strings.Fields(r.stdout) {
		if p, ok := strings.CutPrefix(e, "gateway-"); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// checkShards checks that the containers' selections divide want between
// them and that each container has a slot for exactly its own profiles;
// it returns the selections and whether all that holds.
func checkShards(t *testing.T, ids map[string]string, want []string) (map[string][]string, bool) {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	sel := map[string][]string{}
	var all []string
	for _, n := range sortedKeys(ids) {
		here, elsewhere := selection(t, ids[n])
		sel[n] = here
		all = append(all, here...)
		if mine := slices.Sorted(slices.Values(append(slices.Clone(here), elsewhere...))); !slices.Equal(mine, want) {
			fail("%s: its dry run covers %v (here %v, elsewhere %v), want every profile %v", n, mine, here, elsewhere, want)
		}
		if slots := gatewaySlots(t, ids[n]); !slices.Equal(slots, here) {
			fail("%s: gateway slots for %v, but its selection is %v: a container must supervise its own shard only", n, slots, here)
		}
	}
	slices.Sort(all)
	if !slices.Equal(all, want) {
		fail("the shards' selections %v do not divide the profiles %v between them", sel, want)
	}
	return sel, ok
}

// runShards checks that each container runs exactly the gateways of its
// selection, each profile in one container only.
func runShards(t *testing.T, ids map[string]string, sel map[string][]string, want []string) map[string][]string {
	t.Helper()
	where := partition(t, ids, want)
	for _, n := range sortedKeys(ids) {
		if !slices.Equal(where[n], sel[n]) {
			t.Errorf("%s runs the gateways of %v, but its shard is %v", n, where[n], sel[n])
		}
	}
	return where
}
