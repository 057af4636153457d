package s6

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// spawn runs the program at path with argv (argv[0] included), stdin on
// /dev/null, and returns what it wrote to stdout and stderr and its exit
// code (-1 when a signal ended it). When ctx ends first the program is
// killed with SIGKILL.
//
// Why not os/exec: every hermes-s6 command is a short-lived process whose
// cost is measured against the s6 tools it runs (make bench). os/exec's
// first start in a process probes pidfd support by cloning a throwaway
// child, and each start opens /dev/null and registers its pipes with the
// netpoller; together that is a few tenths of a millisecond per command on
// the machines this was measured on. A tool's output is a line or two, so
// plain blocking pipes do.
func spawn(ctx context.Context, path string, argv []string) (stdout, stderr []byte, code int, err error) {
	null, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, -1, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
	}
	defer syscall.Close(null)
	var out, errp [2]int
	if err := syscall.Pipe2(out[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, -1, os.NewSyscallError("pipe2", err)
	}
	defer closeAll(&out[0])
	if err := syscall.Pipe2(errp[:], syscall.O_CLOEXEC); err != nil {
		closeAll(&out[1])
		return nil, nil, -1, os.NewSyscallError("pipe2", err)
	}
	defer closeAll(&errp[0])

	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{uintptr(null), uintptr(out[1]), uintptr(errp[1])},
	})
	// The child has its copies (or never ran): the write ends must close
	// here, or the reads below would never see end of file.
	closeAll(&out[1])
	closeAll(&errp[1])
	if err != nil {
		return nil, nil, -1, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}

	// Kill on ctx, but never a recycled pid: the kill and the reap take
	// the same lock, and the child is reaped only after waitid (WNOWAIT)
	// has seen it exit, so until then pid is still this child's.
	var mu sync.Mutex
	reaped := false
	stopKill := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	defer stopKill()

	errc := make(chan []byte, 1)
	go func() { errc <- readAll(errp[0]) }()
	stdout = readAll(out[0])
	stderr = <-errc

	if err := waitExited(pid); err != nil {
		return stdout, stderr, -1, err
	}
	mu.Lock()
	reaped = true
	mu.Unlock()
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return stdout, stderr, -1, os.NewSyscallError("wait4", err)
	}
	if ws.Exited() {
		return stdout, stderr, ws.ExitStatus(), nil
	}
	return stdout, stderr, -1, nil
}

// waitExited blocks until pid has exited, leaving it unreaped (waitid with
// WNOWAIT), so that its pid cannot be reused yet.
func waitExited(pid int) error {
	const pPID = 1 // idtype_t P_PID
	var info [128]byte
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return os.NewSyscallError("waitid", e)
	}
}

// readAll reads fd to end of file. An error ends the read like end of
// file: the exit status says whether the tool succeeded.
func readAll(fd int) []byte {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if n > 0 {
			b = append(b, buf[:n]...)
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n <= 0 {
			return b
		}
	}
}

// closeAll closes *fd once: it is set to -1.
func closeAll(fd *int) {
	if *fd >= 0 {
		syscall.Close(*fd)
		*fd = -1
	}
}
