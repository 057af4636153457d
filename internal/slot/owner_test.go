package slot

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// With a skeleton account, the slot directory and log/ are the account's
// (it keeps the down file in step), while the files root wrote stay root's.
func TestSkeletonAccountOwnsSlotDirs(t *testing.T) {
	scan, uid, gid := installForNobody(t)
	owner := func(rel string) (int, int, os.FileMode) {
		fi, err := os.Lstat(filepath.Join(scan, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid), fi.Mode()
	}
	for _, d := range []string{"gateway-coder", "gateway-coder/log"} {
		if u, g, m := owner(d); u != uid || g != gid || m != os.ModeDir|0o755 {
			t.Errorf("%s: %d:%d %v, want %d:%d drwxr-xr-x", d, u, g, m, uid, gid)
		}
	}
	for _, f := range []string{"gateway-coder/run", "gateway-coder/down", "gateway-coder/log/run"} {
		if u, _, _ := owner(f); u != os.Geteuid() {
			t.Errorf("%s: owned by %d, want the installer", f, u)
		}
	}
	// Without a skeleton account nothing is chowned.
	plain := t.TempDir()
	if _, err := Install(plain, mustRender(t, cfg("coder")), Options{}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(filepath.Join(plain, "gateway-coder"))
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
		t.Errorf("no skeleton: slot dir owned by %d", st.Uid)
	}
}
