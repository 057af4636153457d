package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// plan writes the stand-in's instruction of kind (exit, drain) for profile p.
func plan(t *testing.T, tr *s6tree.Tree, p, kind, value string) {
	t.Helper()
	dir := filepath.Join(tr.Home, "standin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, p+"."+kind), []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCurrent(t *testing.T, tr *s6tree.Tree, p string) string {
	t.Helper()
	dir := filepath.Join(tr.Home, "logs", "gateways", p)
	if p == "dashboard" {
		dir = filepath.Join(tr.Home, "logs", "dashboard")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "current"))
	return string(b)
}

// The stop drain takes every gateway down through s6 at once while its
// logger runs: each gateway's drain lines and last line reach both the
// tree's stdout (docker logs) and its rotated file; a gateway that ignores
// SIGTERM is killed at the deadline and named; a slot that is down stays
// untouched; no desired state changes.
func TestDrain(t *testing.T) {
	tr := s6tree.Start(t)
	for _, p := range []string{"slow", "quick", "stuck", "idle"} {
		addProfile(t, tr, p)
	}
	plan(t, tr, "default", "drain", "1s")
	plan(t, tr, "slow", "drain", "1500ms")
	plan(t, tr, "stuck", "exit", "hold")
	for _, p := range []string{"default", "slow", "quick", "stuck"} {
		tr.MustRun(t, "register", "--start", "--profile", p)
	}
	tr.MustRun(t, "register", "--profile", "idle")
	for _, p := range []string{"default", "slow", "quick", "stuck"} {
		tr.Eventually(t, wait, p+" logged its banner", func() bool { return strings.Contains(readCurrent(t, tr, p), banner) })
	}
	states := map[string][]byte{}
	for _, p := range []string{"default", "slow", "quick", "stuck"} {
		f := filepath.Join(tr.Home, "profiles", p, "gateway_state.json")
		if p == "default" {
			f = filepath.Join(tr.Home, "gateway_state.json")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		states[f] = b
	}

	const timeout = 3 * time.Second
	start := time.Now()
	r := tr.Run(t, "drain", "--timeout", timeout.String())
	took := time.Since(start)
	if r.Code != 0 {
		t.Fatalf("drain: %s", r)
	}
	// Everything ran at once: the stuck gateway sets the pace, not the sum
	// of the drains (1 s + 1.5 s + the stuck one's 3 s).
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("drain took %s; want the %s deadline plus the kill, not more", took.Round(time.Millisecond), timeout)
	}
	if !strings.Contains(r.Stderr, "killed: gateway-stuck\n") {
		t.Errorf("the killed slot is not named in one line:\n%s", r.Stderr)
	}
	for _, p := range []string{"default", "slow", "quick"} {
		if strings.Contains(r.Stderr, "gateway-"+p+"\n") || strings.Contains(r.Stderr, "gateway-"+p+",") {
			t.Errorf("gateway-%s drained in time but is named as killed:\n%s", p, r.Stderr)
		}
		last := "gateway " + p + ": last line, exit 0"
		if !strings.Contains(readCurrent(t, tr, p), last) {
			t.Errorf("%q is not in %s's rotated log:%s", last, p, readCurrent(t, tr, p))
		}
		if !strings.Contains(tr.Output(), last) {
			t.Errorf("%q is not on the tree's stdout (docker logs)", last)
		}
	}
	for _, step := range []string{"gateway default: draining, step 4/4", "gateway slow: draining, step 6/6"} {
		if !strings.Contains(tr.Output(), step) {
			t.Errorf("drain line %q is not on the tree's stdout", step)
		}
	}
	for _, p := range []string{"default", "slow", "quick", "stuck", "idle"} {
		st := statusOf(t, tr, p)
		if st.Up || st.WantUp {
			t.Errorf("%s after the drain: %+v; want down", p, st)
		}
		if p == "stuck" && st.Signal != "SIGKILL" {
			t.Errorf("stuck: want killed by SIGKILL, got %+v", st)
		}
		if p == "idle" && st.ExitCode != -1 {
			t.Errorf("idle never ran, the drain must not have started it: %+v", st)
		}
	}
	for f, before := range states {
		after, err := os.ReadFile(f)
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("%s changed by the drain:\nbefore %s\nafter  %s (%v)", f, before, after, err)
		}
	}
	// The loggers stay up for stage 3 to stop.
	for _, p := range []string{"default", "slow"} {
		if !svstatUp(filepath.Join(tr.Scandir, "gateway-"+p, "log")) {
			t.Errorf("gateway-%s's logger is down after the drain; stage 3 stops it", p)
		}
	}
}

// A drain with nothing up returns at once and kills nothing.
func TestDrainNothingUp(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register", "--profile", "default")
	r := tr.Run(t, "drain", "--timeout", "5s")
	if r.Code != 0 || strings.Contains(r.Stderr, "killed:") {
		t.Fatalf("drain of a down slot: %s", r)
	}
	if st := statusOf(t, tr, "default"); st.Up || st.ExitCode != -1 {
		t.Fatalf("the down slot was touched: %+v", st)
	}
}

// The foreground gateway (`gateway run --no-supervise`) is recorded by the
// shim and gets SIGTERM from the drain first, then its own drain time, and
// is killed at the deadline if it ignores it.
func TestDrainForeground(t *testing.T) {
	for _, tc := range []struct {
		name, exitPlan string
		wantKill       bool
	}{
		{"drains", "", false},
		{"ignores SIGTERM", "hold", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := s6tree.Start(t)
			plan(t, tr, "default", "drain", "500ms")
			if tc.exitPlan != "" {
				plan(t, tr, "default", "exit", tc.exitPlan)
			}
			bin, _ := s6tree.Binaries(t)
			cmd := exec.Command(bin, "shim", "--", "gateway", "run", "--no-supervise")
			cmd.Env = tr.Env(t)
			var out s6tree.SyncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })
			tr.Eventually(t, wait, "the foreground gateway is up", func() bool { return strings.Contains(out.String(), "gateway profile=default") })
			record, err := os.ReadFile(filepath.Join(tr.Root, "foreground"))
			if err != nil || !strings.HasPrefix(string(record), strconv.Itoa(cmd.Process.Pid)+" ") {
				t.Fatalf("the shim's foreground record %q (%v) does not name pid %d", record, err, cmd.Process.Pid)
			}

			r := tr.Run(t, "drain", "--timeout", "2s")
			if r.Code != 0 {
				t.Fatalf("drain: %s", r)
			}
			select {
			case err := <-exited:
				var code int
				if ee, ok := err.(*exec.ExitError); ok {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						code = -int(ws.Signal())
					} else {
						code = ee.ExitCode()
					}
				}
				if tc.wantKill {
					if code != -int(syscall.SIGKILL) || !strings.Contains(r.Stderr, "killed: foreground gateway") {
						t.Errorf("want the gateway killed and named; exit %d, drain said:\n%s", code, r.Stderr)
					}
					return
				}
				if code != 0 || strings.Contains(r.Stderr, "killed:") {
					t.Errorf("want a clean exit 0 and nothing killed; exit %d, drain said:\n%s", code, r.Stderr)
				}
				for _, line := range []string{"received terminated, shutting down", "draining, step 2/2", "gateway default: last line, exit 0"} {
					if !strings.Contains(out.String(), line) {
						t.Errorf("the foreground gateway's output lacks %q:\n%s", line, out.String())
					}
				}
			case <-time.After(wait):
				t.Fatalf("the foreground gateway still runs after the drain:\n%s", out.String())
			}
		})
	}
}
