// Command floor is the benchmark's floor, built static like hermes-s6
// (CGO_ENABLED=0, -trimpath, -s -w).
//
// Without arguments it does nothing: what any Go command costs on the
// machine, fork+exec to exit, before doing any work.
//
// With arguments it runs them as programs separated by "--", all at once,
// copies their stdout to its own and waits for all of them, with nothing
// else: no flags, no checks, no other work. Given `s6-svstat -o … SLOT` it
// is the least a Go status command that runs the real s6-svstat (README: Commands; docs/lifecycle.md)
// can cost; given `s6-svwait -u … SLOT -- s6-svc -u SLOT` the least a Go
// start that runs the real s6-svc and waits with the real s6-svwait can.
package main

import (
	"os"
	"syscall"
)

func main() {
	var progs [][]string
	start := 1
	for i := 1; i <= len(os.Args); i++ {
		if i == len(os.Args) || os.Args[i] == "--" {
			if i > start {
				progs = append(progs, os.Args[start:i])
			}
			start = i + 1
		}
	}
	pids := make([]int, len(progs))
	outs := make([]int, len(progs))
	for i, argv := range progs {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			os.Exit(111)
		}
		pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
			Env:   os.Environ(),
			Files: []uintptr{0, uintptr(p[1]), 2},
		})
		if err != nil {
			os.Exit(111)
		}
		syscall.Close(p[1])
		pids[i], outs[i] = pid, p[0]
	}
	buf := make([]byte, 4096)
	for _, fd := range outs {
		for {
			n, err := syscall.Read(fd, buf)
			if n <= 0 || err != nil {
				break
			}
			os.Stdout.Write(buf[:n])
		}
	}
	code := 0
	for _, pid := range pids {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			code = 1
		}
	}
	os.Exit(code)
}
