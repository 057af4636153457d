package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

func TestInvalidNamesChangeNothing(t *testing.T) {
	tr := s6tree.Start(t)
	before := s6tree.Snapshot(tr.Root, false)
	names := []string{"../x", "A", "Coder", "a/b", "-x", "_x", "a.b", "a b", "", strings.Repeat("a", 65), "a\nb"}
	for _, cmd := range []string{"register", "start", "stop", "restart", "unregister", "status", "render"} {
		for _, n := range names {
			r := tr.Run(t, cmd, "--profile", n)
			if r.Code != 2 {
				t.Errorf("%s --profile %q: want exit 2, got %s", cmd, n, r)
			}
			if !strings.Contains(r.Stderr, "hermes-s6: error: invalid profile name") || !strings.Contains(r.Stderr, "a-z, 0-9") {
				t.Errorf("%s --profile %q: stderr should name the rule:\n%s", cmd, n, r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("%s --profile %q: stdout must stay empty, got %q", cmd, n, r.Stdout)
			}
		}
	}
	if diff := cmp.Diff(before, s6tree.Snapshot(tr.Root, false)); diff != "" {
		t.Fatalf("refused commands changed the tree (-before +after):\n%s", diff)
	}
}

func TestUnregisteredBeforeAnyS6Call(t *testing.T) {
	// No s6-svscan and no s6 tools at all: an s6 call would fail with exit
	// 1 or 4, so exit 3 proves the check came first. (status is the
	// exception: with no tree it says 4 first, TestReadersNoTreeExit4.)
	tr := s6tree.New(t)
	empty := t.TempDir()
	for _, cmd := range []string{"start", "stop", "restart", "unregister"} {
		r := tr.RunEnv(t, []string{"HERMES_S6_BIN=" + empty}, cmd, "--profile", "ghost")
		if r.Code != 3 {
			t.Errorf("%s on an unregistered profile: want exit 3, got %s", cmd, r)
		}
		if !strings.Contains(r.Stderr, "hermes-s6: hint: register it first: hermes-s6 register --profile ghost") {
			t.Errorf("%s: want a register hint, got:\n%s", cmd, r.Stderr)
		}
	}
}

func TestNoTreeExit4(t *testing.T) {
	tr := s6tree.New(t) // directories, no s6-svscan
	r := tr.Run(t, "register", "--profile", "default")
	if r.Code != 4 || !strings.Contains(r.Stderr, "no s6 supervision tree") || !strings.Contains(r.Stderr, "hermes-s6: hint:") {
		t.Fatalf("register without s6-svscan: want exit 4 with a hint, got %s", r)
	}
	if ents, _ := os.ReadDir(tr.Scandir); len(ents) != 0 {
		t.Fatalf("register without a tree wrote %d entries into the scandir", len(ents))
	}
	// A slot left from a tree that has gone: lifecycle commands say 4.
	os.MkdirAll(filepath.Join(tr.Scandir, "gateway-default"), 0o755)
	for _, cmd := range []string{"start", "stop", "restart", "unregister"} {
		if r := tr.Run(t, cmd); r.Code != 4 {
			t.Errorf("%s without s6-svscan: want exit 4, got %s", cmd, r)
		}
	}
}

func TestRegisterNeedsProfile(t *testing.T) {
	tr := s6tree.Start(t)
	r := tr.Run(t, "register", "--profile", "nosuch")
	if r.Code != 2 || !strings.Contains(r.Stderr, "SOUL.md") || !strings.Contains(r.Stderr, "hermes-s6: hint:") {
		t.Fatalf("register of a missing profile: want exit 2 naming SOUL.md with a hint, got %s", r)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-nosuch")); !os.IsNotExist(err) {
		t.Fatal("slot created for a missing profile")
	}
}

func TestReRegisterKeepsStateAndProcess(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register", "--start")
	st := statusOf(t, tr, "default")
	run := filepath.Join(tr.Scandir, "gateway-default", "run")
	fi, _ := os.Stat(run)
	// Same config: nothing is rewritten.
	tr.MustRun(t, "register")
	if fi2, _ := os.Stat(run); !os.SameFile(fi, fi2) || fi2.ModTime() != fi.ModTime() {
		t.Fatal("re-register with the same config rewrote run")
	}
	// New config: run is replaced atomically (new inode), mode kept 0755,
	// the running gateway is left alone, and no down file appears.
	tr.MustRun(t, "register", "--env", "EXTRA=1")
	fi2, _ := os.Stat(run)
	if os.SameFile(fi, fi2) || fi2.Mode().Perm() != 0o755 {
		t.Fatalf("changed run: want a new inode with mode 0755, got same=%v mode=%v", os.SameFile(fi, fi2), fi2.Mode())
	}
	if b, _ := os.ReadFile(run); !strings.Contains(string(b), "EXTRA=1") {
		t.Fatalf("run not updated:\n%s", b)
	}
	if after := statusOf(t, tr, "default"); after.PID != st.PID || !after.Up {
		t.Fatalf("re-register disturbed the gateway: before %+v after %+v", st, after)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-default", "down")); !os.IsNotExist(err) {
		t.Fatal("re-register of a running slot added a down file")
	}
}

// The completion scripts ask hermes-s6 itself for candidates.
func TestBashCompletionListsCommands(t *testing.T) {
	tr := s6tree.New(t)
	r := tr.MustRun(t, "--generate-bash-completion")
	for _, c := range []string{"register", "start", "status", "reconcile", "doctor", "logs"} {
		if !strings.Contains(r.Stdout, c+"\n") {
			t.Errorf("completion candidates lack %s:\n%s", c, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "reconcile volume") {
		t.Errorf("the hidden volume worker is offered:\n%s", r.Stdout)
	}
}

// A bad slot setting stops the commands that render slots before they
// change anything, and only them: stop and start render nothing, so they
// still work (an operator can always stop a gateway).
func TestBadSlotSettingOnlyStopsRendering(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register", "--start")
	bad := []string{"HERMES_S6_SHEBANG=/bin/sh"}
	for _, args := range [][]string{{"register"}, {"render"}, {"start", "--log-size", "65536"}} {
		if r := tr.RunEnv(t, bad, args...); r.Code != 2 || !strings.Contains(r.Stderr, "shebang") {
			t.Errorf("%s with a bad shebang: want exit 2 naming it, got %s", strings.Join(args, " "), r)
		}
	}
	for _, args := range [][]string{{"stop"}, {"start"}, {"restart"}, {"status"}} {
		if r := tr.RunEnv(t, bad, args...); r.Code != 0 {
			t.Errorf("%s renders nothing, so a bad shebang must not stop it: %s", strings.Join(args, " "), r)
		}
	}
	if st := statusOf(t, tr, "default"); !st.Up || st.DesiredState != "running" {
		t.Fatalf("after stop, start, restart: want up and running, got %+v", st)
	}
}
