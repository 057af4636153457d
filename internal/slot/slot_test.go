package slot

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/golden"
	"github.com/nousresearch/hermes-s6/render"
)

func cfg(p string) render.Config {
	return render.Config{Kind: render.Gateway, Profile: p, Home: "/opt/data", Shebang: render.ShebangSh,
		Account: "hermes", Hermes: "hermes", LogArchives: 10, LogSize: 1000000, Down: true}
}

func mustRender(t *testing.T, c render.Config) *render.Slot {
	t.Helper()
	s, err := render.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readBack reads a slot directory back into a render.Slot.
func readBack(t *testing.T, dir string) *render.Slot {
	t.Helper()
	s := &render.Slot{Name: filepath.Base(dir)}
	for _, p := range []string{"down", "finish", "log/notification-fd", "log/run", "notification-fd", "run", "type"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, p))
		s.Files = append(s.Files, render.File{Path: p, Mode: fi.Mode().Perm(), Data: b})
	}
	return s
}

func noStaging(t *testing.T, scandir string) {
	t.Helper()
	ents, _ := os.ReadDir(scandir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("dot-dir left in scandir: %s", e.Name())
		}
	}
}

// render → write → read back → render again: nothing changes, and a second
// install touches nothing.
func TestIdempotent(t *testing.T) {
	scan := t.TempDir()
	s := mustRender(t, cfg("coder"))
	if res, err := Install(scan, s, Options{}); err != nil || res != Created {
		t.Fatalf("first install: %v %v", res, err)
	}
	dir := filepath.Join(scan, "gateway-coder")
	if diff := cmp.Diff(golden.Files(s), golden.Files(readBack(t, dir))); diff != "" {
		t.Fatalf("written slot differs from render (-render +disk):\n%s", diff)
	}
	before := inodes(t, dir)
	again := mustRender(t, cfg("coder"))
	if res, err := Install(scan, again, Options{SyncDown: true}); err != nil || res != Unchanged {
		t.Fatalf("second install: %v %v", res, err)
	}
	if diff := cmp.Diff(before, inodes(t, dir)); diff != "" {
		t.Fatalf("unchanged install touched files (-before +after):\n%s", diff)
	}
	noStaging(t, scan)
}

func inodes(t *testing.T, dir string) map[string]string {
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			m[p] = strconv.FormatUint(st.Ino, 10) + "@" + fi.ModTime().String()
		}
		return nil
	})
	return m
}

func TestUpdateReplacesAndKeepsMode(t *testing.T) {
	scan := t.TempDir()
	Install(scan, mustRender(t, cfg("coder")), Options{})
	dir := filepath.Join(scan, "gateway-coder")
	run := filepath.Join(dir, "run")
	os.Chmod(run, 0o600) // drifted mode must be repaired
	os.Remove(filepath.Join(dir, "down"))
	os.MkdirAll(filepath.Join(dir, "supervise"), 0o700)
	os.WriteFile(filepath.Join(dir, "supervise", "status"), []byte("keep"), 0o644)

	c := cfg("coder")
	c.Env = []render.EnvVar{{Key: "X", Value: "1"}}
	res, err := Install(scan, mustRender(t, c), Options{})
	if err != nil || res != Updated {
		t.Fatalf("update: %v %v", res, err)
	}
	fi, _ := os.Stat(run)
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("run mode %v, want 0755", fi.Mode())
	}
	if b, _ := os.ReadFile(run); !strings.Contains(string(b), "X=1") {
		t.Errorf("run not updated")
	}
	if _, err := os.Stat(filepath.Join(dir, "down")); !os.IsNotExist(err) {
		t.Errorf("update without SyncDown must keep the slot's down state (absent)")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "supervise", "status")); string(b) != "keep" {
		t.Errorf("supervise/ touched")
	}
	// SyncDown brings the down file in step both ways.
	if res, _ := Install(scan, mustRender(t, c), Options{SyncDown: true}); res != Updated {
		t.Errorf("SyncDown to down: %v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "down")); err != nil {
		t.Errorf("SyncDown did not create down")
	}
	c.Down = false
	Install(scan, mustRender(t, c), Options{SyncDown: true})
	if _, err := os.Stat(filepath.Join(dir, "down")); !os.IsNotExist(err) {
		t.Errorf("SyncDown did not remove down")
	}
	noStaging(t, scan)
}

// A failing install leaves no slot and no staging directory, even after it
// has written part of the slot.
func TestFailedCreateLeavesNothing(t *testing.T) {
	scan := t.TempDir()
	s := mustRender(t, cfg("coder"))
	// A file nested under another file cannot be created: the failure comes
	// after run, finish and log/run were written into the staging dir.
	s.Files = append(s.Files, render.File{Path: "type/oops", Mode: 0o644})
	if _, err := Install(scan, s, Options{}); err == nil {
		t.Fatal("install of an impossible slot succeeded")
	}
	if ents, _ := os.ReadDir(scan); len(ents) != 0 {
		t.Fatalf("failed install left %v", ents)
	}
	// A slot name taken by a file is refused up front.
	os.WriteFile(filepath.Join(scan, "gateway-coder"), []byte("x"), 0o644)
	if _, err := Install(scan, mustRender(t, cfg("coder")), Options{}); err == nil {
		t.Fatal("install over a file succeeded")
	}
	noStaging(t, scan)
}

// Two creators racing: the loser fails and leaves the winner's slot intact.
func TestCreateRaceKeepsWinner(t *testing.T) {
	scan := t.TempDir()
	s := mustRender(t, cfg("coder"))
	dir := filepath.Join(scan, "gateway-coder")
	stage, _ := os.MkdirTemp(scan, StagingPrefix)
	// Simulate the winner appearing between Stat and Rename.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "run"), []byte("winner"), 0o755)
	if _, err := create(scan, dir, s, Options{}); err == nil {
		t.Fatal("create over an existing slot succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run")); string(b) != "winner" {
		t.Fatal("winner's slot was modified")
	}
	os.RemoveAll(stage)
	noStaging(t, scan)
}

// installForNobody installs gateway-coder into a fresh scandir with a
// supervise skeleton for the nobody account (root only: it chowns).
func installForNobody(t *testing.T) (scan string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chown to another account needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody account")
	}
	uid, _ = strconv.Atoi(nobody.Uid)
	gid, _ = strconv.Atoi(nobody.Gid)
	scan = t.TempDir()
	acct := &account.Account{Name: "nobody", UID: uid, GID: gid}
	if _, err := Install(scan, mustRender(t, cfg("coder")), Options{Skeleton: acct}); err != nil {
		t.Fatal(err)
	}
	return scan, uid, gid
}

func TestSkeleton(t *testing.T) {
	scan, uid, gid := installForNobody(t)
	for _, base := range []string{"gateway-coder", "gateway-coder/log"} {
		for _, c := range []struct {
			p    string
			mode os.FileMode
		}{
			{"supervise", os.ModeDir | 0o755},
			{"supervise/control", os.ModeNamedPipe | 0o660},
			{"event", os.ModeDir | os.ModeSetgid | os.ModeSticky | 0o730},
		} {
			p := filepath.Join(scan, base, c.p)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != c.mode {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode(), c.mode)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != uid || int(st.Gid) != gid {
				t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
			}
		}
	}
}

func TestHide(t *testing.T) {
	scan := t.TempDir()
	Install(scan, mustRender(t, cfg("coder")), Options{})
	hidden, err := Hide(scan, "gateway-coder")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(hidden), RemovingPrefix) {
		t.Fatalf("hidden as %s", hidden)
	}
	if _, err := os.Stat(filepath.Join(hidden, "run")); err != nil {
		t.Fatalf("hidden slot lost its files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(scan, "gateway-coder")); !os.IsNotExist(err) {
		t.Fatalf("the slot is still visible to s6-svscan: %v", err)
	}
}
