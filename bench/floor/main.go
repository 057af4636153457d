// Command floor is the benchmark's floor, built static like hermes-s6
// (CGO_ENABLED=0, -trimpath, -s -w).
//
// Without arguments it does nothing: what any Go command costs on the
// machine, fork+exec to exit, before doing any work.
//
// With arguments it runs them as one program and copies that program's
// stdout to its own, with nothing else: no flags, no checks, no other
// work. Given `s6-svstat -o … SLOT` it is the least a Go status command
// that runs the real s6-svstat (SPEC §7) can cost.
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		return
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		os.Exit(111)
	}
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, uintptr(p[1]), 2},
	})
	if err != nil {
		os.Exit(111)
	}
	syscall.Close(p[1])
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(p[0], buf)
		if n <= 0 || err != nil {
			break
		}
		os.Stdout.Write(buf[:n])
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		os.Exit(1)
	}
}
