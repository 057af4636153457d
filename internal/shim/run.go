package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
)

// BreadcrumbPhrase is in the redirect's breadcrumb and in no other message
// the shim prints on a path that runs a program, so "did the redirect
// fire?" is one grep of the logs. (A failed redirect's error may quote s6's
// "no s6 supervision tree"; that path runs nothing.)
const BreadcrumbPhrase = "s6 supervision"

// Exit ends the shim with a code after it has said all it had to.
type Exit int

func (e Exit) Error() string { return "exit " + strconv.Itoa(int(e)) }

// codeError is a failure with its own exit code (126, 127: the shell's
// codes for "cannot execute" and "not found", which docker uses too).
type codeError struct {
	code int
	err  error
}

func (c *codeError) Error() string { return c.err.Error() }
func (c *codeError) Unwrap() error { return c.err }
func (c *codeError) ExitCode() int { return c.code }

// Runner carries a Decision out. Its exported fields are set by the CLI;
// the rest are seams for tests.
type Runner struct {
	Stderr io.Writer
	// Env is the environment the program gets.
	Env []string
	// Start registers the profile's slot when it has none and starts it
	// (desired state running), waiting until the gateway is up.
	Start func(ctx context.Context, profile string) error
	// LogDir is the directory of the profile's rotated gateway log.
	LogDir func(profile string) string
	// Quiet leaves a Foreground decision's reason unsaid (the caller has
	// already warned).
	Quiet bool
	// Record, when set, notes this process as the foreground gateway just
	// before it becomes one, so the stop drain can give it SIGTERM first
	// (internal/drain). A failure is said and the gateway runs anyway.
	Record func() error
	// Lease, when set, waits until this container holds the foreground
	// profile's lease and returns the command to put in front of the
	// gateway so that it holds the gateway lock (docs/scale-out.md); nil
	// words when there is no slot to hold the lease.
	Lease func(ctx context.Context, profile string) ([]string, error)

	lookPath func(string) (string, error)
	exec     func(path string, argv, env []string) error
	become   func(*account.Account) (home string, err error)
	hold     func(ready func()) int
}

func (r *Runner) seams() {
	if r.lookPath == nil {
		r.lookPath = execLookPath
	}
	if r.exec == nil {
		r.exec = syscall.Exec
	}
	if r.become == nil {
		r.become = become
	}
	if r.hold == nil {
		r.hold = holdUntilSignal
	}
}

func execLookPath(name string) (string, error) { return exec.LookPath(name) }

// Run carries d out. On success it does not return: the process has become
// the program. An error is the reason it could not.
func (r *Runner) Run(ctx context.Context, d Decision) error {
	r.seams()
	switch d.Kind {
	case Refuse:
		return d.Err
	case Exec:
		return r.execAs(d.Argv, d.Drop)
	case Foreground:
		if d.Reason != "" && !r.Quiet {
			fmt.Fprintf(r.Stderr, "hermes-s6: %s\n", d.Reason)
		}
		argv := d.Argv
		if r.Lease != nil && d.OptOut {
			pre, err := r.Lease(ctx, d.Profile)
			if err != nil {
				return err
			}
			argv = append(pre, argv...)
		}
		if r.Record != nil {
			if err := r.Record(); err != nil {
				fmt.Fprintf(r.Stderr, "hermes-s6: warning: the stop drain will not know this gateway (%v): on `docker stop` it gets only S6_KILL_GRACETIME\n", err)
			}
		}
		return r.execAs(argv, d.Drop)
	case Redirect:
		return r.redirect(ctx, d)
	}
	return fmt.Errorf("shim: unknown decision %v", d.Kind)
}

// NotHere is Start's answer for a profile that this container's selection
// (HERMES_S6_PROFILES, shards: docs/scale-out.md) gives to another
// container: the redirect then starts nothing here and only holds the
// container, which supervises the profiles that are its own.
type NotHere struct {
	Profile string
	Why     string // e.g. "shard 1/3 runs it; this is shard 0/3 (…)"
}

func (e *NotHere) Error() string {
	return "profile " + e.Profile + " is not this container's: " + e.Why
}

// redirect starts the profile's slot, leaves the breadcrumb and becomes
// `sleep infinity`; when sleep cannot run it holds the container in-process
// until SIGTERM (exit 143) or SIGINT (exit 130). A profile another
// container runs (NotHere) is said in one line instead of the breadcrumb.
func (r *Runner) redirect(ctx context.Context, d Decision) error {
	slot := profile.SlotName(d.Profile)
	var notHere *NotHere
	switch err := r.Start(ctx, d.Profile); {
	case errors.As(err, &notHere):
		fmt.Fprintf(r.Stderr, "hermes-s6: gateway run: %v; no slot %s here, this container supervises its own profiles (docs/scale-out.md)\n", notHere, slot)
	case err != nil:
		err = fmt.Errorf("gateway run: the supervised slot %s did not start, so no gateway runs: %w", slot, err)
		return hint.With(err, "to run the gateway unsupervised in the foreground instead, add "+NoSuperviseFlag+" or set "+EnvNoSupervise+"=1")
	default:
		fmt.Fprint(r.Stderr, Breadcrumb(d.Profile, r.LogDir(d.Profile)))
	}
	err := r.execAs(d.Argv, d.Drop)
	code := r.hold(func() {
		fmt.Fprintf(r.Stderr, "hermes-s6: cannot run `%s` (%v): holding the container open in this process instead; waiting for SIGTERM\n", strings.Join(d.Argv, " "), err)
	})
	return Exit(code)
}

// Breadcrumb is what the redirect says on stderr (docker logs): where the
// gateway went, where its output goes, and how to get the old behaviour.
func Breadcrumb(p, logDir string) string {
	slot := profile.SlotName(p)
	invocation := "gateway run"
	if p != profile.Default {
		invocation = "-p " + p + " gateway run"
	}
	lines := []string{
		fmt.Sprintf("`%s` now runs under %s, as slot %s: s6 restarts the gateway when it dies, and a container restart brings it back.", invocation, BreadcrumbPhrase, slot),
		fmt.Sprintf("its output goes to `docker logs` and to %s/current ($HERMES_HOME/logs/gateways/%s/current).", logDir, p),
		fmt.Sprintf("this process only keeps the container up (sleep infinity); see the gateway with `hermes-s6 status --profile %s`.", p),
		fmt.Sprintf("to run the gateway in the foreground as before, unsupervised: add %s (`%s %s`) or set %s=1.", NoSuperviseFlag, invocation, NoSuperviseFlag, EnvNoSupervise),
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("hermes-s6: " + l + "\n")
	}
	return b.String()
}

// execAs replaces the process with argv, as account a when a is not nil.
func (r *Runner) execAs(argv []string, a *account.Account) error {
	path, err := r.lookPath(argv[0])
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err // without exec.Error's repetition of the name
		}
		return &codeError{127, hint.With(fmt.Errorf("cannot run %q: %w", argv[0], err),
			"the gateway program is set with --hermes / HERMES_S6_GATEWAY_BIN; any other program must be on PATH")}
	}
	env := r.Env
	if a != nil {
		home, err := r.become(a)
		if err != nil {
			return fmt.Errorf("cannot drop privileges to %s: %w", a.Name, err)
		}
		if home != "" {
			env = setenv(env, "HOME", home)
		}
	}
	if err := r.exec(path, argv, env); err != nil {
		return &codeError{126, fmt.Errorf("exec %s: %w", path, err)}
	}
	return nil
}

// ExecInit replaces the process with argv (s6-overlay's /init and its
// arguments), unchanged and as the caller.
func (r *Runner) ExecInit(argv []string) error {
	r.seams()
	if err := r.exec(argv[0], argv, r.Env); err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		return &codeError{code, hint.With(fmt.Errorf("exec %s: %w", argv[0], err),
			"the image's /init is s6-overlay's (set "+EnvInit+" to another path)")}
	}
	return nil
}

// become drops the process to account a: its groups, gid, uid. It returns
// a's home directory for HOME ("" when unknown). Go applies the three calls
// to every thread of the process (Go ≥ 1.16).
func become(a *account.Account) (string, error) {
	groups := a.GroupList()
	if err := syscall.Setgroups(groups); err != nil {
		return "", fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(a.GID); err != nil {
		return "", fmt.Errorf("setgid %d: %w", a.GID, err)
	}
	if err := syscall.Setuid(a.UID); err != nil {
		return "", fmt.Errorf("setuid %d: %w", a.UID, err)
	}
	return a.Home, nil
}

// holdUntilSignal blocks until SIGTERM or SIGINT and returns 128+signal,
// the exit code of a process killed by it. ready runs once the signals are
// caught, so whoever waits for its message can signal at once.
func holdUntilSignal(ready func()) int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(ch)
	ready()
	s := <-ch
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 143
}

func setenv(env []string, k, v string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, k+"=") {
			out = append(out, kv)
		}
	}
	return append(out, k+"="+v)
}
