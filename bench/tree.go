package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// marker is set in s6-svscan's environment, so inherited by every process
// of a tree: stopping a tree finds stragglers by it.
const marker = "HERMES_S6_BENCH_TREE"

// tree is a running s6-svscan on a scandir.
type tree struct {
	scandir string
	s6bin   string
	id      string
	cmd     *exec.Cmd
	done    chan struct{}
	out     *os.File
}

var (
	treesMu sync.Mutex
	trees   = map[*tree]bool{}
	treeSeq int
)

// startTree starts s6-svscan (default flags: up to 1000 supervisors, i.e.
// 500 logged slots) on a fresh scandir and waits until it listens.
func startTree(s6bin, scandir string) (*tree, error) {
	if err := os.RemoveAll(scandir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scandir, 0o755); err != nil {
		return nil, err
	}
	out, err := os.Create(scandir + ".out")
	if err != nil {
		return nil, err
	}
	treesMu.Lock()
	treeSeq++
	id := fmt.Sprintf("%d-%d", os.Getpid(), treeSeq)
	treesMu.Unlock()
	t := &tree{scandir: scandir, s6bin: s6bin, id: id, out: out, done: make(chan struct{})}
	t.cmd = exec.Command(filepath.Join(s6bin, "s6-svscan"), scandir)
	t.cmd.Env = append(cleanEnv(), marker+"="+id, "PATH="+s6bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	t.cmd.Stdout, t.cmd.Stderr = out, out
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := t.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start s6-svscan: %w", err)
	}
	go func() { t.cmd.Wait(); close(t.done) }()
	treesMu.Lock()
	trees[t] = true
	treesMu.Unlock()
	if !pollUntil(10*time.Second, time.Millisecond, func() bool {
		return listening(filepath.Join(scandir, ".s6-svscan", "control"))
	}) {
		t.stop()
		return nil, fmt.Errorf("s6-svscan did not listen on %s within 10s", scandir)
	}
	return t, nil
}

// output is what s6-svscan and its children wrote (the "container stdout").
func (t *tree) output() string {
	b, _ := os.ReadFile(t.out.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop brings the tree down (s6-svscanctl -t), kills any straggler found
// by the marker, and removes the scandir.
func (t *tree) stop() {
	treesMu.Lock()
	live := trees[t]
	delete(trees, t)
	treesMu.Unlock()
	if !live {
		return
	}
	exec.Command(filepath.Join(t.s6bin, "s6-svscanctl"), "-t", t.scandir).Run()
	select {
	case <-t.done:
	case <-time.After(30 * time.Second):
		t.cmd.Process.Kill()
		<-t.done
	}
	if !pollUntil(5*time.Second, 10*time.Millisecond, func() bool { return len(markedProcesses(t.id)) == 0 }) {
		for _, pid := range markedProcesses(t.id) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		pollUntil(5*time.Second, 10*time.Millisecond, func() bool { return len(markedProcesses(t.id)) == 0 })
	}
	t.out.Close()
	os.Remove(t.out.Name())
	os.RemoveAll(t.scandir)
}

func stopAllTrees() {
	treesMu.Lock()
	var ts []*tree
	for t := range trees {
		ts = append(ts, t)
	}
	treesMu.Unlock()
	for _, t := range ts {
		t.stop()
	}
}

// markedProcesses lists live (non-zombie) pids carrying the tree's marker.
func markedProcesses(id string) []int {
	want := []byte("\x00" + marker + "=" + id + "\x00")
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), want) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// listening reports whether a process has the FIFO at p open for reading:
// s6's own liveness test (an O_NONBLOCK open for writing fails with ENXIO
// when nobody reads).
func listening(p string) bool {
	fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// writeFIFO writes s on a FIFO that a process reads (s6-svscanctl's way).
func writeFIFO(p, s string) error {
	fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	if _, err := syscall.Write(fd, []byte(s)); err != nil {
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

// supervised reports whether s6-supervise runs for the service dir.
func supervised(dir string) bool { return listening(filepath.Join(dir, "supervise", "control")) }

// upPID reads the pid of dir's service from s6-supervise's status file, 0
// when down or unknown. The pid is the big-endian uint64 at byte 24 in
// every s6 since 2.10 (35 bytes in 2.11, 43 from 2.13 on).
func upPID(dir string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil || len(b) < 32 {
		return 0
	}
	return binary.BigEndian.Uint64(b[24:32])
}

// pollUntil calls cond every interval until it holds (true) or timeout
// passes (false).
func pollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

var errTimeout = errors.New("timed out")
