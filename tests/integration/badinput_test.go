package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// stable is a snapshot without what s6 itself keeps changing (supervise/,
// event/, the loggers' files, the stand-in's start log) and without the
// per-slot lock files, which are not state.
func stable(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := s6tree.Snapshot(dir, false)
	for k := range m {
		if strings.Contains(k, "supervise") || strings.Contains(k, "/event") || strings.HasPrefix(k, "home/logs") ||
			strings.Contains(k, "standin") || strings.Contains(k, ".hermes-s6-lock.") {
			delete(m, k)
		}
	}
	return m
}

// refused runs hermes-s6 and asserts the exit code, that stderr names the
// problem, and that nothing changed on disk.
func refused(t *testing.T, tr *s6tree.Tree, uid, gid int, extra []string, code int, problem string, args ...string) s6tree.Result {
	t.Helper()
	before := stable(t, tr.Root)
	r := tr.RunAs(t, uid, gid, extra, args...)
	if r.Code != code || !strings.Contains(r.Stderr, "hermes-s6: error: ") || !strings.Contains(r.Stderr, problem) {
		t.Errorf("%s: want exit %d and an error naming %q, got %s", strings.Join(args, " "), code, problem, r)
	}
	if strings.Count(r.Stderr, "hermes-s6: error: ") != 1 {
		t.Errorf("%s: the error must be printed once:\n%s", strings.Join(args, " "), r.Stderr)
	}
	if diff := cmp.Diff(before, stable(t, tr.Root)); diff != "" {
		t.Errorf("%s changed the disk (-before +after):\n%s", strings.Join(args, " "), diff)
	}
	return r
}

func TestBadInputMissingHome(t *testing.T) {
	tr := s6tree.Start(t)
	r := refused(t, tr, -1, -1, []string{"HERMES_HOME=" + filepath.Join(tr.Root, "nohome")}, 1, "does not exist", "register", "--start")
	if !strings.Contains(r.Stderr, "hermes-s6: hint:") {
		t.Errorf("no hint:\n%s", r.Stderr)
	}
}

func TestBadInputMissingScandir(t *testing.T) {
	tr := s6tree.Start(t)
	refused(t, tr, -1, -1, []string{"HERMES_S6_SCANDIR=" + filepath.Join(tr.Root, "noscan")}, 4, "scandir", "register")
}

func TestBadInputNoS6Tools(t *testing.T) {
	tr := s6tree.Start(t)
	r := refused(t, tr, -1, -1, []string{"HERMES_S6_BIN=" + t.TempDir()}, 1, "s6 tool not found", "register", "--start")
	if !strings.Contains(r.Stderr, "HERMES_S6_BIN") {
		t.Errorf("the hint should name HERMES_S6_BIN:\n%s", r.Stderr)
	}
}

func TestBadInputProfileDirIsAFile(t *testing.T) {
	tr := s6tree.Start(t)
	os.MkdirAll(filepath.Join(tr.Home, "profiles"), 0o755)
	os.WriteFile(filepath.Join(tr.Home, "profiles", "coder"), []byte("x"), 0o644)
	refused(t, tr, -1, -1, nil, 2, "is not a directory", "register", "--profile", "coder")
}

func TestBadInputSymlinkedLogDir(t *testing.T) {
	tr := s6tree.Start(t)
	elsewhere := t.TempDir()
	os.MkdirAll(filepath.Join(tr.Home, "logs", "gateways"), 0o755)
	if err := os.Symlink(elsewhere, filepath.Join(tr.Home, "logs", "gateways", "default")); err != nil {
		t.Fatal(err)
	}
	refused(t, tr, -1, -1, nil, 1, "is a symlink", "register", "--start")
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("the symlink's target was written to: %v", ents)
	}
	if r := tr.Run(t, "logs"); r.Code == 0 || !strings.Contains(r.Stderr, "symlink") {
		t.Fatalf("logs through a symlinked dir: %s", r)
	}
}

// A corrupt state file is reported and counted as no state; status never
// rewrites it; start moves it aside (kept verbatim) and says so.
func TestBadInputCorruptState(t *testing.T) {
	tr := s6tree.Start(t)
	tr.MustRun(t, "register")
	path := filepath.Join(tr.Home, "gateway_state.json")
	os.WriteFile(path, []byte(`{"desired_state": "running",`), 0o644)
	st := statusOf(t, tr, "default")
	if st.DesiredState != "corrupt" {
		t.Fatalf("desired_state of a corrupt file: %q", st.DesiredState)
	}
	r := tr.MustRun(t, "status")
	if !strings.Contains(r.Stderr, "corrupt") || !strings.Contains(r.Stderr, path) {
		t.Errorf("status does not report the corrupt file:\n%s", r.Stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"desired_state": "running",` {
		t.Fatalf("status rewrote the corrupt file: %s", b)
	}
	r = tr.MustRun(t, "start")
	if !strings.Contains(r.Stderr, "moved it aside") {
		t.Errorf("start does not say it moved the corrupt file aside:\n%s", r.Stderr)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("want one %s.corrupt-<epoch>, got %v", path, matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != `{"desired_state": "running",` {
		t.Fatalf("the corrupt file was not kept verbatim: %s", b)
	}
	if st := statusOf(t, tr, "default"); st.DesiredState != "running" || !st.Up {
		t.Fatalf("after start: %+v", st)
	}
}

// Unwritable HERMES_HOME and read-only scandir, as the service account
// (root ignores permission bits).
func TestBadInputPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create an account")
	}
	_, uid, gid := newAccount(t, "bad", 10002)
	tr := s6tree.Start(t)
	tr.OpenToAccounts(t)
	tr.MustRun(t, "register")
	// The account may control the tree (as after the boot reconcile)...
	for _, p := range []string{tr.Scandir, filepath.Join(tr.Scandir, ".s6-svscan", "control"), filepath.Join(tr.Scandir, "gateway-default", "supervise", "control")} {
		os.Chown(p, uid, gid)
	}
	os.Chmod(filepath.Join(tr.Scandir, ".s6-svscan"), 0o711)
	os.Chmod(filepath.Join(tr.Scandir, "gateway-default", "supervise"), 0o755)
	// ...but HERMES_HOME is root's and read-only to it.
	os.Chmod(tr.Home, 0o555)
	r := refused(t, tr, uid, gid, nil, 1, "permission denied", "start")
	if !strings.Contains(r.Stderr, filepath.Join(tr.Home, "gateway_state.json")) {
		t.Errorf("the error should name the state file:\n%s", r)
	}
	// A root-owned scandir (as in the image): the account cannot stage a
	// slot in it, so register asks the broker; with none listening it says
	// so, names the socket, and changes nothing.
	addProfile(t, tr, "coder")
	os.Chmod(tr.Home, 0o755)
	os.Chown(tr.Scandir, 0, 0)
	sock := filepath.Join(tr.Root, "broker.sock")
	r = refused(t, tr, uid, gid, []string{"HERMES_S6_BROKER=" + sock}, 1, "no hermes-s6 broker", "register", "--profile", "coder")
	if !strings.Contains(r.Stderr, sock) {
		t.Errorf("the error should name the broker's socket:\n%s", r)
	}
}

// A scandir on a full tmpfs: register fails cleanly, leaving no staging
// directory, and works again once there is room.
func TestBadInputFullScandir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	tr := s6tree.New(t)
	tr.Tmpfs(t, tr.Scandir, "size=64k,nr_inodes=64")
	tr.StartScan(t)
	filler := filepath.Join(tr.Scandir, ".filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 1<<20)) // fails part-way with ENOSPC: the point
	f.Close()
	r := refused(t, tr, -1, -1, nil, 1, "no space left on device", "register")
	_ = r
	ents, _ := os.ReadDir(tr.Scandir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".hermes-s6-staging.") || e.Name() == "gateway-default" {
			t.Fatalf("a failed register left %s", e.Name())
		}
	}
	os.Remove(filler)
	tr.MustRun(t, "register", "--start")
}
