package cli

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run hermes-s6 in-process as the command
// `hermes-s6` of each script.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hermes-s6": func() { os.Exit(Main(os.Args, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/*.txtar: the CLI contract as an
// operator sees it (arguments, exit codes, stdout, stderr, hints), one
// scenario per file. None needs an s6 tree.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exits CODE PROG ARGS…: run PROG (its stdout and stderr are kept
			// for the checks that follow) and require exit code CODE.
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits CODE PROG [ARGS…]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: %q is not an exit code", args[0])
				}
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("exits: %v", err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
		},
		Setup: func(env *testscript.Env) error {
			// Every run sees a known, empty world: no /command scripts, no
			// service account to resolve, the sandbox as HERMES_HOME.
			env.Setenv("HERMES_HOME", env.WorkDir+"/home")
			env.Setenv("HERMES_S6_SCANDIR", env.WorkDir+"/service")
			env.Setenv("HERMES_S6_ACCOUNT", "")
			env.Setenv("HERMES_S6_SHEBANG", "#!/bin/sh")
			return nil
		},
	})
}
