package shim

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
)

// fakeRunner records what a Runner would do instead of doing it.
type fakeRunner struct {
	*Runner
	stderr  bytes.Buffer
	started []string
	execs   [][]string // path, then argv
	execEnv []string
	became  []*account.Account
	held    bool
}

// executed is panicked by the fake exec on success: a real exec never
// returns, so neither may the fake.
type executed struct{}

func newFakeRunner(startErr, execErr error) *fakeRunner {
	f := &fakeRunner{}
	f.Runner = &Runner{
		Stderr: &f.stderr,
		Env:    []string{"PATH=/fake/bin", "HOME=/root"},
		Start: func(_ context.Context, p string) error {
			f.started = append(f.started, p)
			return startErr
		},
		LogDir:   func(p string) string { return profile.Layout{Home: "/opt/data"}.LogDir(p) },
		lookPath: fakeLookPath,
		exec: func(path string, argv, env []string) error {
			f.execs = append(f.execs, append([]string{path}, argv...))
			f.execEnv = env
			if execErr != nil {
				return execErr
			}
			panic(executed{})
		},
		become: func(a *account.Account) (string, error) {
			f.became = append(f.became, a)
			return "/home/" + a.Name, nil
		},
		hold: func(ready func()) int {
			f.held = true
			ready()
			return 143
		},
	}
	return f
}

// run carries d out; a successful exec returns nil.
func (f *fakeRunner) run(t *testing.T, d Decision) error {
	t.Helper()
	return catchExec(func() error { return f.Run(context.Background(), d) })
}

func catchExec(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(executed); !ok {
				panic(r)
			}
			err = nil
		}
	}()
	err = fn()
	if err == nil {
		err = errors.New("returned nil without exec")
	}
	return err
}

func TestRunRedirect(t *testing.T) {
	f := newFakeRunner(nil, nil)
	if err := f.run(t, Decision{Kind: Redirect, Profile: "coder", Argv: Hold, Drop: svc}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"coder"}, f.started); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"/fake/bin/sleep", "sleep", "infinity"}}, f.execs); diff != "" {
		t.Errorf("the CMD must become `sleep infinity` (-want +got):\n%s", diff)
	}
	if len(f.became) != 1 || f.became[0] != svc {
		t.Errorf("want one drop to the service account, got %v", f.became)
	}
	if !slices.Contains(f.execEnv, "HOME=/home/hermes") || slices.Contains(f.execEnv, "HOME=/root") {
		t.Errorf("HOME must follow the dropped account: %q", f.execEnv)
	}
	if got, want := f.stderr.String(), Breadcrumb("coder", "/opt/data/logs/gateways/coder"); got != want {
		t.Errorf("stderr: want the breadcrumb only\nwant:\n%s\ngot:\n%s", want, got)
	}
	if f.held {
		t.Error("held in-process although sleep ran")
	}
}

func TestBreadcrumb(t *testing.T) {
	for _, p := range []string{"default", "coder"} {
		b := Breadcrumb(p, "/opt/data/logs/gateways/"+p)
		for _, want := range []string{
			"s6 supervision", "--no-supervise", "HERMES_GATEWAY_NO_SUPERVISE",
			"gateway-" + p, "docker logs", "/opt/data/logs/gateways/" + p + "/current",
			"$HERMES_HOME/logs/gateways/" + p + "/current",
		} {
			if !strings.Contains(b, want) {
				t.Errorf("breadcrumb for %s lacks %q:\n%s", p, want, b)
			}
		}
		for _, l := range strings.Split(strings.TrimSuffix(b, "\n"), "\n") {
			if !strings.HasPrefix(l, "hermes-s6: ") {
				t.Errorf("breadcrumb line without the program prefix: %q", l)
			}
		}
	}
	if b := Breadcrumb("coder", "/x"); !strings.Contains(b, "-p coder gateway run --no-supervise") {
		t.Errorf("a named profile's opt-out must show its own command line:\n%s", b)
	}
}

func TestRunRedirectStartFails(t *testing.T) {
	cause := hint.With(errors.New("no s6 supervision tree at /run/service"), "start s6-svscan")
	f := newFakeRunner(cause, nil)
	err := f.run(t, Decision{Kind: Redirect, Profile: "default", Argv: Hold})
	if !errors.Is(err, cause) {
		t.Fatalf("want the start error wrapped, got %v", err)
	}
	if len(f.execs) != 0 || f.held || f.stderr.Len() != 0 {
		t.Fatalf("a failed start must not hold the container nor leave the breadcrumb: execs %v held %v stderr %q", f.execs, f.held, f.stderr.String())
	}
	hints := strings.Join(hint.Of(err), "\n")
	for _, want := range []string{"--no-supervise", "HERMES_GATEWAY_NO_SUPERVISE=1", "start s6-svscan"} {
		if !strings.Contains(hints, want) {
			t.Errorf("hints lack %q:\n%s", want, hints)
		}
	}
	if !strings.Contains(err.Error(), "gateway-default") || !strings.Contains(err.Error(), "no gateway runs") {
		t.Errorf("error must say which slot failed and what that means: %v", err)
	}
}

// A profile another container's selection runs: nothing starts here, the
// container is held all the same, and one line says why instead of the
// breadcrumb (which would claim a slot that does not exist).
func TestRunRedirectNotHere(t *testing.T) {
	why := "shard 1/3 runs it; this is shard 0/3 (HERMES_S6_SHARD=0/3)"
	f := newFakeRunner(&NotHereError{Profile: "default", Why: why, Selection: "every profile, shard 0/3"}, nil)
	if err := f.run(t, Decision{Kind: Redirect, Profile: "default", Argv: Hold, Drop: svc}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"/fake/bin/sleep", "sleep", "infinity"}}, f.execs); diff != "" {
		t.Errorf("the CMD must still become `sleep infinity` (-want +got):\n%s", diff)
	}
	got := f.stderr.String()
	if strings.Contains(got, BreadcrumbPhrase) || !strings.Contains(got, why) || !strings.Contains(got, "profile default is not supervised in this container") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr: want one line naming the owner and no breadcrumb, got:\n%s", got)
	}
}

func TestRunRedirectHoldsWithoutSleep(t *testing.T) {
	for _, tc := range []struct {
		name     string
		onPath   bool
		execErr  error
		wantExec int
	}{
		{"sleep not on PATH", false, nil, 0},
		{"sleep does not exec", true, syscall.EACCES, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRunner(nil, tc.execErr)
			if !tc.onPath {
				f.lookPath = func(string) (string, error) { return "", errors.New("not found") }
			}
			err := f.Run(context.Background(), Decision{Kind: Redirect, Profile: "default", Argv: Hold})
			var ex Exit
			if !errors.As(err, &ex) || ex != 143 {
				t.Fatalf("want Exit(143) from the hold, got %v", err)
			}
			if !f.held || len(f.execs) != tc.wantExec {
				t.Fatalf("held %v execs %v", f.held, f.execs)
			}
			out := f.stderr.String()
			if !strings.HasPrefix(out, Breadcrumb("default", "/opt/data/logs/gateways/default")) || !strings.Contains(out, "waiting for SIGTERM") {
				t.Fatalf("want the breadcrumb, then the waiting notice:\n%s", out)
			}
		})
	}
}

func TestRunForeground(t *testing.T) {
	d := Decision{Kind: Foreground, Profile: "default", Argv: []string{"hermes", "gateway", "run"}, Reason: "gateway run stays in the foreground, unsupervised: because"}
	withHermes := func(name string) (string, error) {
		if name == "hermes" {
			return "/fake/bin/hermes", nil
		}
		return fakeLookPath(name)
	}

	f := newFakeRunner(nil, nil)
	f.lookPath = withHermes
	if err := f.run(t, d); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"/fake/bin/hermes", "hermes", "gateway", "run"}}, f.execs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := f.stderr.String(); got != "hermes-s6: "+d.Reason+"\n" {
		t.Errorf("want the reason in one line, got %q", got)
	}
	if len(f.started) != 0 || len(f.became) != 0 {
		t.Errorf("foreground must not start a slot (%v) nor drop without Drop (%v)", f.started, f.became)
	}
	if diff := cmp.Diff(f.Env, f.execEnv); diff != "" {
		t.Errorf("environment changed without a drop (-want +got):\n%s", diff)
	}

	f = newFakeRunner(nil, nil)
	f.lookPath = withHermes
	f.Quiet = true
	if err := f.run(t, d); err != nil {
		t.Fatal(err)
	}
	if f.stderr.Len() != 0 {
		t.Errorf("Quiet must leave the reason unsaid, got %q", f.stderr.String())
	}
}

func TestRunExecFailures(t *testing.T) {
	type exitCoder interface{ ExitCode() int }
	f := newFakeRunner(nil, nil)
	err := f.run(t, Decision{Kind: Exec, Argv: []string{"hermes", "--version"}})
	var ec exitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 127 {
		t.Fatalf("a missing program: want exit 127, got %v", err)
	}
	if want := `cannot run "hermes": executable file not found in $PATH`; err.Error() != want {
		t.Errorf("message: want %q, got %q", want, err.Error())
	}
	if len(hint.Of(err)) == 0 || len(f.execs) != 0 {
		t.Errorf("want a hint and no exec: %v %v", hint.Of(err), f.execs)
	}

	f = newFakeRunner(nil, syscall.EACCES)
	err = f.run(t, Decision{Kind: Exec, Argv: []string{"sh"}})
	if !errors.As(err, &ec) || ec.ExitCode() != 126 || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("an exec failure: want exit 126 wrapping the errno, got %v", err)
	}

	refusal := errors.New("refused")
	f = newFakeRunner(nil, nil)
	if err := f.run(t, Decision{Kind: Refuse, Err: refusal}); err != refusal || len(f.execs) != 0 {
		t.Fatalf("refuse: want the refusal and no exec, got %v %v", err, f.execs)
	}
}

func TestExecInit(t *testing.T) {
	f := newFakeRunner(nil, nil)
	argv := InitArgv("/init", "", "/usr/local/bin/hermes-s6", []string{"gateway", "run"})
	if err := catchExec(func() error { return f.ExecInit(argv) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{append([]string{"/init"}, argv...)}, f.execs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(f.became) != 0 {
		t.Error("/init must run as the caller")
	}
	type exitCoder interface{ ExitCode() int }
	var ec exitCoder
	f = newFakeRunner(nil, syscall.ENOENT)
	if err := f.ExecInit(argv); !errors.As(err, &ec) || ec.ExitCode() != 127 || !strings.Contains(err.Error(), "/init") {
		t.Fatalf("missing /init: want exit 127 naming it, got %v", err)
	}
}
