package s6

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Shell runs the s6-svstat loops of Statuses. It is not an s6 tool: a
// POSIX sh, the one every slot's scripts already run with.
var Shell = "/bin/sh"

// batchMin is the fewest slots a shell loop of Statuses is started for:
// below 2×batchMin supervised slots (batchMin on one CPU) the s6-svstat
// runs start from hermes-s6, a few at a time, which costs less than a
// shell or two on top.
const batchMin = 8

// statusWorkers bounds the s6-svstat runs Statuses has going at once for a
// few slots.
const statusWorkers = 4

// batchScript runs `$1 -o StatusFields DIR` for every DIR after $1 and
// ends each one's output with a record separator (\036) and its exit code,
// so that one tool's failure (its stderr is on stdout) is told apart from
// the next one's answer.
const batchScript = `t=$1
shift
for d do
  "$t" -o ` + StatusFields + ` "$d" 2>&1
  printf '\036%d\n' "$?"
done`

// Statuses reads the state of many service directories, each with the
// s6-svstat that Status runs and with the same results, in dirs' order.
// errs[i] is dir i's error, as Status would have returned it.
//
// Every s6-svstat is a process, and what it costs to start one from Go
// (Go's fork and exec reset every signal handler in the child one system
// call at a time, and a process blocked on its children keeps the
// runtime's sysmon thread waking every 20 µs) is close to what the tool
// itself costs. A POSIX shell starts them for a fraction of that. So for
// more than a few slots the supervised ones are split into one shell loop
// per CPU (GOMAXPROCS), run side by side: a whole tree costs what a
// shell loop over it costs, divided among the CPUs (make bench, rows 5).
func (t Tools) Statuses(ctx context.Context, dirs []string) ([]Status, []error) {
	sts := make([]Status, len(dirs))
	errs := make([]error, len(dirs))
	// Unsupervised directories are answered here, as Status answers them.
	var todo []int
	for i, d := range dirs {
		if ok, err := Supervised(d); err != nil || !ok {
			sts[i], errs[i] = t.Status(ctx, d)
			continue
		}
		todo = append(todo, i)
	}
	procs := runtime.GOMAXPROCS(0)
	shells := min(procs, len(todo)/batchMin)
	if shells < min(2, procs) {
		sem := make(chan struct{}, statusWorkers)
		var wg sync.WaitGroup
		for _, i := range todo {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				sts[i], errs[i] = t.Status(ctx, dirs[i])
			}()
		}
		wg.Wait()
		return sts, errs
	}
	tool, err := t.Path("s6-svstat")
	if err != nil {
		for _, i := range todo {
			sts[i], errs[i] = Status{PID: -1, ExitCode: -1}, err
		}
		return sts, errs
	}
	var wg sync.WaitGroup
	for k := range shells {
		part := todo[k*len(todo)/shells : (k+1)*len(todo)/shells]
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.batch(ctx, tool, dirs, part, sts, errs)
		}()
	}
	wg.Wait()
	return sts, errs
}

// batch runs one shell loop over dirs[i] for i in part and fills sts[i]
// and errs[i].
func (t Tools) batch(ctx context.Context, tool string, dirs []string, part []int, sts []Status, errs []error) {
	argv := []string{Shell, "-c", batchScript, "sh", tool}
	for _, i := range part {
		argv = append(argv, dirs[i])
	}
	// Each s6-svstat gets the deadline Status would give it.
	ctx, cancel := context.WithTimeout(ctx, grace+time.Duration(len(part))*grace/10)
	defer cancel()
	exec := t.Exec
	if exec == nil {
		exec = func(ctx context.Context, argv []string) ([]byte, []byte, int, error) {
			return spawn(ctx, argv[0], argv)
		}
	}
	out, stderr, code, err := exec(ctx, argv)
	for _, i := range part {
		one := []string{tool, "-o", StatusFields, dirs[i]}
		rec, rest, ok := bytes.Cut(out, []byte("\036"))
		n, line, _ := bytes.Cut(rest, []byte("\n"))
		rc, cerr := strconv.Atoi(string(n))
		if !ok || cerr != nil {
			// The shell did not get to it: say why.
			ee := &ExitError{Argv: argv[:5], Code: code, Stderr: string(stderr)}
			switch {
			case err != nil:
				ee.Stderr = err.Error()
			case ctx.Err() != nil:
				ee.Cause = context.Cause(ctx)
			case code == 0:
				ee.Code, ee.Stderr = -1, fmt.Sprintf("no answer for %s", dirs[i])
			}
			sts[i], errs[i] = Status{PID: -1, ExitCode: -1}, ee
			continue
		}
		out = line
		if rc != 0 {
			sts[i], errs[i] = Status{PID: -1, ExitCode: -1}, &ExitError{Argv: one, Code: rc, Stderr: string(rec)}
			continue
		}
		// A warning before the answer is stderr: the answer is the last line.
		rec = bytes.TrimRight(rec, "\n")
		if j := bytes.LastIndexByte(rec, '\n'); j >= 0 {
			rec = rec[j+1:]
		}
		st, perr := ParseStatus(string(rec))
		if perr != nil {
			sts[i], errs[i] = Status{PID: -1, ExitCode: -1}, fmt.Errorf("s6-svstat %s: %w", dirs[i], perr)
			continue
		}
		st.Supervised = true
		sts[i], errs[i] = st, nil
	}
}
