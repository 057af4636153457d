package drain

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/proc"
)

func TestCapped(t *testing.T) {
	for _, tc := range []struct {
		timeout  time.Duration
		finishMS int
		want     time.Duration
		cut      bool
	}{
		{8 * time.Second, 0, 8 * time.Second, false},
		{8 * time.Second, -1, 8 * time.Second, false},
		{8 * time.Second, 20000, 8 * time.Second, false},
		{8 * time.Second, 9500, 8 * time.Second, false},
		{8 * time.Second, 5000, 3500 * time.Millisecond, true},
		{8 * time.Second, 1000, 0, true},
	} {
		got, cut := Capped(tc.timeout, tc.finishMS)
		if got != tc.want || cut != tc.cut {
			t.Errorf("Capped(%s, %d) = %s, %t; want %s, %t", tc.timeout, tc.finishMS, got, cut, tc.want, tc.cut)
		}
	}
}

// The record names the process that wrote it, and is read back as alive.
func TestRecordThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "foreground")
	if err := Record(path); err != nil {
		t.Fatal(err)
	}
	p, err := readForeground(path)
	if err != nil || p == nil || p.pid != os.Getpid() {
		t.Fatalf("readForeground: %+v, %v; want this process", p, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("record mode: %v %v", fi, err)
	}
}

// A record whose start time does not match (a recycled pid) names no one.
func TestRecordOfRecycledPid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreground")
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+" 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := readForeground(path); p != nil || err != nil {
		t.Fatalf("a record with another start time: %+v, %v; want none, no error", p, err)
	}
}

// Whatever sits at the record's path, reading it never follows a link,
// never blocks, never reads more than a line.
func TestReadForegroundRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	own := strconv.Itoa(os.Getpid())
	start, err := proc.StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte(own+" "+start+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("1 2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, big, garbage, dir} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if p, err := readForeground(path); p != nil || err == nil {
				t.Errorf("%s: %+v, %v; want refused with an error", filepath.Base(path), p, err)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: readForeground blocked", filepath.Base(path))
		}
	}
	if p, err := readForeground(filepath.Join(dir, "missing")); p != nil || err != nil {
		t.Fatalf("no record: %+v, %v; want none, no error", p, err)
	}
}

// Unread sees what waits in a process's stdin pipe without taking it.
func TestUnread(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if n, err := Unread(cmd.Process.Pid); err != nil || n != 0 {
		t.Fatalf("empty pipe: %d, %v", n, err)
	}
	if _, err := w.Write([]byte("twelve bytes")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // reading twice shows nothing was taken
		if n, err := Unread(cmd.Process.Pid); err != nil || n != 12 {
			t.Fatalf("after a 12-byte write: %d, %v", n, err)
		}
	}
}

// The foreground process gets SIGTERM and is waited for; one that ignores
// it is still alive at the deadline.
func TestProcessSignalAndWait(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill() })
	start, err := proc.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{pid: cmd.Process.Pid, start: start}
	if !p.alive() {
		t.Fatal("a running process reads as gone")
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.waitGone(context.Background(), time.Now().Add(10*time.Second)) {
		t.Fatal("sleep did not end on SIGTERM")
	}
	<-exited
	if err := p.signal(syscall.SIGTERM); err != os.ErrProcessDone {
		t.Fatalf("signalling an ended process: %v, want ErrProcessDone", err)
	}
}
