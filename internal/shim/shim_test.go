package shim

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/hint"
)

var svc = &account.Account{Name: "hermes", UID: 10000, GID: 10000}

// onPath is the fake PATH of every Decide test.
var onPath = map[string]bool{"sh": true, "hermes-s6": true, "sleep": true, "/bin/true": true}

func fakeLookPath(name string) (string, error) {
	if onPath[name] {
		return "/fake/bin/" + filepath.Base(name), nil
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// roots makes s6 detection roots: a proc dir whose 1/comm says comm (none
// when comm is "") and, when basedir, an s6 basedir directory.
func roots(t *testing.T, comm string, basedir bool) (proc, base string) {
	t.Helper()
	dir := t.TempDir()
	proc, base = filepath.Join(dir, "proc"), filepath.Join(dir, "basedir")
	if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if comm != "" {
		if err := os.WriteFile(filepath.Join(proc, "1", "comm"), []byte(comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if basedir {
		if err := os.Mkdir(base, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return proc, base
}

// input is a root caller under a detected s6 tree with env on top.
func input(t *testing.T, args []string, env map[string]string) Input {
	t.Helper()
	proc, base := roots(t, "s6-svscan", true)
	e := map[string]string{EnvProc: proc, EnvBasedir: base}
	for k, v := range env {
		e[k] = v
	}
	return Input{
		Args:     args,
		Getenv:   func(k string) string { return e[k] },
		UID:      0,
		Account:  "hermes",
		Service:  svc,
		Hermes:   "hermes",
		LookPath: fakeLookPath,
	}
}

// checkDecision compares the parts of a decision a case pins down.
func checkDecision(t *testing.T, got Decision, kind Kind, argv []string, prof string) {
	t.Helper()
	if got.Kind != kind {
		t.Fatalf("kind: want %v, got %v (%+v)", kind, got.Kind, got)
	}
	if diff := cmp.Diff(argv, got.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if got.Profile != prof {
		t.Errorf("profile: want %q, got %q", prof, got.Profile)
	}
	if strings.Contains(got.Reason, BreadcrumbPhrase) {
		t.Errorf("reason %q contains the breadcrumb phrase %q: the redirect would look as if it fired", got.Reason, BreadcrumbPhrase)
	}
	if kind == Foreground && strings.Contains(got.Reason, "\n") {
		t.Errorf("reason must be one line, got %q", got.Reason)
	}
}

func TestDecideRouting(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kind Kind
		argv []string
		prof string
	}{
		{"no args run hermes", nil, Exec, []string{"hermes"}, ""},
		{"program on PATH", []string{"sh", "-c", "exit 3"}, Exec, []string{"sh", "-c", "exit 3"}, ""},
		{"hermes-s6 itself", []string{"hermes-s6", "version"}, Exec, []string{"hermes-s6", "version"}, ""},
		{"absolute path", []string{"/bin/true"}, Exec, []string{"/bin/true"}, ""},
		{"hermes flag", []string{"--version"}, Exec, []string{"hermes", "--version"}, ""},
		{"hermes subcommand", []string{"dashboard", "--port", "9"}, Exec, []string{"hermes", "dashboard", "--port", "9"}, ""},
		{"gateway status is no gateway run", []string{"gateway", "status"}, Exec, []string{"hermes", "gateway", "status"}, ""},
		{"bare gateway", []string{"gateway"}, Exec, []string{"hermes", "gateway"}, ""},
		{"explicit hermes, no args", []string{"hermes"}, Exec, []string{"hermes"}, ""},
		{"gateway run", []string{"gateway", "run"}, Redirect, Hold, "default"},
		{"with --replace", []string{"gateway", "run", "--replace"}, Redirect, Hold, "default"},
		{"-p before gateway", []string{"-p", "coder", "gateway", "run"}, Redirect, Hold, "coder"},
		{"--profile after run", []string{"gateway", "run", "--profile", "coder", "--replace"}, Redirect, Hold, "coder"},
		{"--profile= before gateway", []string{"--profile=coder", "gateway", "run"}, Redirect, Hold, "coder"},
		{"hermes gateway run", []string{"hermes", "gateway", "run"}, Redirect, Hold, "default"},
		{"path to hermes", []string{"/usr/local/bin/hermes", "-p", "ops", "gateway", "run"}, Redirect, Hold, "ops"},
		{"extra argument", []string{"gateway", "run", "--verbose"}, Foreground, []string{"hermes", "gateway", "run", "--verbose"}, "default"},
		{"path to hermes, opted out", []string{"/usr/local/bin/hermes", "gateway", "run", "--no-supervise"}, Foreground, []string{"/usr/local/bin/hermes", "gateway", "run"}, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(input(t, tc.args, nil))
			checkDecision(t, d, tc.kind, tc.argv, tc.prof)
			if d.Drop != svc {
				t.Errorf("root must drop to the service account, got %+v", d.Drop)
			}
		})
	}
}

func TestDecideExtraArgumentsSaySo(t *testing.T) {
	d := Decide(input(t, []string{"-p", "coder", "gateway", "run", "--verbose", "--replace", "x y"}, nil))
	checkDecision(t, d, Foreground, []string{"hermes", "-p", "coder", "gateway", "run", "--verbose", "--replace", "x y"}, "coder")
	for _, want := range []string{`"--verbose" "x y"`, "cannot be carried", "gateway-coder"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason lacks %q: %q", want, d.Reason)
		}
	}
}

func TestDecideNoSuperviseFlag(t *testing.T) {
	for _, args := range [][]string{
		{"gateway", "run", "--no-supervise"},
		{"--no-supervise", "gateway", "run"},
		{"gateway", "run", "--no-supervise", "--replace", "--no-supervise"},
	} {
		d := Decide(input(t, args, nil))
		checkDecision(t, d, Foreground, without(append([]string{"hermes"}, args...), "--no-supervise"), "default")
		if !strings.Contains(d.Reason, "--no-supervise given") {
			t.Errorf("%q: reason %q", args, d.Reason)
		}
	}
	// The flag wins over extra arguments: it is what the operator asked for.
	d := Decide(input(t, []string{"gateway", "run", "--no-supervise", "--verbose"}, nil))
	checkDecision(t, d, Foreground, []string{"hermes", "gateway", "run", "--verbose"}, "default")
	if !strings.Contains(d.Reason, "--no-supervise given") {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestDecideNoSuperviseEnv(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", "True", "yes", "Yes", "YES"} {
		d := Decide(input(t, []string{"gateway", "run"}, map[string]string{EnvNoSupervise: v}))
		checkDecision(t, d, Foreground, []string{"hermes", "gateway", "run"}, "default")
		if !strings.Contains(d.Reason, EnvNoSupervise+"="+v) {
			t.Errorf("%s=%s: reason %q", EnvNoSupervise, v, d.Reason)
		}
	}
	for _, v := range []string{"", "0", "false", "no", "off", "n", "garbage", "2", "yess"} {
		d := Decide(input(t, []string{"gateway", "run"}, map[string]string{EnvNoSupervise: v}))
		checkDecision(t, d, Redirect, Hold, "default")
	}
}

func TestDecideSupervisedChildDoesNotRecurse(t *testing.T) {
	d := Decide(input(t, []string{"gateway", "run", "--replace"}, map[string]string{EnvSupervisedChild: "1"}))
	checkDecision(t, d, Foreground, []string{"hermes", "gateway", "run", "--replace"}, "default")
	if !strings.Contains(d.Reason, EnvSupervisedChild) {
		t.Errorf("reason %q", d.Reason)
	}
	// Any non-empty value is the sentinel; empty is no sentinel.
	checkDecision(t, Decide(input(t, []string{"gateway", "run"}, map[string]string{EnvSupervisedChild: "0"})), Foreground, []string{"hermes", "gateway", "run"}, "default")
	checkDecision(t, Decide(input(t, []string{"gateway", "run"}, map[string]string{EnvSupervisedChild: ""})), Redirect, Hold, "default")
}

func TestDecideWithoutS6RunsInForeground(t *testing.T) {
	for _, tc := range []struct {
		name    string
		comm    string
		basedir bool
		want    string
	}{
		{"another PID 1", "tini", true, `PID 1 is "tini"`},
		{"no comm", "", true, "no such file"},
		{"no basedir", "s6-svscan", false, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t, []string{"gateway", "run", "--no-supervise"}, nil)
			in.Args = []string{"gateway", "run"}
			proc, base := roots(t, tc.comm, tc.basedir)
			env := map[string]string{EnvProc: proc, EnvBasedir: base}
			in.Getenv = func(k string) string { return env[k] }
			d := Decide(in)
			checkDecision(t, d, Foreground, []string{"hermes", "gateway", "run"}, "default")
			if !strings.Contains(d.Reason, "s6 not detected") || !strings.Contains(d.Reason, tc.want) {
				t.Errorf("reason %q lacks %q", d.Reason, tc.want)
			}
		})
	}
	// A basedir that is a file is no basedir.
	in := input(t, []string{"gateway", "run"}, nil)
	proc, base := roots(t, "s6-svscan", false)
	if err := os.WriteFile(base, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvProc: proc, EnvBasedir: base}
	in.Getenv = func(k string) string { return env[k] }
	checkDecision(t, Decide(in), Foreground, []string{"hermes", "gateway", "run"}, "default")
}

func TestDecideNoRedirect(t *testing.T) {
	in := input(t, []string{"gateway", "run"}, nil)
	in.NoRedirect = NotPID1Reason
	d := Decide(in)
	checkDecision(t, d, Foreground, []string{"hermes", "gateway", "run"}, "default")
	if !strings.Contains(d.Reason, NotPID1Reason) {
		t.Errorf("reason %q", d.Reason)
	}
	// Everything else routes as usual.
	in.Args = []string{"sh", "-c", "true"}
	checkDecision(t, Decide(in), Exec, []string{"sh", "-c", "true"}, "")
}

func TestDecideUserGuard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		uid     int
		account string
		service *account.Account
		refuse  bool
		drop    *account.Account
	}{
		{"root drops", 0, "hermes", svc, false, svc},
		{"service account runs as itself", 10000, "hermes", svc, false, nil},
		{"other uid refused", 1000, "hermes", svc, true, nil},
		{"other uid, account unknown, refused", 1000, "hermes", nil, true, nil},
		{"no service account: any uid", 1000, "", nil, false, nil},
		{"root service account: no drop", 0, "root", &account.Account{Name: "root"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t, []string{"gateway", "run"}, nil)
			in.UID, in.Account, in.Service = tc.uid, tc.account, tc.service
			d := Decide(in)
			if !tc.refuse {
				if d.Kind != Redirect || d.Drop != tc.drop {
					t.Fatalf("want redirect dropping to %+v, got %+v", tc.drop, d)
				}
				return
			}
			if d.Kind != Refuse || !errors.Is(d.Err, ErrUser) || d.Argv != nil {
				t.Fatalf("want a refusal, got %+v", d)
			}
			all := d.Err.Error() + "\n" + strings.Join(hint.Of(d.Err), "\n")
			for _, want := range []string{"uid 1000", "--user", "HERMES_UID", "HERMES_GID", "PUID", "PGID"} {
				if !strings.Contains(all, want) {
					t.Errorf("refusal lacks %q:\n%s", want, all)
				}
			}
		})
	}
	// The guard comes before routing: no program runs, not even one on PATH.
	in := input(t, []string{"sh", "-c", "true"}, nil)
	in.UID = 1000
	if d := Decide(in); d.Kind != Refuse {
		t.Fatalf("want refuse, got %+v", d)
	}
}

func TestDetectS6(t *testing.T) {
	proc, base := roots(t, "s6-svscan", true)
	if ok, why := DetectS6(proc, base); !ok || why != "" {
		t.Fatalf("want detected, got %v %q", ok, why)
	}
	// comm without its newline is read the same.
	if err := os.WriteFile(filepath.Join(proc, "1", "comm"), []byte("s6-svscan"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, _ := DetectS6(proc, base); !ok {
		t.Fatal("comm without newline: want detected")
	}
	// A prefix is not a match (comm is truncated to 15 bytes; s6-svscan fits).
	if err := os.WriteFile(filepath.Join(proc, "1", "comm"), []byte("s6-svscanctl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, why := DetectS6(proc, base); ok || !strings.Contains(why, `"s6-svscanctl"`) {
		t.Fatalf("want not detected naming the comm, got %v %q", ok, why)
	}
}

func TestCmdJSON(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `[]`},
		{[]string{}, `[]`},
		{[]string{"gateway", "run"}, `["gateway","run"]`},
		{[]string{"sh", "-c", `echo "a b" 'c'`}, `["sh","-c","echo \"a b\" 'c'"]`},
		{[]string{"⚕", "<>&"}, `["⚕","\u003c\u003e\u0026"]`},
	} {
		if got := CmdJSON(tc.args); got != tc.want {
			t.Errorf("CmdJSON(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestInitArgv(t *testing.T) {
	args := []string{"-p", "coder", "gateway", "run"}
	got := InitArgv("/init", "", "/usr/local/bin/hermes-s6", args)
	want := []string{"/init", "/usr/local/bin/hermes-s6", "shim", "--", "-p", "coder", "gateway", "run"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// Under s6-overlay the shim runs through with-contenv to see the
	// container environment.
	withEnv := InitArgv("/init", "/command/with-contenv", "/usr/local/bin/hermes-s6", args)
	want = append([]string{"/init", "/command/with-contenv"}, want[1:]...)
	if diff := cmp.Diff(want, withEnv); diff != "" {
		t.Fatalf("with-contenv (-want +got):\n%s", diff)
	}
	got[4] = "changed"
	if args[0] != "-p" {
		t.Fatal("InitArgv must not alias its input")
	}
	if strings.Contains(NotPID1, BreadcrumbPhrase) || strings.Contains(NotPID1Reason, BreadcrumbPhrase) || strings.Contains(NotPID1, "\n") {
		t.Fatalf("the not-PID-1 warning must be one line without %q", BreadcrumbPhrase)
	}
}
