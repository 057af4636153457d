package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// sharing starts a second s6 tree — a second container — on tr's volume.
func sharing(t *testing.T, tr *s6tree.Tree) *s6tree.Tree {
	t.Helper()
	b := s6tree.New(t)
	b.Home = tr.Home
	b.StartScan(t)
	return b
}

// argvOf is /proc/PID/cmdline split into arguments.
func argvOf(proc string) []string {
	b, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

// gateways lists the stand-in gateway processes of profile p on home,
// across every tree.
func gateways(t *testing.T, home, p string) []int {
	_, standin := s6tree.Binaries(t)
	return s6tree.Pids(func(proc string) bool {
		argv := argvOf(proc)
		if len(argv) == 0 || argv[0] != standin || !strings.Contains(strings.Join(argv, " "), "gateway run") {
			return false
		}
		named := p == "default"
		for i, a := range argv {
			if (a == "-p" || a == "--profile") && i+1 < len(argv) {
				named = argv[i+1] == p
			}
		}
		env, _ := os.ReadFile(filepath.Join(proc, "environ"))
		return named && bytes.Contains(env, []byte("HERMES_HOME="+home+"\x00"))
	})
}

// loggers lists the s6-log processes writing dir.
func loggers(dir string) []int {
	return s6tree.Pids(func(proc string) bool {
		argv := argvOf(proc)
		return len(argv) > 1 && filepath.Base(argv[0]) == "s6-log" && argv[len(argv)-1] == dir
	})
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Two containers on one volume run one gateway per profile: the second
// container's slot is a healthy standby that names the holder, no second
// s6-log touches the log directory, and when the holder's container stops
// (drain, then its tree) the standby takes over at once, never overlapping,
// with the holder's last lines in the shared log and s6-log's lock kept.
func TestLeaseTwoContainersOneVolume(t *testing.T) {
	a := s6tree.Start(t)
	a.MustRun(t, "register", "--profile", "default", "--start")
	logDir := filepath.Join(a.Home, "logs", "gateways", "default")
	a.Eventually(t, wait, "A's gateway", func() bool { return len(gateways(t, a.Home, "default")) == 1 })
	lockIno := inode(t, filepath.Join(logDir, "lock"))

	b := sharing(t, a)
	r := b.MustRun(t, "register", "--profile", "default", "--start")
	if !strings.Contains(r.Stderr, "up as a standby: another container holds the lease") {
		t.Errorf("register --start on a standby should say it waits: %s", r)
	}
	st := eventually(t, b, "default", "B waiting for the lease", func(s status) bool { return s.Waiting })
	if !st.Up || st.Ready || st.LeaseHolder == nil || st.LeaseHolder.PID != loggers(logDir)[0] {
		t.Fatalf("B's status: want up, not ready, waiting, held by A's s6-log (pid %v), got %+v holder %+v", loggers(logDir), st, st.LeaseHolder)
	}
	if row := b.MustRun(t, "status").Stdout; !strings.Contains(row, "waiting for the lease, held by ") {
		t.Fatalf("B's status table should say who holds the lease:\n%s", row)
	}
	if h := healthOf(t, b); !h.Healthy || len(h.Standby) != 1 || h.Standby[0].Slot != "gateway-default" {
		t.Fatalf("B's health: a standby is healthy and listed, got %+v", h)
	}

	// For a while, exactly one gateway and one s6-log for the directory.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if g, l := gateways(t, a.Home, "default"), loggers(logDir); len(g) != 1 || len(l) != 1 {
			t.Fatalf("want one gateway and one s6-log for %s, got gateways %v, loggers %v", logDir, g, l)
		}
		s6tree.Poll(100*time.Millisecond, func() bool { return false })
	}

	// A's container stops: its drain takes the gateway down (the stand-in
	// writes its last line), then its tree goes, loggers last.
	if r := a.Run(t, "drain", "--timeout", "5s"); r.Code != 0 {
		t.Fatalf("A's drain: %s", r)
	}
	aLogger := loggers(logDir)[0]
	stopped := make(chan time.Time, 1)
	go func() { a.Stop(t); stopped <- time.Now() }()
	var took time.Duration
	var overlap []int
	gone := time.Time{}
	if !s6tree.Poll(wait, func() bool {
		// B's logger may take the lease between two looks: A's is gone
		// when its pid is.
		if gone.IsZero() && !slices.Contains(loggers(logDir), aLogger) {
			gone = time.Now()
		}
		g := gateways(t, a.Home, "default")
		if len(g) > 1 {
			overlap = g
		}
		if len(g) == 1 && !gone.IsZero() {
			took = time.Since(gone)
			return true
		}
		return false
	}) {
		t.Fatalf("B never took over: gateways %v, loggers %v\nB's output:\n%s", gateways(t, a.Home, "default"), loggers(logDir), b.Output())
	}
	<-stopped
	if overlap != nil {
		t.Fatalf("two gateways of one profile at once: %v", overlap)
	}
	t.Logf("handover: B's gateway up %s after A's logger let go", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("handover took %s; the standby should start at once", took)
	}
	eventually(t, b, "default", "B holding the lease", func(s status) bool { return s.Up && s.Ready && !s.Waiting })

	cur, err := os.ReadFile(filepath.Join(logDir, "current"))
	if err != nil || !strings.Contains(string(cur), "gateway default: last line, exit 0") {
		t.Fatalf("A's last line must be in the shared log: %v\n%s", err, cur)
	}
	if got := inode(t, filepath.Join(logDir, "lock")); got != lockIno {
		t.Errorf("s6-log's lock was replaced (inode %d, was %d): it must never be deleted", got, lockIno)
	}
	if strings.Contains(b.Output(), "unable to lock") || strings.Count(b.Output(), "s6-log") > 0 {
		t.Errorf("B's logger fought for the log directory:\n%s", b.Output())
	}
	var holder struct{ PID int }
	hb, _ := os.ReadFile(filepath.Join(logDir, "holder"))
	if json.Unmarshal(hb, &holder) != nil || holder.PID != loggers(logDir)[0] {
		t.Errorf("holder record should name B's s6-log %v: %s", loggers(logDir), hb)
	}
}

// A foreground gateway (--no-supervise) holds the same lease: while
// another container holds it the foreground gateway waits, and it starts
// when that container lets go. Its profile's slot is installed down.
func TestLeaseForegroundGateway(t *testing.T) {
	a := s6tree.Start(t)
	a.MustRun(t, "register", "--profile", "default", "--start")
	a.Eventually(t, wait, "A's gateway", func() bool { return len(gateways(t, a.Home, "default")) == 1 })

	b := sharing(t, a)
	cmd := []string{`HERMES_S6_CMD=["gateway","run","--no-supervise"]`}
	if r := b.RunEnv(t, cmd, "reconcile"); r.Code != 0 {
		t.Fatalf("B's reconcile: %s", r)
	}
	if st := statusOf(t, b, "default"); st.Up || st.WantUp || st.DesiredState != "running" {
		t.Fatalf("the foreground CMD's slot must be installed down with its desired state kept: %+v", st)
	}
	fg := startBg(t, b, cmd, "shim", "--", "gateway", "run", "--no-supervise")
	fg.await(t, b, "the foreground gateway to wait for the lease", func() bool {
		return strings.Contains(fg.stderr.String(), "waiting for the lease of profile default, held by")
	})
	if g := gateways(t, a.Home, "default"); len(g) != 1 {
		t.Fatalf("while A holds the lease only A's gateway runs, got %v", g)
	}
	if r := a.Run(t, "drain", "--timeout", "5s"); r.Code != 0 {
		t.Fatalf("A's drain: %s", r)
	}
	a.Stop(t)
	fg.await(t, b, "the foreground gateway to start", func() bool { return strings.Contains(fg.stdout.String(), banner) })
	if g := gateways(t, a.Home, "default"); len(g) != 1 || g[0] != fg.cmd.Process.Pid {
		t.Fatalf("want exactly the foreground gateway (pid %d), got %v", fg.cmd.Process.Pid, g)
	}
}

// The logger's leased pass (templates/log-run.tmpl) replaces an s6-log lock
// it cannot use — here a symlink, which s6-log would follow — without
// touching what it points to, records itself as the holder (its pid is
// s6-log's: the pass becomes s6-log) with the record's time as since, and
// leaves a usable lock where it is.
func TestLoggerReplacesAnUnusableLock(t *testing.T) {
	tr := s6tree.Start(t)
	logDir := filepath.Join(tr.Home, "logs", "gateways", "default")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	writeFile(t, target, "keep")
	if err := os.Symlink(target, filepath.Join(logDir, "lock")); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	tr.MustRun(t, "register", "--profile", "default", "--start")
	eventually(t, tr, "default", "the gateway up and ready", func(s status) bool { return s.Up && s.Ready })
	if fi, err := os.Lstat(filepath.Join(logDir, "lock")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("s6-log's lock should be a fresh regular file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatalf("the symlinked lock's target was touched: %q", b)
	}
	var rec map[string]any
	b, err := os.ReadFile(filepath.Join(logDir, "holder"))
	if err != nil || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("holder record: %s %v", b, err)
	}
	host, _ := os.Hostname()
	if pids := loggers(logDir); len(pids) != 1 || rec["pid"] != float64(pids[0]) || rec["host"] != host {
		t.Fatalf("holder record %s: want s6-log's pid %v on host %s", b, pids, host)
	}
	// The record says since when through its file time.
	if fi, err := os.Stat(filepath.Join(logDir, "holder")); err != nil || fi.ModTime().Before(before) {
		t.Fatalf("holder record's time: want after %v: %v %v", before, fi, err)
	}

	// The logger killed: its next leased pass keeps the usable lock.
	lockIno, old := inode(t, filepath.Join(logDir, "lock")), loggers(logDir)
	if err := syscall.Kill(old[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tr.Eventually(t, wait, "a new s6-log on the directory", func() bool {
		pids := loggers(logDir)
		return len(pids) == 1 && pids[0] != old[0]
	})
	if got := inode(t, filepath.Join(logDir, "lock")); got != lockIno {
		t.Fatalf("a usable lock must stay: inode %d, was %d", got, lockIno)
	}
}
