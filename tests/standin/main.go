// Command hermes-standin is the test tree's stand-in for the Python `hermes`
// gateway, which cannot be installed here. It behaves like hermes where
// hermes-s6 cares and nowhere else:
//
//	hermes [-p P | --profile P] gateway run [--replace] [--no-supervise]
//	    prints "⚕ Hermes Gateway Starting…" on stdout, a log line on stderr,
//	    then runs until SIGTERM/SIGINT, when it logs a line containing
//	    "shutting down" on stderr, drains (see below), logs
//	    "gateway P: last line, exit 0" and exits 0.
//	hermes dashboard [--host H] [--port P] [--no-open]
//	    serves HTTP 200 on / until SIGTERM; with "mute" in $HERMES_HOME/standin/dashboard.mode
//	    (or HERMES_STANDIN_DASHBOARD) it runs but serves nothing.
//
// Tests steer it without re-rendering slots:
//
//	$HERMES_HOME/standin/<profile>.exit  (or $HERMES_STANDIN_EXIT)
//	    a number N: exit N right after the banner; "crash": die by SIGSEGV;
//	    "hold": log SIGTERM/SIGINT but keep running (only SIGKILL ends it).
//	$HERMES_STANDIN_LINES=N  write N numbered lines to stdout, then idle.
//	$HERMES_HOME/standin/<profile>.drain  (or $HERMES_STANDIN_DRAIN)
//	    a Go duration: after SIGTERM, keep draining that long, logging
//	    "gateway P: draining, step i/n" every 250 ms, before the last line.
//
// Every start appends "<pid> <profile>" to $HERMES_HOME/standin/starts.log
// (when that directory exists) so tests can count starts.
package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const banner = "⚕ Hermes Gateway Starting…"

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	profile := "default"
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "-p" || a == "--profile") && i+1 < len(args):
			profile = args[i+1]
			i++
		case strings.HasPrefix(a, "--profile="):
			profile = strings.TrimPrefix(a, "--profile=")
		default:
			rest = append(rest, a)
		}
	}
	switch {
	case len(rest) >= 2 && rest[0] == "gateway" && rest[1] == "run":
		return gateway(profile, rest[2:])
	case len(rest) >= 1 && rest[0] == "dashboard":
		return dashboard(rest[1:])
	case len(rest) >= 1 && rest[0] == "--version":
		fmt.Println("hermes-standin 0 (test stand-in)")
		return 0
	}
	fmt.Fprintf(os.Stderr, "hermes-standin: unsupported arguments %q\n", args)
	return 2
}

func home() string {
	if h := os.Getenv("HERMES_HOME"); h != "" {
		return h
	}
	return "/opt/data"
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "hermes-standin: "+format+"\n", a...)
}

func recordStart(profile string) {
	f, err := os.OpenFile(filepath.Join(home(), "standin", "starts.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), profile)
	f.Close()
}

// plan is a test's instruction for profile: the file
// $HERMES_HOME/standin/<profile>.<kind>, else the environment variable.
func plan(profile, kind, env string) string {
	if b, err := os.ReadFile(filepath.Join(home(), "standin", profile+"."+kind)); err == nil {
		return strings.TrimSpace(string(b))
	}
	return os.Getenv(env)
}

func exitPlan(profile string) string { return plan(profile, "exit", "HERMES_STANDIN_EXIT") }

// drainStep is how often a draining gateway says it is still at it.
const drainStep = 250 * time.Millisecond

// drain takes the time the drain plan asks for, logging as it goes, as a
// gateway finishing its conversations would.
func drain(profile string) {
	v := plan(profile, "drain", "HERMES_STANDIN_DRAIN")
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		logf("bad drain plan %q", v)
		return
	}
	n := int(d / drainStep)
	for i := 1; i <= n; i++ {
		time.Sleep(drainStep)
		logf("gateway %s: draining, step %d/%d", profile, i, n)
	}
}

func gateway(profile string, flags []string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	recordStart(profile)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, banner)
	out.Flush()
	logf("gateway profile=%s pid=%d uid=%d flags=%q supervised_child=%q", profile, os.Getpid(), os.Getuid(), flags, os.Getenv("HERMES_S6_SUPERVISED_CHILD"))
	switch plan := exitPlan(profile); plan {
	case "":
	case "hold":
		for s := range sigs {
			logf("received %s, holding on", s)
		}
	case "crash":
		logf("crashing on request")
		syscall.Kill(os.Getpid(), syscall.SIGSEGV)
		select {}
	default:
		code, err := strconv.Atoi(plan)
		if err != nil {
			logf("bad exit plan %q", plan)
			return 2
		}
		logf("exiting %d on request", code)
		return code
	}
	if n, err := strconv.Atoi(os.Getenv("HERMES_STANDIN_LINES")); err == nil {
		for i := 1; i <= n; i++ {
			fmt.Fprintf(out, "line %d\n", i)
		}
		out.Flush()
		logf("wrote %d lines", n)
	}
	s := <-sigs
	logf("received %s, shutting down", s)
	drain(profile)
	logf("gateway %s: last line, exit 0", profile)
	return 0
}

func dashboard(flags []string) int {
	host, port := "127.0.0.1", "9119"
	for i := 0; i+1 < len(flags); i++ {
		switch flags[i] {
		case "--host":
			host = flags[i+1]
		case "--port":
			port = flags[i+1]
		}
	}
	if plan("dashboard", "mode", "HERMES_STANDIN_DASHBOARD") == "mute" {
		// Runs, but serves nothing: readiness never comes.
		fmt.Println("Hermes dashboard starting (stand-in, mute: serving nothing)")
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		logf("dashboard received %s, shutting down", <-sigs)
		return 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		logf("dashboard: %v", err)
		return 1
	}
	fmt.Printf("Hermes dashboard on http://%s\n", ln.Addr())
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hermes dashboard (stand-in)")
	}))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s := <-sigs
	logf("dashboard received %s, shutting down", s)
	return 0
}
