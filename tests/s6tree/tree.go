// Package s6tree runs a real s6 supervision tree for tests: Debian's
// s6-svscan on a temporary scandir, its stdout captured (it is what the
// container's stdout would be), and every process it spawned killed and
// reaped at cleanup.
//
// It also builds the hermes-s6 binary and the stand-in gateway once per test
// binary, so tests exercise the real programs end to end.
package s6tree

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin is the directory of Debian's s6 tools.
const Bin = "/usr/bin"

// marker is an environment variable set on s6-svscan and so inherited by
// every process of the tree: cleanup finds stragglers by it.
const marker = "HERMES_S6_TEST_TREE"

// Tree is a running s6-svscan with a scandir and a HERMES_HOME.
type Tree struct {
	Root    string // temp dir holding everything below
	Scandir string
	Home    string
	out     *SyncBuffer
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// Require skips nothing: it fails the test with the install command when
// Debian's s6 is missing, because these tests are the point of the tier.
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"s6-svscan", "s6-supervise", "s6-svc", "s6-svstat", "s6-svscanctl", "s6-svwait", "s6-log", "s6-setuidgid", "s6-permafailon"} {
		if _, err := os.Stat(filepath.Join(Bin, tool)); err != nil {
			t.Fatalf("%s/%s missing: install Debian's s6 (apt-get install s6 execline; `make test` does it as root)", Bin, tool)
		}
	}
}

// New creates the directories of a tree without starting s6-svscan.
func New(t testing.TB) *Tree {
	t.Helper()
	Require(t)
	root := t.TempDir()
	tr := &Tree{Root: root, Scandir: filepath.Join(root, "service"), Home: filepath.Join(root, "home"), out: &SyncBuffer{}}
	for _, d := range []string{tr.Scandir, tr.Home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { tr.Stop(t) })
	return tr
}

// Start creates a tree and starts s6-svscan on it.
func Start(t testing.TB) *Tree {
	t.Helper()
	tr := New(t)
	tr.StartScan(t)
	return tr
}

// Tmpfs mounts a tmpfs with opts (e.g. size=512k) on dir, one of the
// tree's directories, for tests of a full disk; the test skips when
// nothing can be mounted here. At cleanup, which runs before New's, the
// tree is stopped while dir is still there, then dir is unmounted.
func (tr *Tree) Tmpfs(t testing.TB, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "hermes-s6-full", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		tr.Stop(t)
		syscall.Unmount(dir, syscall.MNT_DETACH)
	})
}

// StartScan starts s6-svscan (with opts, e.g. -c 8) on the tree's scandir
// and waits until it listens on its control FIFO.
func (tr *Tree) StartScan(t testing.TB, opts ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(Bin, "s6-svscan"), append(opts, tr.Scandir)...)
	cmd.Env = append(os.Environ(), marker+"="+tr.Root, "PATH="+Bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Stdout, cmd.Stderr = tr.out, tr.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s6-svscan: %v", err)
	}
	tr.cmd, tr.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(tr.done) }()
	tr.Eventually(t, 10*time.Second, "s6-svscan listening on "+tr.Scandir, func() bool {
		return fifoHasReader(filepath.Join(tr.Scandir, ".s6-svscan", "control"))
	})
}

// Output is everything s6-svscan and its children wrote to stdout/stderr.
func (tr *Tree) Output() string { return tr.out.String() }

// Eventually polls cond every 20ms until it holds or timeout passes.
func (tr *Tree) Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s\ns6-svscan output:\n%s", timeout, what, tr.Output())
	}
}

// Poll calls cond every 20ms until it returns true (true) or timeout passes
// (false).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop brings the tree down and checks that no process of it survives.
// It runs at cleanup; a test may call it earlier (it is idempotent).
func (tr *Tree) Stop(t testing.TB) {
	if tr.stopped {
		return
	}
	tr.stopped = true
	if tr.cmd != nil {
		exec.Command(filepath.Join(Bin, "s6-svscanctl"), "-t", tr.Scandir).Run()
		select {
		case <-tr.done:
		case <-time.After(10 * time.Second):
			// Its children hold the output pipe open: kill them all, or
			// Wait never returns.
			tr.cmd.Process.Kill()
			for _, pid := range tr.Processes() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			<-tr.done
		}
	}
	// s6-supervise runs each service in its own session; find stragglers by
	// the marker in their environment and make sure none survive.
	if left := tr.Processes(); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if !Poll(5*time.Second, func() bool { return len(tr.Processes()) == 0 }) {
			t.Errorf("processes of the tree survived SIGKILL: %v", tr.Processes())
		}
	}
}

// Processes lists the pids whose environment carries this tree's marker.
func (tr *Tree) Processes() []int {
	want := []byte(marker + "=" + tr.Root + "\x00")
	return Pids(func(proc string) bool {
		env, err := os.ReadFile(filepath.Join(proc, "environ"))
		return err == nil && bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...))
	})
}

// Pids lists the live (non-zombie) processes but this one for which keep,
// given the process's /proc directory, reports true.
func Pids(keep func(proc string) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		if !keep(proc) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(proc, "stat")); err == nil && isZombie(st) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func fifoHasReader(p string) bool {
	fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers: the
// output of a process under test, read while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Snapshot records every path under dir (keyed relative to it) with its
// type, mode, owner and, for regular files, content; with times also its
// mtime and ctime. Comparing two snapshots proves a command changed
// nothing (times: not even rewrote a file with the same bytes).
func Snapshot(dir string, times bool) map[string]string {
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		v := fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
		if times {
			v += fmt.Sprintf(" %d %d", fi.ModTime().UnixNano(), st.Ctim.Nano())
		}
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		m[rel] = v
		return nil
	})
	return m
}

// OpenToAccounts makes the tree's directory and its parent (t.TempDir()s
// are 0700) traversable, so a service account in a test can reach the
// scandir, HERMES_HOME and the test binaries.
func (tr *Tree) OpenToAccounts(t testing.TB) {
	t.Helper()
	for _, d := range []string{filepath.Dir(tr.Root), tr.Root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds hermes-s6 and the stand-in gateway (once per test binary)
// and returns their paths.
func Binaries(t testing.TB) (hermesS6, standin string) {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		repo := filepath.Join(filepath.Dir(file), "..", "..")
		buildDir, buildErr = os.MkdirTemp("", "hermes-s6-test-bin-")
		if buildErr != nil {
			return
		}
		// Service accounts in tests must reach the binaries too.
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"hermes-s6", "./cmd/hermes-s6"}, {"hermes", "./tests/standin"}} {
			cmd := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", filepath.Join(buildDir, b.out), b.pkg)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "hermes-s6"), filepath.Join(buildDir, "hermes")
}

// Result is a finished hermes-s6 run.
type Result struct {
	Code           int
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Env is the environment hermes-s6 runs with against this tree: Debian's
// s6 tools, no service account (tests run as whoever runs them), plain sh.
func (tr *Tree) Env(t testing.TB) []string {
	_, standin := Binaries(t)
	return append(os.Environ(),
		"HERMES_S6_SCANDIR="+tr.Scandir,
		"HERMES_HOME="+tr.Home,
		"HERMES_S6_BIN="+Bin,
		"HERMES_S6_ACCOUNT=",
		"HERMES_S6_GATEWAY_BIN="+standin,
		"HERMES_S6_SHEBANG=#!/bin/sh",
		"HERMES_S6_FOREGROUND_RECORD="+filepath.Join(tr.Root, "foreground"),
		"HERMES_S6_RUNTIME_DIR="+filepath.Join(tr.Root, "runtime"),
	)
}

// Run runs hermes-s6 with args against the tree.
func (tr *Tree) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return tr.RunEnv(t, nil, args...)
}

// RunEnv is Run with extra environment entries appended.
func (tr *Tree) RunEnv(t testing.TB, extra []string, args ...string) Result {
	t.Helper()
	return tr.RunAs(t, -1, -1, extra, args...)
}

// RunAs is RunEnv as uid:gid (no supplementary groups); -1 keeps the
// caller's identity.
func (tr *Tree) RunAs(t testing.TB, uid, gid int, extra []string, args ...string) Result {
	t.Helper()
	bin, _ := Binaries(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(tr.Env(t), extra...)
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run hermes-s6 %s: %v", strings.Join(args, " "), err)
		}
		r.Code = ee.ExitCode()
	}
	return r
}

// MustRun is Run that fails the test unless hermes-s6 exits 0.
func (tr *Tree) MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	r := tr.Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("hermes-s6 %s: %s\ns6-svscan output:\n%s", strings.Join(args, " "), r, tr.Output())
	}
	return r
}
