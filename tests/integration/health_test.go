package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/proc"
	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

type healthReport struct {
	Healthy  bool   `json:"healthy"`
	Role     string `json:"role"`
	Slots    int    `json:"slots"`
	Problems []struct {
		Slot    string `json:"slot"`
		Profile string `json:"profile"`
		Problem string `json:"problem"`
		Fix     string `json:"fix"`
	} `json:"problems"`
	Standby []struct {
		Slot   string `json:"slot"`
		Holder string `json:"holder"`
	} `json:"standby"`
}

// healthOf runs `health --json` and checks that its exit code agrees with
// the report.
func healthOf(t *testing.T, tr *s6tree.Tree, extra ...string) healthReport {
	t.Helper()
	r := tr.RunEnv(t, extra, "health", "--json")
	var h healthReport
	if err := json.Unmarshal([]byte(r.Stdout), &h); err != nil {
		t.Fatalf("health --json: %v\n%s", err, r)
	}
	if want := map[bool]int{true: 0, false: 1}[h.Healthy]; r.Code != want {
		t.Fatalf("health --json says healthy=%v but exits %d, want %d\n%s", h.Healthy, r.Code, want, r)
	}
	return h
}

// healthUntil polls health until cond holds.
func healthUntil(t *testing.T, tr *s6tree.Tree, what string, cond func(healthReport) bool, extra ...string) healthReport {
	t.Helper()
	var last healthReport
	if !s6tree.Poll(wait, func() bool { last = healthOf(t, tr, extra...); return cond(last) }) {
		t.Fatalf("timed out waiting for health: %s; last report %+v\n%s", what, last, tr.Output())
	}
	return last
}

func problemWith(h healthReport, slot, sub string) bool {
	for _, p := range h.Problems {
		if p.Slot == slot && strings.Contains(p.Problem, sub) && p.Fix != "" {
			return true
		}
	}
	return false
}

// Health judges what was asked: a running gateway and a stopped one are
// healthy; one parked by exit 78 while its desired state is running is not,
// with the exit named and a fix; `start` after the fix makes it healthy.
func TestHealthParkedAndStopped(t *testing.T) {
	tr := s6tree.Start(t)
	addProfile(t, tr, "idle")
	tr.MustRun(t, "register", "--profile", "default", "--start")
	tr.MustRun(t, "register", "--profile", "idle", "--start")
	if h := healthOf(t, tr); !h.Healthy || h.Slots != 2 {
		t.Fatalf("two running gateways: want healthy over 2 slots, got %+v", h)
	}
	r := tr.MustRun(t, "health")
	if !strings.HasPrefix(r.Stdout, "healthy: ") {
		t.Fatalf("health: want a healthy line, got %s", r)
	}

	tr.MustRun(t, "stop", "--profile", "idle")
	if h := healthOf(t, tr); !h.Healthy {
		t.Fatalf("a gateway the operator stopped is healthy: got %+v", h)
	}

	plan(t, tr, "default", "exit", "78")
	tr.MustRun(t, "restart", "--profile", "default")
	h := healthUntil(t, tr, "default parked by exit 78", func(h healthReport) bool { return problemWith(h, "gateway-default", "parked") })
	if !problemWith(h, "gateway-default", "parked by finish after exit 78 (configuration error)") || len(h.Problems) != 1 {
		t.Fatalf("want exactly one problem naming exit 78, got %+v", h)
	}
	r = tr.Run(t, "health")
	if r.Code != 1 || !strings.Contains(r.Stdout, "UNHEALTHY gateway-default: parked by finish after exit 78") ||
		!strings.Contains(r.Stdout, "fix: hermes-s6 logs --profile default") {
		t.Fatalf("health: want exit 1 and a line with the fix, got %s", r)
	}

	if err := os.Remove(filepath.Join(tr.Home, "standin", "default.exit")); err != nil {
		t.Fatal(err)
	}
	tr.MustRun(t, "start", "--profile", "default")
	if h := healthOf(t, tr); !h.Healthy {
		t.Fatalf("after the fix and start: want healthy, got %+v", h)
	}
}

// A gateway that keeps dying backs off 1, 2, 4 … s before each start;
// status and health say so, health calls it crash-looping from the third
// death, and stop never waits on the backoff.
func TestCrashBackoff(t *testing.T) {
	tr := s6tree.Start(t)
	recordStarts(t, tr)
	plan(t, tr, "default", "exit", "1")
	tr.MustRun(t, "register", "--profile", "default", "--start")

	h := healthUntil(t, tr, "crash-looping", func(h healthReport) bool {
		return problemWith(h, "gateway-default", "crash-looping: died 3 times in a row")
	})
	if !problemWith(h, "gateway-default", "backing off, next try in") {
		t.Fatalf("health: want the backoff named, got %+v", h)
	}
	// The third death earned a 4 s wait: status shows it while run waits.
	var row string
	if !s6tree.Poll(wait, func() bool {
		row = tr.MustRun(t, "status").Stdout
		return strings.Contains(row, "backing off, next try in")
	}) {
		t.Fatalf("status never said the slot backs off:\n%s", row)
	}
	st := statusOf(t, tr, "default")
	if !st.WantUp || st.NextTry < 0 {
		t.Fatalf("status --json while backing off: want want_up and next_try ≥ 0, got %+v", st)
	}
	starts := countStarts(t, tr, "default")
	if starts < 3 || starts > 4 {
		t.Fatalf("three quick deaths took %d starts; the backoff should have held the count at 3 or 4", starts)
	}

	// stop kills the wait at once: no backoff is waited out.
	t0 := time.Now()
	tr.MustRun(t, "stop", "--profile", "default", "--timeout", "3s")
	if d := time.Since(t0); d > 2500*time.Millisecond {
		t.Fatalf("stop took %s during a backoff; it must not wait for it", d)
	}
	if h := healthOf(t, tr); !h.Healthy {
		t.Fatalf("stopped: want healthy, got %+v", h)
	}
	// A stop resets the count: the next start does not back off.
	if err := os.Remove(filepath.Join(tr.Home, "standin", "default.exit")); err != nil {
		t.Fatal(err)
	}
	tr.MustRun(t, "start", "--profile", "default")
	if st := statusOf(t, tr, "default"); !st.Up || st.NextTry != -1 {
		t.Fatalf("start after stop: want up at once, not backing off, got %+v", st)
	}
	if h := healthOf(t, tr); !h.Healthy {
		t.Fatalf("running again: want healthy, got %+v", h)
	}
}

// The dashboard slot is ready only once it answers HTTP; one that never
// does stays up and not ready, and health says so after the start grace.
func TestDashboardReadiness(t *testing.T) {
	tr := s6tree.Start(t)
	env := []string{"HERMES_DASHBOARD=1", "HERMES_DASHBOARD_PORT=" + freePort(t), "HERMES_S6_START_GRACE=2s"}
	tr.MustRun(t, "register", "--profile", "default", "--start")
	if r := tr.RunEnv(t, env, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	dash := func() status {
		for _, s := range allStatus(t, tr) {
			if s.Name == "dashboard" {
				return s
			}
		}
		t.Fatal("no dashboard slot")
		return status{}
	}
	if !s6tree.Poll(wait, func() bool { return dash().Ready }) {
		t.Fatalf("the dashboard never became ready: %+v\n%s", dash(), tr.Output())
	}
	if h := healthOf(t, tr, env...); !h.Healthy || h.Slots != 2 {
		t.Fatalf("serving dashboard: want healthy over 2 slots, got %+v", h)
	}

	plan(t, tr, "dashboard", "mode", "mute")
	// -d then -u: the stand-in exits 0 on SIGTERM, which finish parks.
	svc(t, "-wD", "-d", filepath.Join(tr.Scandir, "dashboard"))
	svc(t, "-u", filepath.Join(tr.Scandir, "dashboard"))
	h := healthUntil(t, tr, "a mute dashboard past its grace", func(h healthReport) bool {
		return problemWith(h, "dashboard", "does not answer HTTP")
	}, env...)
	if st := dash(); !st.Up || st.Ready {
		t.Fatalf("mute dashboard: want up and not ready, got %+v", st)
	}
	if r := tr.Run(t, "status"); !strings.Contains(r.Stdout, "up, not ready") {
		t.Fatalf("status: want the dashboard up, not ready:\n%s", r)
	}
	if len(h.Problems) != 1 {
		t.Fatalf("only the dashboard is wrong: %+v", h)
	}
	// Without HERMES_DASHBOARD the dashboard is not asked for: healthy.
	if h := healthOf(t, tr, "HERMES_DASHBOARD=", "HERMES_S6_START_GRACE=2s"); !h.Healthy {
		t.Fatalf("dashboard not asked for: want healthy, got %+v", h)
	}
}

// status, list and health exit 4 with the hint when no s6-svscan runs on
// the scandir, or there is no scandir.
func TestReadersNoTreeExit4(t *testing.T) {
	tr := s6tree.New(t)
	for _, c := range []struct {
		name  string
		setup func()
	}{
		{"no scandir", func() { os.RemoveAll(tr.Scandir) }},
		{"no s6-svscan", func() {
			if err := os.MkdirAll(filepath.Join(tr.Scandir, "gateway-default"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		c.setup()
		for _, args := range [][]string{{"status"}, {"status", "--json"}, {"status", "--profile", "default"}, {"list"}, {"health"}, {"health", "--json"}} {
			r := tr.Run(t, args...)
			if r.Code != 4 || !strings.Contains(r.Stderr, "no s6 supervision tree") || !strings.Contains(r.Stderr, "hermes-s6: hint:") {
				t.Errorf("%s: %s: want exit 4 with the hint, got %s", c.name, strings.Join(args, " "), r)
			}
		}
	}
}

// A foreground container checks its own gateway: healthy while the
// recorded process runs (its profile's down slot is not judged), unhealthy
// once it has exited. A dashboard container checks its dashboard answers.
func TestHealthOfOtherRoles(t *testing.T) {
	tr := s6tree.Start(t)
	setState(t, tr, "default", `{"desired_state":"running"}`)
	fgCmd := `HERMES_S6_CMD=["gateway","run","--no-supervise"]`
	if r := tr.RunEnv(t, []string{fgCmd}, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	record := filepath.Join(tr.Root, "foreground")
	// The foreground gateway: a process of our own, recorded as the shim
	// records it (pid and start time).
	gw := exec.Command("sleep", "300")
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Process.Kill(); gw.Wait() })
	start, err := proc.StartTime(gw.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, record, fmt.Sprintf("%d %s\n", gw.Process.Pid, start))
	h := healthOf(t, tr, fgCmd)
	if !h.Healthy || h.Role != "foreground" {
		t.Fatalf("foreground gateway running, its slot down: want healthy (role foreground), got %+v", h)
	}
	gw.Process.Kill()
	gw.Wait()
	h = healthOf(t, tr, fgCmd)
	if h.Healthy || !problemWith(h, "gateway (CMD)", "the foreground gateway has exited") {
		t.Fatalf("foreground gateway gone: want unhealthy naming it, got %+v", h)
	}

	port := freePort(t)
	dashCmd := fmt.Sprintf(`HERMES_S6_CMD=["dashboard","--host","0.0.0.0","--port","%s"]`, port)
	h = healthOf(t, tr, dashCmd)
	if h.Healthy || h.Role != "dashboard" || !problemWith(h, "dashboard (CMD)", "does not answer HTTP on 127.0.0.1:"+port) {
		t.Fatalf("dashboard container with nothing listening: want unhealthy, got %+v", h)
	}
	_, standin := s6tree.Binaries(t)
	dash := exec.Command(standin, "dashboard", "--host", "127.0.0.1", "--port", port)
	dash.Env = append(os.Environ(), "HERMES_HOME="+tr.Home)
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dash.Process.Kill(); dash.Wait() })
	healthUntil(t, tr, "the dashboard container healthy", func(h healthReport) bool { return h.Healthy && h.Role == "dashboard" }, dashCmd)
}

// In a container (its CMD known), health is unhealthy until this boot's
// reconcile has run: before it there are no slots to find wrong, and a
// Kubernetes startup probe that passed then would let the pod's readiness
// and liveness probes judge a half-built container. A record left by an
// earlier container on a /run that outlived it does not count; a boot
// reconcile that failed is named.
func TestHealthDuringBoot(t *testing.T) {
	tr := s6tree.Start(t)
	setState(t, tr, "default", `{"desired_state":"running"}`)
	cmd := `HERMES_S6_CMD=["gateway","run"]`
	record := filepath.Join(tr.Root, "runtime", "boot")

	h := healthOf(t, tr, cmd)
	if h.Healthy || h.Role != "supervisor" || !problemWith(h, "boot", "still booting") {
		t.Fatalf("before boot reconcile: want unhealthy, still booting; got %+v", h)
	}
	// Outside a container (no CMD) there is no boot hook to wait for.
	if h := healthOf(t, tr); !h.Healthy {
		t.Fatalf("no CMD, no slots: want healthy; got %+v", h)
	}
	writeFile(t, record, "pid1-start 1\n")
	if h := healthOf(t, tr, cmd); h.Healthy || !problemWith(h, "boot", "still booting") {
		t.Fatalf("another boot's record: want still booting; got %+v", h)
	}

	// A boot reconcile that fails (here: a selection it refuses) says so.
	if r := tr.RunEnv(t, []string{cmd, "HERMES_S6_SHARD=5/3"}, "reconcile"); r.Code != 2 {
		t.Fatalf("reconcile with a bad selection: want exit 2, got %s", r)
	}
	if h := healthOf(t, tr, cmd); h.Healthy || !problemWith(h, "boot", "the boot reconcile failed: HERMES_S6_SHARD") {
		t.Fatalf("after a failed boot reconcile: want unhealthy naming the error; got %+v", h)
	}

	if r := tr.RunEnv(t, []string{cmd}, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	healthUntil(t, tr, "healthy once boot reconcile has run and the gateway is up", func(h healthReport) bool {
		return h.Healthy && h.Slots == 2 && len(h.Problems) == 0 // the gateway and the (stopped) dashboard
	}, cmd)
}
