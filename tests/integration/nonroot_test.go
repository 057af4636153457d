package integration

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// newAccount creates a throwaway system user (uid wantUID when free, else
// any) and removes it at cleanup.
func newAccount(t *testing.T, tag string, wantUID int) (name string, uid, gid int) {
	t.Helper()
	name = fmt.Sprintf("hs6%s%d", tag, os.Getpid()%100000)
	args := []string{"--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"}
	if _, err := user.LookupId(strconv.Itoa(wantUID)); err != nil {
		if _, err := user.LookupGroupId(strconv.Itoa(wantUID)); err != nil {
			args = append(args, "--uid", strconv.Itoa(wantUID))
		}
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return name, uid, gid
}

func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, uid, gid)
		}
		return err
	})
}

// The image's model: root runs the tree, the boot reconcile and the
// broker, and owns the scandir and every slot in it; the service account
// (uid 10000 in the image) controls its own slots through the supervise
// skeleton's group and registers new ones through the broker, yet can
// write nothing s6 runs or reads. Another unprivileged account is refused
// with a hint and changes nothing.
func TestNonRootControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create accounts and run the tree as root")
	}
	svc, uid, gid := newAccount(t, "svc", 10000)
	_, ouid, ogid := newAccount(t, "oth", 10001)
	tr := s6tree.Start(t)
	tr.OpenToAccounts(t)
	addProfile(t, tr, "coder")
	addProfile(t, tr, "other")
	chownTree(t, tr.Home, uid, gid)
	env := []string{"HERMES_S6_ACCOUNT=" + svc, "HERMES_S6_BROKER=" + filepath.Join(tr.Root, "broker.sock")}

	// Boot: root keeps the scandir; the broker serves the account.
	if r := tr.RunEnv(t, env, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile as root: %s", r)
	}
	brk := startBg(t, tr, env, "broker")
	brk.await(t, tr, "the broker to listen", func() bool {
		fi, err := os.Stat(filepath.Join(tr.Root, "broker.sock"))
		return err == nil && fi.Mode()&os.ModeSocket != 0
	})
	as := func(args ...string) s6tree.Result { return tr.RunAs(t, uid, gid, env, args...) }
	must := func(args ...string) {
		t.Helper()
		if r := as(args...); r.Code != 0 {
			t.Fatalf("%s as %s: %s\ns6-svscan:\n%s", strings.Join(args, " "), svc, r, tr.Output())
		}
	}
	must("register", "--profile", "coder")
	// The broker installed it: root's, the account's group on the skeleton.
	for _, p := range []string{"", "run", "finish", "log", "log/run"} {
		if fi, err := os.Lstat(filepath.Join(tr.Scandir, "gateway-coder", p)); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("gateway-coder/%s registered through the broker is not root's: %v", p, err)
		}
	}
	// What the account may not do: create or rename anything in the
	// scandir, rewrite a file s6 runs, talk to s6-svscan.
	for _, attack := range [][]string{
		{"mkdir", filepath.Join(tr.Scandir, "evil")},
		{"sh", "-c", "echo 'id > /tmp/pwned' > " + filepath.Join(tr.Scandir, "gateway-coder", "run")},
		{"mv", filepath.Join(tr.Scandir, "gateway-coder"), filepath.Join(tr.Scandir, "gateway-x")},
		{"sh", "-c", "printf a > " + filepath.Join(tr.Scandir, ".s6-svscan", "control")},
		{"touch", filepath.Join(tr.Scandir, "gateway-default", "down")},
	} {
		cmd := exec.Command(attack[0], attack[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("as %s, %q succeeded: %s", svc, attack, out)
		}
	}
	must("start", "--profile", "coder")
	st := statusOf(t, tr, "coder")
	if !st.Up || !st.WantUp || st.DesiredState != "running" {
		t.Fatalf("after start as %s: %+v", svc, st)
	}
	// The gateway itself runs as the service account, not root. s6 reports
	// the pid while run is still chaining through s6-setuidgid: poll.
	if !s6tree.Poll(wait, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.PID))
		return err == nil && strings.Contains(string(b), fmt.Sprintf("\nUid:\t%d\t", uid))
	}) {
		t.Errorf("gateway pid %d never ran as %s", st.PID, svc)
	}
	if r := as("status", "--profile", "coder", "--json"); r.Code != 0 || !strings.Contains(r.Stdout, `"up": true`) {
		t.Fatalf("status as %s: %s", svc, r)
	}
	must("restart", "--profile", "coder")
	must("stop", "--profile", "coder")
	if st := statusOf(t, tr, "coder"); st.Up || st.WantUp {
		t.Fatalf("after stop as %s: %+v", svc, st)
	}
	// Files it wrote on the volume are its own.
	fi, err := os.Stat(filepath.Join(tr.Home, "profiles", "coder", "gateway_state.json"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("gateway_state.json written by %s is not its own: %v", svc, err)
	}

	// Another account: refused with a hint, nothing changes.
	must("start", "--profile", "coder")
	before := s6tree.Snapshot(tr.Root, false)
	other := func(args ...string) {
		t.Helper()
		r := tr.RunAs(t, ouid, ogid, env, args...)
		t.Logf("%s as another account: %s", strings.Join(args, " "), r.Stderr)
		if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "hermes-s6: hint:") {
			t.Errorf("%s as another account: want a permission error with a hint, got %s", strings.Join(args, " "), r)
		}
	}
	other("register", "--profile", "other")
	other("stop", "--profile", "coder")
	other("unregister", "--profile", "coder")
	after := s6tree.Snapshot(tr.Root, false)
	for _, m := range []map[string]string{before, after} { // supervise/ and logs churn on their own
		for k := range m {
			if strings.Contains(k, "supervise") || strings.Contains(k, "logs/") || strings.Contains(k, "standin") {
				delete(m, k)
			}
		}
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("refused commands changed the tree (-before +after):\n%s", diff)
	}
	if st := statusOf(t, tr, "coder"); !st.Up || !st.WantUp {
		t.Fatalf("refused stop disturbed the gateway: %+v", st)
	}

	must("unregister", "--profile", "coder")
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-coder")); !os.IsNotExist(err) {
		t.Fatalf("unregister as %s left the slot: %v", svc, err)
	}
}
