// Package integration is tier 2: hermes-s6 against a real s6 supervision
// tree from Debian's s6, supervising the stand-in gateway.
package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

const banner = "⚕ Hermes Gateway Starting…"

// wait is the deadline for every polled condition.
const wait = 15 * time.Second

type status struct {
	Name         string  `json:"name"`
	Profile      *string `json:"profile"`
	Supervised   bool    `json:"supervised"`
	Up           bool    `json:"up"`
	WantUp       bool    `json:"want_up"`
	NormallyUp   bool    `json:"normally_up"`
	Ready        bool    `json:"ready"`
	PID          int     `json:"pid"`
	ExitCode     int     `json:"exit_code"`
	Signal       string  `json:"signal"`
	Seconds      int     `json:"seconds"`
	DesiredState string  `json:"desired_state"`
	NextTry      int     `json:"next_try"`
	Waiting      bool    `json:"waiting"`
	LeaseHolder  *struct {
		Host string `json:"host"`
		PID  int    `json:"pid"`
	} `json:"lease_holder"`
}

func statusOf(t *testing.T, tr *s6tree.Tree, p string) status {
	t.Helper()
	r := tr.MustRun(t, "status", "--profile", p, "--json")
	var sts []status
	if err := json.Unmarshal([]byte(r.Stdout), &sts); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	if len(sts) != 1 {
		t.Fatalf("status --profile %s --json: want a 1-element array, got %s", p, r.Stdout)
	}
	return sts[0]
}

// eventually polls hermes-s6 status until cond holds.
func eventually(t *testing.T, tr *s6tree.Tree, p, what string, cond func(status) bool) status {
	t.Helper()
	var last status
	if !s6tree.Poll(wait, func() bool { last = statusOf(t, tr, p); return cond(last) }) {
		t.Fatalf("timed out waiting for %s: last status %+v\ns6-svscan output:\n%s", what, last, tr.Output())
	}
	return last
}

func addProfile(t *testing.T, tr *s6tree.Tree, p string) {
	t.Helper()
	dir := filepath.Join(tr.Home, "profiles", p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "SOUL.md"), []byte("# "+p+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pidAlive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestLifecycle(t *testing.T) {
	tr := s6tree.Start(t)
	addProfile(t, tr, "coder")
	const p = "coder"

	tr.MustRun(t, "register", "--profile", p)
	st := eventually(t, tr, p, "registered slot supervised", func(s status) bool { return s.Supervised })
	if st.Up || st.WantUp || st.NormallyUp || st.PID != -1 || st.ExitCode != -1 || st.DesiredState != "none" {
		t.Fatalf("after register want supervised, down, no process, no exit code yet, no desired state; got %+v", st)
	}
	table := strings.Split(strings.TrimSpace(tr.MustRun(t, "status", "--profile", p).Stdout), "\n")
	if f := strings.Fields(table[len(table)-1]); f[len(f)-1] != "-" {
		t.Fatalf("a slot that never ran shows LAST EXIT -:\n%s", strings.Join(table, "\n"))
	}
	if st.Name != "gateway-coder" || st.Profile == nil || *st.Profile != p {
		t.Fatalf("name/profile: %+v", st)
	}

	tr.MustRun(t, "start", "--profile", p)
	st = statusOf(t, tr, p)
	if !st.Up || !st.WantUp || !st.NormallyUp || st.PID <= 0 || !pidAlive(st.PID) || st.DesiredState != "running" {
		t.Fatalf("after start want up with a live pid, desired running; got %+v", st)
	}
	first := st.PID

	banners := strings.Count(tr.Output(), banner)
	tr.MustRun(t, "restart", "--profile", p)
	st = statusOf(t, tr, p)
	if !st.Up || !st.WantUp || st.PID <= 0 || st.PID == first || st.DesiredState != "running" {
		t.Fatalf("after restart want up with a new pid (old %d); got %+v", first, st)
	}
	// Ready is the moment run execs the gateway; the stand-in says when it
	// has started (and handles SIGTERM), which the stop below relies on.
	tr.Eventually(t, wait, "the restarted gateway's banner", func() bool { return strings.Count(tr.Output(), banner) > banners })
	if pidAlive(first) {
		t.Fatalf("old gateway pid %d still alive after restart", first)
	}

	tr.MustRun(t, "stop", "--profile", p)
	st = statusOf(t, tr, p)
	if st.Up || st.WantUp || st.NormallyUp || st.PID != -1 || st.ExitCode != 0 || st.Signal != "" || st.DesiredState != "stopped" {
		t.Fatalf("after stop want down, want down, exit code 0 (the gateway exits 0 on SIGTERM), desired stopped; got %+v", st)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-coder", "down")); err != nil {
		t.Fatalf("stop must leave a down file so a reboot keeps it down: %v", err)
	}

	// The state file keeps foreign keys and records the intent.
	raw, err := os.ReadFile(filepath.Join(tr.Home, "profiles", p, "gateway_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sf map[string]any
	if err := json.Unmarshal(raw, &sf); err != nil || sf["desired_state"] != "stopped" {
		t.Fatalf("gateway_state.json: %v %s", err, raw)
	}

	tr.MustRun(t, "start", "--profile", p)
	supervisorsBefore := len(tr.Processes())
	tr.MustRun(t, "unregister", "--profile", p)
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-coder")); !os.IsNotExist(err) {
		t.Fatalf("slot directory still there after unregister: %v", err)
	}
	ents, _ := os.ReadDir(tr.Scandir)
	for _, e := range ents {
		// The slot's lock file stays: removing a flock file races with a
		// command waiting on it.
		if e.Name() != ".s6-svscan" && e.Name() != ".hermes-s6-lock.gateway-coder" {
			t.Errorf("leftover in scandir after unregister: %s", e.Name())
		}
	}
	// The gateway, its s6-supervise, the logger and its s6-supervise are gone:
	// only s6-svscan is left of the tree.
	if left := tr.Processes(); len(left) != 1 {
		t.Fatalf("after unregister want only s6-svscan left (had %d processes before), got pids %v", supervisorsBefore, left)
	}
	if r := tr.Run(t, "status", "--profile", p); r.Code != 3 {
		t.Fatalf("status of an unregistered profile: want exit 3, got %s", r)
	}
}

func TestStatusAllAndList(t *testing.T) {
	tr := s6tree.Start(t)
	addProfile(t, tr, "zeta")
	addProfile(t, tr, "alpha")
	tr.MustRun(t, "register", "--profile", "zeta")
	tr.MustRun(t, "register", "--profile", "alpha")
	tr.MustRun(t, "register", "--profile", "default", "--start")

	if r := tr.MustRun(t, "list"); r.Stdout != "default\nalpha\nzeta\n" {
		t.Fatalf("list: want default first then sorted, got %q", r.Stdout)
	}
	// More slots than status runs at once: the rows keep list's order and
	// each row is its own slot's.
	want := []string{"default", "alpha"}
	for i := 1; i <= 6; i++ {
		p := "p" + strconv.Itoa(i)
		addProfile(t, tr, p)
		tr.MustRun(t, "register", "--profile", p)
		want = append(want, p)
	}
	want = append(want, "zeta")
	tr.MustRun(t, "start", "--profile", "p3")
	r := tr.MustRun(t, "status", "--json")
	var sts []status
	if err := json.Unmarshal([]byte(r.Stdout), &sts); err != nil || len(sts) != len(want) {
		t.Fatalf("status --json: want %d slots: %v\n%s", len(want), err, r.Stdout)
	}
	for i, p := range want {
		st := sts[i]
		up := p == "default" || p == "p3"
		if st.Name != "gateway-"+p || st.Profile == nil || *st.Profile != p || st.Up != up || (st.DesiredState == "running") != up {
			t.Errorf("row %d: want gateway-%s (up %v), got %+v", i, p, up, st)
		}
	}
	human := tr.MustRun(t, "status").Stdout
	for _, want := range []string{"SLOT", "gateway-default", "gateway-alpha", "gateway-zeta"} {
		if !strings.Contains(human, want) {
			t.Errorf("status table lacks %q:\n%s", want, human)
		}
	}
}

// s6-log's T stamps "2026-11-27 07:26:51.870081273  line": ISO 8601 with
// a space between date and time, nanoseconds, then two spaces.
var isoLine = regexp.MustCompile(`(?m)^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d+ +(.*)$`)

func TestLogsReachStdoutAndRotatedFile(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register", "--profile", "default", "--start")
	current := filepath.Join(tr.Home, "logs", "gateways", "default", "current")
	var file string
	tr.Eventually(t, wait, "banner and stderr line in "+current, func() bool {
		b, _ := os.ReadFile(current)
		file = string(b)
		return strings.Contains(file, banner) && strings.Contains(file, "hermes-standin: gateway profile=default")
	})
	// The file copy is stamped with ISO 8601 (s6-log T).
	stamped := map[string]bool{}
	for _, m := range isoLine.FindAllStringSubmatch(file, -1) {
		stamped[m[1]] = true
	}
	if !stamped[banner] {
		t.Fatalf("banner not on an ISO 8601-stamped line in current:\n%s", file)
	}
	// The raw copy reaches s6-svscan's stdout (the container's) unstamped.
	tr.Eventually(t, wait, "raw banner on s6-svscan's stdout", func() bool {
		for _, line := range strings.Split(tr.Output(), "\n") {
			if line == banner {
				return true
			}
		}
		return false
	})
	if isoLine.MatchString(tr.Output()) {
		t.Fatalf("stdout copy must be raw, found an ISO 8601 stamp:\n%s", tr.Output())
	}
	// `hermes-s6 logs` reads the same file back, stamped.
	if r := tr.MustRun(t, "logs", "-n", "2"); !strings.Contains(r.Stdout, banner) || !isoLine.MatchString(r.Stdout) || strings.Count(r.Stdout, "\n") != 2 {
		t.Fatalf("logs -n 2: %s", r)
	}
	// Shutdown is logged too (the gateway honours SIGTERM).
	tr.MustRun(t, "stop")
	tr.Eventually(t, wait, "shutdown line in "+current, func() bool {
		b, _ := os.ReadFile(current)
		return strings.Contains(string(b), "shutting down")
	})
}

// The finish script parks a gateway that exits 0 or 78 and restarts one
// that exits 1 or is killed.
func TestFinishPolicy(t *testing.T) {
	tr := s6tree.Start(t)
	plans := filepath.Join(tr.Home, "standin")
	if err := os.MkdirAll(plans, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{0, 78} {
		t.Run("exit"+strconv.Itoa(code)+"_parks", func(t *testing.T) {
			p := "park" + strconv.Itoa(code)
			addProfile(t, tr, p)
			os.WriteFile(filepath.Join(plans, p+".exit"), []byte(strconv.Itoa(code)), 0o644)
			tr.MustRun(t, "register", "--profile", p)
			tr.Run(t, "start", "--profile", p) // may report up, or already gone
			st := eventually(t, tr, p, "parked after exit "+strconv.Itoa(code), func(s status) bool {
				return !s.Up && !s.WantUp && s.ExitCode == code
			})
			starts := countStarts(t, tr, p)
			// Parked means s6-supervise will not run it again: the start
			// count stays 1 while s6's 1 s restart spacing passes several times.
			if s6tree.Poll(3*time.Second, func() bool { return countStarts(t, tr, p) > starts }) {
				t.Fatalf("gateway exiting %d was restarted: %+v", code, st)
			}
			if starts != 1 {
				t.Fatalf("want exactly one start, got %d", starts)
			}
		})
	}
	t.Run("exit1_restarts", func(t *testing.T) {
		p := "crash1"
		addProfile(t, tr, p)
		os.WriteFile(filepath.Join(plans, p+".exit"), []byte("1"), 0o644)
		tr.MustRun(t, "register", "--profile", p)
		tr.Run(t, "start", "--profile", p)
		tr.Eventually(t, wait, "a second start after exit 1", func() bool { return countStarts(t, tr, p) >= 2 })
		st := statusOf(t, tr, p)
		if !st.WantUp {
			t.Fatalf("exit 1 must keep want up: %+v", st)
		}
		tr.MustRun(t, "stop", "--profile", p)
	})
	t.Run("kill9_restarts", func(t *testing.T) {
		p := "kill9"
		addProfile(t, tr, p)
		tr.MustRun(t, "register", "--profile", p, "--start")
		st := statusOf(t, tr, p)
		if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		next := eventually(t, tr, p, "new pid after kill -9", func(s status) bool { return s.Up && s.PID > 0 && s.PID != st.PID })
		if !next.WantUp {
			t.Fatalf("after kill -9 want up: %+v", next)
		}
	})
}

func countStarts(t *testing.T, tr *s6tree.Tree, p string) int {
	b, err := os.ReadFile(filepath.Join(tr.Home, "standin", "starts.log"))
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == p {
			n++
		}
	}
	return n
}
