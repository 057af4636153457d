package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// toolsWaitingOn lists the pids of s6-svwait processes whose arguments
// name dir.
func toolsWaitingOn(dir string) []int {
	return s6tree.Pids(func(proc string) bool {
		b, err := os.ReadFile(filepath.Join(proc, "cmdline"))
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		return err == nil && len(args) > 1 && filepath.Base(string(args[0])) == "s6-svwait" && string(args[len(args)-1]) == dir
	})
}

// SIGTERM stops a command that is waiting on s6 at once and cleanly: it
// kills the s6-svwait it waits in, exits 1 naming the signal, and leaves
// the slot in place (unregister removes it only once the gateway is down).
func TestSignalStopsAWaitingCommand(t *testing.T) {
	tr := s6tree.Start(t)
	// A gateway that ignores SIGTERM: unregister's wait for down cannot end.
	plans := filepath.Join(tr.Home, "standin")
	if err := os.MkdirAll(plans, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plans, "default.exit"), []byte("hold"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr.MustRun(t, "register", "--start")
	slot := filepath.Join(tr.Scandir, "gateway-default")
	t.Cleanup(func() { exec.Command(filepath.Join(s6tree.Bin, "s6-svc"), "-k", slot).Run() })
	// Ready (start's wait) is the run script about to exec the gateway; the
	// stand-in holds on SIGTERM only once it prints its banner. A SIGTERM
	// before that kills it, and the test would see no gateway holding.
	tr.Eventually(t, wait, "the gateway's banner", func() bool { return strings.Contains(tr.Output(), banner) })

	unreg := startBg(t, tr, nil, "unregister", "--timeout", "60s")
	unreg.await(t, tr, "unregister to wait in s6-svwait", func() bool { return len(toolsWaitingOn(slot)) > 0 })
	if code := unreg.stop(t, syscall.SIGTERM); code != 1 || !strings.Contains(unreg.stderr.String(), "interrupted by SIGTERM") {
		t.Fatalf("unregister on SIGTERM: want exit 1 naming the signal, got %d: %s", code, unreg)
	}
	tr.Eventually(t, 5*time.Second, "its s6-svwait to be gone", func() bool { return len(toolsWaitingOn(slot)) == 0 })
	if st := statusOf(t, tr, "default"); !st.Supervised || st.WantUp || !st.Up {
		t.Fatalf("after the interrupted unregister: want the slot still supervised, want down, gateway still up (it holds), got %+v", st)
	}
}

// A command waiting for a slot's lock gives up on SIGINT too, without
// touching the slot.
func TestSignalStopsALockWait(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register")
	f, err := os.OpenFile(filepath.Join(tr.Scandir, ".hermes-s6-lock.gateway-default"), os.O_RDWR|os.O_CREATE, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	reg := startBg(t, tr, nil, "register", "--start", "--timeout", "60s")
	reg.await(t, tr, "register to say it waits for the lock", func() bool {
		return strings.Contains(reg.stderr.String(), "waiting for another hermes-s6 command")
	})
	if code := reg.stop(t, syscall.SIGINT); code != 1 || !strings.Contains(reg.stderr.String(), "interrupted by SIGINT") {
		t.Fatalf("register on SIGINT: want exit 1 naming the signal, got %d: %s", code, reg)
	}
	if st := statusOf(t, tr, "default"); st.WantUp || st.DesiredState != "none" {
		t.Fatalf("an interrupted register --start changed the slot: %+v", st)
	}
}

// logs -f ends cleanly on ^C: exit 0, with what it printed.
func TestSignalEndsLogsFollow(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register", "--start")
	follow := startBg(t, tr, nil, "logs", "--profile", "default", "-f")
	follow.await(t, tr, "logs -f to print the banner", func() bool { return strings.Contains(follow.stdout.String(), banner) })
	if code := follow.stop(t, syscall.SIGINT); code != 0 || follow.stderr.String() != "" {
		t.Fatalf("logs -f on SIGINT: want exit 0 and nothing on stderr, got %d: %s", code, follow)
	}
}
