package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// The service account owns the volume, and the gateway runs an agent as
// that account: whatever it leaves there must not make a root hermes-s6
// command read, write or block on anything outside the volume. Each case
// plants something at the default profile's state file, then runs the
// commands an operator runs as root, with a deadline.
func TestRootOnAHostileVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the attacks are on root: run as root (CI does)")
	}
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	secretBody := []byte(`{"desired_state":"running","api_key":"sk-do-not-copy"}`)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, secretBody, 0o600))

	for _, tc := range []struct {
		name  string
		plant func(path string)
	}{
		{"state file symlinked to a root-only secret", func(p string) { must(os.Symlink(secret, p)) }},
		{"state file symlinked to /dev/zero", func(p string) { must(os.Symlink("/dev/zero", p)) }},
		{"state file is a FIFO", func(p string) { must(syscall.Mkfifo(p, 0o666)) }},
		{"state file is 1 GB", func(p string) {
			f, err := os.Create(p)
			must(err)
			must(f.Truncate(1 << 30))
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := s6tree.Start(t)
			tr.MustRun(t, "register")
			state := filepath.Join(tr.Home, "gateway_state.json")
			tc.plant(state)
			for _, args := range [][]string{
				{"status", "--profile", "default", "--json"},
				{"start", "--profile", "default"},
				{"stop", "--profile", "default"},
				{"restart", "--profile", "default"},
				{"status", "--json"},
			} {
				r, took := timed(t, tr, args...)
				if took > 10*time.Second {
					t.Fatalf("hermes-s6 %s took %s: it blocked on the planted file", strings.Join(args, " "), took)
				}
				if strings.Contains(r.Stdout+r.Stderr, "sk-do-not-copy") {
					t.Fatalf("hermes-s6 %s printed the secret:\n%s", strings.Join(args, " "), r)
				}
				if args[0] != "status" && r.Code != 0 {
					t.Fatalf("hermes-s6 %s: %s", strings.Join(args, " "), r)
				}
			}
			if b, err := os.ReadFile(secret); err != nil || !bytes.Equal(b, secretBody) {
				t.Fatalf("the secret outside the volume changed: %q %v", b, err)
			}
			fi, err := os.Lstat(state)
			if err != nil || !fi.Mode().IsRegular() || fi.Size() > 4096 {
				t.Fatalf("the state file is not a fresh small regular file: %v %v", fi, err)
			}
			if b, _ := os.ReadFile(state); bytes.Contains(b, []byte("sk-do-not-copy")) {
				t.Fatalf("the secret's keys were copied onto the volume:\n%s", b)
			}
			if aside, _ := filepath.Glob(state + ".corrupt-*"); len(aside) != 1 {
				t.Fatalf("the planted entry was not moved aside: %v", aside)
			}
		})
	}
}

// A profile directory swapped for a symlink (to /etc/cont-init.d, say,
// whose scripts root runs at the next boot) is refused: root writes
// nothing through it and says why.
func TestRootRefusesSymlinkedProfileDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the attack is on root: run as root (CI does)")
	}
	tr := s6tree.Start(t)
	addProfile(t, tr, "x")
	tr.MustRun(t, "register", "--profile", "x")
	target := t.TempDir() // stands for /etc/cont-init.d
	dir := filepath.Join(tr.Home, "profiles", "x")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "SOUL.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stop", "--profile", "x"}, {"start", "--profile", "x"}, {"restart", "--profile", "x"}} {
		r := tr.Run(t, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "symbolic link") {
			t.Errorf("hermes-s6 %s: want exit 1 naming the symbolic link, got %s", strings.Join(args, " "), r)
		}
	}
	if ents, _ := os.ReadDir(target); len(ents) != 1 {
		t.Fatalf("root wrote through the symlinked profile dir: %v", ents)
	}
}

func timed(t *testing.T, tr *s6tree.Tree, args ...string) (s6tree.Result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := tr.Run(t, args...)
	return r, time.Since(start)
}

// Intent first: on a full volume stop cannot record the desired state, so
// it stops nothing and says why.
func TestFullVolumeStopChangesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root: run as root (CI does)")
	}
	tr := s6tree.New(t)
	tr.Tmpfs(t, tr.Home, "size=512k")
	tr.StartScan(t)
	tr.MustRun(t, "register", "--start")
	before := statusOf(t, tr, "default")
	if !before.Up || before.DesiredState != "running" {
		t.Fatalf("after register --start: %+v", before)
	}
	// Fill the volume.
	f, err := os.Create(filepath.Join(tr.Home, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	f.Close()

	r := tr.Run(t, "stop", "--profile", "default")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no space left on device") || !strings.Contains(r.Stderr, "nothing was changed") {
		t.Fatalf("stop on a full volume: want exit 1 naming the full volume, got %s", r)
	}
	after := statusOf(t, tr, "default")
	if !after.Up || !after.WantUp || after.PID != before.PID || after.DesiredState != "running" {
		t.Fatalf("stop changed something although it could not record the intent: %+v, was %+v", after, before)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-default", "down")); !os.IsNotExist(err) {
		t.Fatalf("stop wrote a down file although it could not record the intent: %v", err)
	}
}
