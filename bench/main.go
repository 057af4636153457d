// Command hermes-s6-bench is `make bench`: side-by-side benchmarks of
// hermes-s6 against what it replaces, on a real s6 tree (Debian's
// s6-svscan on a tmpfs scandir, like s6-overlay's /run/service).
//
// Every benchmark runs both sides in the same process, interleaved
// (A B, B A, A B, …, after discarded warm-up runs), and reports each side's
// median and spread (p10–p90) and the ratio of the medians, with the p10–p90
// of the per-pair ratios as the ratio's spread. The machine is expected to
// be noisy and small: the ratios are the result, absolute times are context.
//
//	1a/1b  `hermes-s6 status --profile P` (whole process, fork+exec of the
//	       static binary), slot down and running, vs 1g, a Go program that
//	       only runs the same `s6-svstat -o up,wantedup,…` (bench/floor).
//	       Target: ≤ 1.25× its cost. 1c/1d: the same against a bare
//	       s6-svstat; 1f/1g: the floors against it; 1h: 1g linked with
//	       every package hermes-s6 links, against 1g; 1v: `hermes-s6
//	       version` against the empty Go program (start-up alone).
//	2      registering one slot, until s6-supervise listens on it, vs
//	       bench/baseline/register.sh (POSIX sh + s6 tools doing the same
//	       work, byte-identical files). Target: ≥ 2× faster.
//	3      `hermes-s6 start` + `hermes-s6 stop` vs `s6-svc -u -wu` +
//	       `s6-svc -d -wD` on the same slot (stand-in gateway). Target:
//	       ≤ 1.3× the cost.
//	4a–4d  `hermes-s6 reconcile` (when the command exists) on a fresh tree
//	       with 100 profiles, half desired running, vs
//	       bench/baseline/reconcile.sh: every slot supervised ≥ 10× faster,
//	       every wanted slot up ≥ 2× faster; 400 profiles cost ≤ 4.4× 100;
//	       an unchanged second run writes nothing, restarts nothing and
//	       costs ≤ 0.1× the first.
//	5a/5b  `hermes-s6 health` and `hermes-s6 status` (every slot) on a tree
//	       of 400 profiles booted by `hermes-s6 reconcile` (half desired
//	       running and up, half stopped), vs bench/baseline/status.sh, a
//	       POSIX sh loop of one `s6-svstat -o …` per slot on the same tree.
//	       Target: ≤ 1× its wall time. 5f: bench/floor running every
//	       slot's s6-svstat at once, against the same loop; 5g: that loop
//	       dealt out to one sh loop per CPU, side by side.
//
// A target that is missed prints FAIL; the exit status stays 0 unless
// BENCH_STRICT=1. A benchmark that cannot run (a command fails) prints
// ERROR and the exit status is 1.
//
// Run as root through scripts/bench.sh, the harness lives in a private PID
// and mount namespace (`unshare --pid --fork --mount-proc`): it mounts its
// own tmpfs for the scandirs and, as PID 1 there, takes every process it
// started down with it. Otherwise it uses /dev/shm and cleans up by marker.
//
// Environment: BENCH_STRICT=1 (exit 1 on FAIL), BENCH_QUICK=1 (fewer
// iterations), BENCH_ONLY=status,register,cycle,reconcile,health (a subset),
// BENCH_HOME=disk|tmpfs (where HERMES_HOME lives; default disk, like the
// container's data volume), BENCH_ROUNDS=N (reconcile rounds, default 6).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getpid() == 1 && os.Getenv(childEnv) == "" {
		os.Exit(initMain())
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the command line and the environment ask for.
type config struct {
	hermesS6, standin, baseline, s6bin string
	floor, floorLinked                 string
	only                               map[string]bool
	quick, strict                      bool
	homeOnTmpfs                        bool
	rounds                             int
}

func (c *config) want(name string) bool { return len(c.only) == 0 || c.only[name] }

// scale shrinks iteration counts in quick mode.
func (c *config) scale(n int) int {
	if c.quick {
		return max(3, n/5)
	}
	return n
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("hermes-s6-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.StringVar(&c.hermesS6, "hermes-s6", "bin/hermes-s6", "the hermes-s6 binary under test")
	fs.StringVar(&c.standin, "standin", "bin/hermes-standin", "the stand-in gateway")
	fs.StringVar(&c.baseline, "baseline", "bench/baseline", "directory of the POSIX sh baselines")
	fs.StringVar(&c.s6bin, "s6-bin", "/usr/bin", "directory of the s6 tools")
	fs.StringVar(&c.floor, "floor", "bin/hermes-s6-bench-floor", "an empty static Go program (bench/floor)")
	fs.StringVar(&c.floorLinked, "floor-linked", "bin/hermes-s6-bench-floor-linked", "bench/floor built with -tags benchlinked: hermes-s6's packages linked in")
	only := fs.String("only", os.Getenv("BENCH_ONLY"), "comma-separated subset: status,register,cycle,reconcile,health")
	fs.BoolVar(&c.quick, "quick", truthy(os.Getenv("BENCH_QUICK")), "fewer iterations")
	fs.BoolVar(&c.strict, "strict", truthy(os.Getenv("BENCH_STRICT")), "exit 1 when a target is missed")
	home := fs.String("home", envOr("BENCH_HOME", "disk"), "where HERMES_HOME lives: disk or tmpfs")
	fs.IntVar(&c.rounds, "rounds", 0, "reconcile rounds (default 6, 2 with -quick; $BENCH_ROUNDS)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		switch s {
		case "status", "register", "cycle", "reconcile", "health":
			c.only[s] = true
		default:
			return nil, fmt.Errorf("BENCH_ONLY: unknown benchmark %q (want status, register, cycle, reconcile, health)", s)
		}
	}
	switch *home {
	case "disk":
	case "tmpfs":
		c.homeOnTmpfs = true
	default:
		return nil, fmt.Errorf("BENCH_HOME %q: want disk or tmpfs", *home)
	}
	if c.rounds == 0 {
		c.rounds = 6
		if c.quick {
			c.rounds = 2
		}
		if v := os.Getenv("BENCH_ROUNDS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("BENCH_ROUNDS %q: want a positive number", v)
			}
			c.rounds = n
		}
	}
	for _, p := range []*string{&c.hermesS6, &c.standin, &c.baseline, &c.floor, &c.floorLinked} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("%w (run `make bench`, which builds bin/ first)", err)
		}
		*p = abs
	}
	for _, tool := range []string{"s6-svscan", "s6-svscanctl", "s6-svstat", "s6-svc", "s6-svok"} {
		if _, err := os.Stat(filepath.Join(c.s6bin, tool)); err != nil {
			return nil, fmt.Errorf("%s/%s: %w (apt-get install s6 execline)", c.s6bin, tool, err)
		}
	}
	return c, nil
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes":
		return true
	}
	return false
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "hermes-s6-bench: error: %v\n", err)
		return 2
	}
	// The harness allocates little; keep its GC out of the measurements.
	debug.SetGCPercent(400)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ws, err := newWorkspace(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hermes-s6-bench: error: %v\n", err)
		return 1
	}
	defer ws.close()

	b := &bench{cfg: cfg, ws: ws, log: stderr}
	fmt.Fprintf(stdout, "hermes-s6 benchmarks: %s\n", b.describe())
	fmt.Fprintln(stderr, "hermes-s6-bench: running (progress on stderr; the table follows on stdout)")

	start := time.Now()
	var rows []row
	for _, bm := range []struct {
		name string
		run  func(context.Context) []row
	}{
		{"status", b.status},
		{"register", b.register},
		{"cycle", b.cycle},
		{"reconcile", b.reconcile},
		{"health", b.fleet},
	} {
		if !cfg.want(bm.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t := time.Now()
		rows = append(rows, bm.run(ctx)...)
		b.progress("%s done in %s", bm.name, time.Since(t).Round(time.Millisecond))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "hermes-s6-bench: interrupted")
		return 130
	}
	printTable(stdout, rows)
	fmt.Fprintf(stdout, "\ntotal %s\n", time.Since(start).Round(time.Second))

	code := 0
	for _, r := range rows {
		switch r.verdict() {
		case verdictError:
			code = 1
		case verdictFail:
			if cfg.strict && code == 0 {
				code = 1
			}
		}
	}
	return code
}

// bench holds what every benchmark needs.
type bench struct {
	cfg *config
	ws  *workspace
	log io.Writer
}

func (b *bench) progress(format string, a ...any) {
	fmt.Fprintf(b.log, "  · "+format+"\n", a...)
}

func (b *bench) describe() string {
	var uts syscall.Utsname
	kernel := "?"
	if syscall.Uname(&uts) == nil {
		kernel = cstr(uts.Release[:])
	}
	home := "disk"
	if b.cfg.homeOnTmpfs {
		home = "tmpfs"
	}
	return fmt.Sprintf("%s; Linux %s, %d CPUs, %s; s6 %s; scandir on %s, HERMES_HOME on %s%s",
		hermesVersion(b.cfg.hermesS6), kernel, runtime.NumCPU(), runtime.Version(), s6Version(),
		b.ws.scanFS, home, map[bool]string{true: "; quick mode", false: ""}[b.cfg.quick])
}

func cstr(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}
