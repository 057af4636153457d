package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// A command that finds its slot locked says so after a second and gives up
// with a clear error at its timeout.
func TestLockWaitNoticeAndTimeout(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register")
	lockPath := filepath.Join(tr.Scandir, ".hermes-s6-lock.gateway-default")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := tr.Run(t, "start", "--timeout", "1500ms")
	took := time.Since(start)
	if r.Code != 1 || !strings.Contains(r.Stderr, "waiting for another hermes-s6 command") || !strings.Contains(r.Stderr, "slot is busy") {
		t.Fatalf("start on a locked slot: want the wait notice then exit 1 with 'slot is busy', got %s", r)
	}
	if took > 10*time.Second {
		t.Fatalf("gave up after %s, want about the 1.5s timeout", took)
	}
	if st := statusOf(t, tr, "default"); st.WantUp || st.DesiredState != "none" {
		t.Fatalf("a command that never got the lock changed the slot: %+v", st)
	}
	// Released: the same command goes through.
	f.Close()
	tr.MustRun(t, "start")
}

// Many commands at once on one profile, and on many profiles: each ends in
// a state where s6, the slot files and gateway_state.json agree.
func TestConcurrentCommands(t *testing.T) {
	tr := s6tree.Start(t)
	bin, _ := s6tree.Binaries(t)
	ops := []string{"register", "start", "stop", "restart", "unregister"}
	profiles := []string{"default"}
	for i := 0; i < 20; i++ {
		p := "p" + string(rune('a'+i))
		addProfile(t, tr, p)
		profiles = append(profiles, p)
	}
	type job struct {
		cmd *exec.Cmd
		out strings.Builder
	}
	var jobs []*job
	launch := func(args ...string) {
		j := &job{cmd: exec.Command(bin, append(args, "--timeout", "60s")...)}
		j.cmd.Env = tr.Env(t)
		j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
		if err := j.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	tr.MustRun(t, "register", "--profile", "default")
	for i := 0; i < 20; i++ { // 20 parallel commands on one profile
		launch(ops[i%len(ops)], "--profile", "default")
	}
	for i, p := range profiles[1:] { // and on 20 different profiles
		launch("register", "--profile", p, "--start")
		launch(ops[1+i%4], "--profile", p)
	}
	for _, j := range jobs {
		err := j.cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		// 0, or 3 when a racing unregister removed the slot first.
		if code != 0 && code != 3 {
			t.Errorf("%v: exit %d\n%s", j.cmd.Args[1:], code, j.out.String())
		}
	}
	for _, p := range profiles {
		checkConsistent(t, tr, p)
	}
}

// checkConsistent asserts s6, the down file and gateway_state.json agree.
func checkConsistent(t *testing.T, tr *s6tree.Tree, p string) {
	t.Helper()
	stateFile := filepath.Join(tr.Home, "profiles", p, "gateway_state.json")
	if p == "default" {
		stateFile = filepath.Join(tr.Home, "gateway_state.json")
	}
	desired := "none"
	if b, err := os.ReadFile(stateFile); err == nil {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: state file does not parse: %v\n%s", p, err, b)
			return
		}
		desired, _ = m["desired_state"].(string)
	}
	slotDir := filepath.Join(tr.Scandir, "gateway-"+p)
	if _, err := os.Stat(slotDir); os.IsNotExist(err) {
		return // unregistered last: nothing in s6 to agree with
	}
	st := eventually(t, tr, p, p+" settled", func(s status) bool { return s.Supervised })
	_, downErr := os.Stat(filepath.Join(slotDir, "down"))
	hasDown := downErr == nil
	switch desired {
	case "running":
		if !st.WantUp || hasDown {
			t.Errorf("%s: desired running but want_up=%v down file=%v (%+v)", p, st.WantUp, hasDown, st)
		}
	case "stopped":
		if st.WantUp || st.Up || !hasDown {
			t.Errorf("%s: desired stopped but want_up=%v up=%v down file=%v", p, st.WantUp, st.Up, hasDown)
		}
	case "none":
		if st.WantUp || !hasDown {
			t.Errorf("%s: no desired state but want_up=%v down file=%v", p, st.WantUp, hasDown)
		}
	}
}
