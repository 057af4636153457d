package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// fixture is a clean environment in a temp dir: a HERMES_HOME, a scandir
// whose s6-svscan "listens" (the test holds the control FIFO open for
// reading, which is all s6's liveness test looks at), fake s6 tools,
// detection roots that say s6, and s6 statuses the test sets per directory.
type fixture struct {
	root, home, scandir string
	env                 Env
	status              map[string]s6.Status
	deaths              map[string][]s6.Death
	// acct is the service account the fixture uses: nobody as root (so
	// ownership matters), nil otherwise (the caller controls the slots).
	acct *account.Account
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		root:    root,
		home:    filepath.Join(root, "home"),
		scandir: filepath.Join(root, "service"),
		status:  map[string]s6.Status{},
		deaths:  map[string][]s6.Death{},
		now:     time.Now(),
	}
	tools := filepath.Join(root, "bin")
	proc := filepath.Join(root, "proc")
	base := filepath.Join(root, "basedir")
	for _, d := range []string{f.home, f.scandir, tools, filepath.Join(proc, "1"), base} {
		mkdir(t, d, 0o755)
	}
	for _, tool := range AllTools() {
		writeFile(t, filepath.Join(tools, tool), "#!/bin/sh\nexit 0\n", 0o755)
	}
	writeFile(t, filepath.Join(proc, "1", "comm"), "s6-svscan\n", 0o644)
	if os.Geteuid() == 0 {
		f.acct = nobody(t)
	}
	f.env = Env{
		Env: config.Env{
			Layout:   profile.Layout{Home: f.home, Scandir: f.scandir},
			Tools:    s6.Tools{Dir: tools},
			Identity: account.Resolve(nil),
			Getenv:   func(string) string { return "" },
			Now:      func() time.Time { return f.now },
		},
		ProcRoot: proc,
		Basedir:  base,
		recheck:  -1, // the statuses here do not change: no second look
		Status: func(_ context.Context, dir string) (s6.Status, error) {
			if st, ok := f.status[dir]; ok {
				return st, nil
			}
			return s6.Status{PID: -1, ExitCode: -1}, nil
		},
		Deaths: func(_ context.Context, dir string) ([]s6.Death, error) { return f.deaths[dir], nil },
	}
	if f.acct != nil {
		f.env.AccountName, f.env.Identity.Service = f.acct.Name, f.acct
		chown(t, f.home, f.acct)
	}
	f.svscan(t)
	return f
}

// nobody is the account root's tests hand things to.
func nobody(t *testing.T) *account.Account {
	t.Helper()
	a, err := account.Lookup("nobody")
	if err != nil || a.UID == 0 {
		t.Skipf("no usable nobody account: %v", err)
	}
	return a
}

// svscan makes the scandir look like a running s6-svscan's, root's as the
// boot reconcile keeps it.
func (f *fixture) svscan(t *testing.T) {
	t.Helper()
	dir := filepath.Join(f.scandir, ".s6-svscan")
	mkdir(t, dir, 0o700)
	listen(t, filepath.Join(dir, "control"), 0o600)
	writeFile(t, filepath.Join(dir, "lock"), "", 0o600)
}

// run runs every check.
func (f *fixture) run() []Finding { return Run(context.Background(), f.env) }

// addProfile creates a named profile directory with SOUL.md.
func (f *fixture) addProfile(t *testing.T, p string) {
	t.Helper()
	dir := filepath.Join(f.home, "profiles", p)
	mkdir(t, dir, 0o755)
	writeFile(t, filepath.Join(dir, "SOUL.md"), "soul\n", 0o644)
	if f.acct != nil {
		chown(t, filepath.Join(f.home, "profiles"), f.acct)
		chown(t, dir, f.acct)
	}
}

// addSlot installs profile p's slot ("" for the dashboard) as reconcile
// would (skeleton for the controller, down file): supervised and down, with
// a logger that runs, unless the test changes the statuses.
func (f *fixture) addSlot(t *testing.T, p string) string {
	t.Helper()
	c := render.Config{Kind: render.Gateway, Profile: p, Home: f.home, Shebang: render.ShebangSh,
		Hermes: "hermes", LogArchives: 10, LogSize: 1000000, Down: true}
	if p == "" {
		c.Kind, c.DashboardHost, c.DashboardPort = render.Dashboard, "127.0.0.1", 9119
	}
	s, err := render.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	skel := f.env.Identity.Controller()
	if _, err := slot.Install(f.scandir, s, slot.Options{Skeleton: skel, Root: f.env.Identity.Root()}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.scandir, s.Name)
	f.status[dir] = s6.Status{Supervised: true, PID: -1, ExitCode: -1, Seconds: 100}
	f.status[filepath.Join(dir, "log")] = s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 43, ExitCode: -1, Seconds: 100}
	return dir
}

// logDir creates a slot's log dir as its s6-log would, owned by the
// account.
func (f *fixture) logDir(t *testing.T, rel ...string) string {
	t.Helper()
	dir := filepath.Join(append([]string{f.home, "logs"}, rel...)...)
	mkdir(t, dir, 0o755)
	writeFile(t, filepath.Join(dir, "current"), "line\n", 0o644)
	if f.acct != nil {
		for p := dir; p != f.home; p = filepath.Dir(p) {
			chown(t, p, f.acct)
		}
		chown(t, filepath.Join(dir, "current"), f.acct)
	}
	return dir
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string, a *account.Account) {
	t.Helper()
	if err := os.Lchown(p, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
}

// chmod changes a mode and restores a removable one at cleanup.
func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(p, 0o755) })
}

// listen makes fifo (mode) and holds it open for reading until cleanup:
// to s6's liveness test (s6.Listening), a supervisor listens on it.
func listen(t *testing.T, fifo string, mode uint32) {
	t.Helper()
	if err := syscall.Mkfifo(fifo, mode); err != nil && err != syscall.EEXIST {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
}

// problems returns the findings of check that are not ok.
func problems(fs []Finding, check string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Check == check && f.Severity != OK {
			out = append(out, f)
		}
	}
	return out
}

// want fails unless check reported exactly one finding of severity sev
// whose problem contains every one of subs; it returns that finding.
func want(t *testing.T, fs []Finding, check string, sev Severity, subs ...string) Finding {
	t.Helper()
	got := problems(fs, check)
	if len(got) != 1 || got[0].Severity != sev {
		t.Fatalf("%s: want one %s finding, got %+v\nall findings:\n%s", check, sev, got, dump(fs))
	}
	for _, s := range subs {
		if !strings.Contains(got[0].Problem, s) {
			t.Errorf("%s: problem %q lacks %q", check, got[0].Problem, s)
		}
	}
	if got[0].Fix == "" {
		t.Errorf("%s: a %s finding without a fix", check, sev)
	}
	pasteable(t, got[0].Fix)
	return got[0]
}

// pasteable fails unless fix is valid sh (sh -n parses without running).
func pasteable(t *testing.T, fix string) {
	t.Helper()
	if out, err := exec.Command("/bin/sh", "-n", "-c", fix).CombinedOutput(); err != nil {
		t.Errorf("fix is not valid sh: %q: %v\n%s", fix, err, out)
	}
}

// clean fails when any check reported anything but ok.
func clean(t *testing.T, fs []Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Severity != OK {
			t.Fatalf("want only ok findings, got:\n%s", dump(fs))
		}
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	Print(&b, fs)
	return b.String()
}

// uidGid is the numeric owner a fix line names for a (the caller for nil).
func uidGid(a *account.Account) string {
	if a == nil {
		return strconv.Itoa(os.Geteuid()) + ":" + strconv.Itoa(os.Getegid())
	}
	return strconv.Itoa(a.UID) + ":" + strconv.Itoa(a.GID)
}
