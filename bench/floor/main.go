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
//
// With -jN first, it runs at most N of them at a time, in order, and
// copies their output in order once all are done: a Go program that only
// runs one s6-svstat per slot of a tree, N at a time.
package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

func main() {
	args := os.Args[1:]
	jobs := 0
	if len(args) > 0 && strings.HasPrefix(args[0], "-j") {
		jobs, _ = strconv.Atoi(args[0][2:])
		args = args[1:]
	}
	var progs [][]string
	start := 0
	for i := 0; i <= len(args); i++ {
		if i == len(args) || args[i] == "--" {
			if i > start {
				progs = append(progs, args[start:i])
			}
			start = i + 1
		}
	}
	if jobs > 0 {
		os.Exit(limited(progs, jobs))
	}
	pids := make([]int, len(progs))
	outs := make([]int, len(progs))
	for i, argv := range progs {
		pid, fd := spawn(argv)
		pids[i], outs[i] = pid, fd
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
		if !reap(pid) {
			code = 1
		}
	}
	os.Exit(code)
}

// spawn starts argv with its stdout on a pipe, whose read end it returns.
func spawn(argv []string) (pid, fd int) {
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
	return pid, p[0]
}

// reap waits for pid and reports whether it exited 0.
func reap(pid int) bool {
	var ws syscall.WaitStatus
	_, err := syscall.Wait4(pid, &ws, 0, nil)
	return err == nil && ws.ExitStatus() == 0
}

// limited runs progs at most jobs at a time and prints their output in
// order.
func limited(progs [][]string, jobs int) int {
	outs := make([][]byte, len(progs))
	ok := make([]bool, len(progs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := range next {
				pid, fd := spawn(progs[i])
				for {
					n, err := syscall.Read(fd, buf)
					if n <= 0 || err != nil {
						break
					}
					outs[i] = append(outs[i], buf[:n]...)
				}
				syscall.Close(fd)
				ok[i] = reap(pid)
			}
		}()
	}
	for i := range progs {
		next <- i
	}
	close(next)
	wg.Wait()
	code := 0
	for i := range progs {
		os.Stdout.Write(outs[i])
		if !ok[i] {
			code = 1
		}
	}
	return code
}
