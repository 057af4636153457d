package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// childEnv marks the harness re-executed under its own mini init.
const childEnv = "HERMES_S6_BENCH_CHILD"

// initMain runs when the harness is PID 1 of a fresh PID namespace
// (scripts/bench.sh: unshare --pid --fork --mount-proc). It re-executes
// itself as its only child and reaps every orphan the s6 trees leave
// behind, as an init must. When it returns, the kernel kills whatever is
// left in the namespace: nothing the benchmark started can outlive it.
func initMain() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hermes-s6-bench: error: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "hermes-s6-bench: error: %v\n", err)
		return 1
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 1
		}
		if pid != cmd.Process.Pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// workspace is where the benchmark's trees and homes live.
type workspace struct {
	root    string // on disk: homes (HERMES_HOME is a volume in the image)
	scan    string // on tmpfs: scandirs (s6-overlay's /run/service is tmpfs)
	scanFS  string // how scan came to be on tmpfs, for the report
	mounted bool
	homeDir string // parent of the HERMES_HOMEs
}

const tmpfsMagic = 0x01021994

func isTmpfs(p string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(p, &st) == nil && st.Type == tmpfsMagic
}

func newWorkspace(cfg *config) (*workspace, error) {
	root, err := os.MkdirTemp(os.Getenv("TMPDIR"), "hermes-s6-bench.")
	if err != nil {
		return nil, err
	}
	ws := &workspace{root: root}
	ws.scan = filepath.Join(root, "run")
	if err := os.Mkdir(ws.scan, 0o755); err != nil {
		return nil, err
	}
	switch {
	case os.Getenv(childEnv) != "" && syscall.Mount("tmpfs", ws.scan, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=1g") == nil:
		ws.mounted, ws.scanFS = true, "a private tmpfs"
	case isTmpfs("/dev/shm"):
		os.Remove(ws.scan)
		if ws.scan, err = os.MkdirTemp("/dev/shm", "hermes-s6-bench."); err != nil {
			return nil, err
		}
		ws.scanFS = "tmpfs (/dev/shm)"
	case isTmpfs(ws.scan):
		ws.scanFS = "tmpfs (" + root + ")"
	default:
		ws.scanFS = "DISK (no tmpfs available: expect slower, noisier registration)"
	}
	ws.homeDir = filepath.Join(root, "home")
	if cfg.homeOnTmpfs {
		ws.homeDir = filepath.Join(ws.scan, "home")
	}
	if err := os.MkdirAll(ws.homeDir, 0o755); err != nil {
		return nil, err
	}
	return ws, nil
}

// freshDir returns a fresh, empty directory for name under base.
func freshDir(base, name string) (string, error) {
	p := filepath.Join(base, name)
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	return p, os.MkdirAll(p, 0o755)
}

func (ws *workspace) close() {
	stopAllTrees()
	if ws.mounted {
		syscall.Unmount(ws.scan, syscall.MNT_DETACH)
	} else if strings.HasPrefix(ws.scan, "/dev/shm/") {
		os.RemoveAll(ws.scan)
	}
	os.RemoveAll(ws.root)
}
