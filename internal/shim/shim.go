// Package shim is the container's CMD wrapper (docs/shim.md): `hermes-s6 shim --
// ARGS…` decides what the CMD becomes and then replaces itself with it, and
// `hermes-s6 entrypoint -- ARGS…` is the image's ENTRYPOINT that puts
// s6-overlay's /init in front of the shim.
//
// The decision is a pure function, Decide, of the arguments, the
// environment, the caller's uid and the service account:
//
//   - Refuse: the `docker run --user` guard. A uid that is neither root nor
//     the service account gets exit 1 and advice (HERMES_UID/HERMES_GID or
//     PUID/PGID remap the account instead).
//   - Exec: no arguments run `hermes`; a first argument that is an
//     executable on PATH runs as given; anything else runs as `hermes
//     ARGS…`.
//   - Redirect: `hermes … gateway run` under a detected s6 tree, with no
//     opt-out, starts the profile's slot gateway-P (desired state running)
//     and the CMD becomes `sleep infinity`, so the container stays up while
//     s6 supervises the gateway.
//   - Foreground: every other `gateway run` runs in the foreground as the
//     CMD (the pre-s6 behaviour), with `--no-supervise` removed; Reason
//     says why in one line.
//
// As root, every exec drops to the service account first (setgroups,
// setgid, setuid, HOME), and the shim process is replaced by the program
// (execve), so the program's exit code is the container's.
//
// The opt-outs, in the order they are checked: `--no-supervise` among the
// arguments; HERMES_GATEWAY_NO_SUPERVISE truthy (1, true, yes in any case);
// HERMES_S6_SUPERVISED_CHILD non-empty (the recursion guard: every slot's
// run script exports it); the entrypoint found it is not PID 1; arguments
// after `gateway run` that the slot cannot carry; no s6 detected
// ($HERMES_S6_PROC/1/comm is not s6-svscan, or $HERMES_S6_BASEDIR is not a
// directory; defaults /proc and /run/s6/basedir).
//
// Runner carries a Decision out; it is thin and replaceable in tests.
package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/cmdline"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
)

// Environment variables the shim reads.
const (
	EnvNoSupervise     = cmdline.NoSuperviseEnv
	EnvSupervisedChild = "HERMES_S6_SUPERVISED_CHILD"
	EnvProc            = "HERMES_S6_PROC"
	EnvBasedir         = "HERMES_S6_BASEDIR"
	EnvCmd             = cmdline.Env
	EnvInit            = "HERMES_S6_INIT"
)

// Defaults of the s6 detection roots and of /init.
const (
	DefaultProc    = "/proc"
	DefaultBasedir = "/run/s6/basedir"
	DefaultInit    = "/init"
)

// NoSuperviseFlag is the command-line opt-out; it is removed from the
// arguments of a gateway that runs in the foreground.
const NoSuperviseFlag = cmdline.NoSuperviseFlag

// Hold is what the CMD becomes after a redirect.
var Hold = []string{"sleep", "infinity"}

// Kind is what the CMD becomes.
type Kind int

const (
	Exec       Kind = iota + 1 // run Argv as the CMD
	Redirect                   // start Profile's slot, then run Hold
	Foreground                 // run the gateway (Argv) as the CMD, unsupervised
	Refuse                     // run nothing: Err says why
)

func (k Kind) String() string {
	switch k {
	case Exec:
		return "exec"
	case Redirect:
		return "redirect"
	case Foreground:
		return "foreground"
	case Refuse:
		return "refuse"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Decision is what the shim will do.
type Decision struct {
	Kind Kind
	// Argv is the program and its arguments, Argv[0] as named (looked up on
	// PATH when it has no slash). For Redirect it is Hold.
	Argv []string
	// Profile is the gateway profile (Redirect, Foreground).
	Profile string
	// Reason is one line saying why a gateway runs in the foreground; ""
	// when there is nothing to say. It never contains BreadcrumbPhrase.
	Reason string
	// Drop is the account to become before exec; nil keeps the caller's.
	Drop *account.Account
	// Err is the refusal (Refuse only), with hints.
	Err error
	// OptOut is set on a Foreground decision the operator chose
	// (--no-supervise, HERMES_GATEWAY_NO_SUPERVISE): boot reconcile
	// installed the profile's slot down, and the gateway holds its lease
	// (docs/scale-out.md).
	OptOut bool
}

// Input is everything Decide looks at.
type Input struct {
	Args []string
	// Getenv reads the environment; nil reads nothing.
	Getenv func(string) string
	UID    int
	// Account is the configured service account name ("" for none) and
	// Service its resolution (nil when "" or unknown to the user database).
	Account string
	Service *account.Account
	// Hermes is the gateway program (--hermes).
	Hermes string
	// LookPath reports whether a program is an executable on PATH; nil uses
	// exec.LookPath.
	LookPath func(string) (string, error)
	// NoRedirect, when set, forbids the redirect and says why (the
	// entrypoint is not PID 1).
	NoRedirect string
}

func (in Input) getenv(k string) string {
	if in.Getenv == nil {
		return ""
	}
	return in.Getenv(k)
}

// ErrUser is the `--user` guard's refusal.
var ErrUser = errors.New("refusing to run as this uid")

// Decide says what the CMD becomes. It reads the file system only to
// detect s6, and only for a `gateway run` that may be redirected.
func Decide(in Input) Decision {
	if err := guard(in); err != nil {
		return Decision{Kind: Refuse, Err: err}
	}
	var drop *account.Account
	if in.UID == 0 && in.Service != nil && in.Service.UID != 0 {
		drop = in.Service
	}
	prog, args, ok := hermesArgs(in)
	if !ok {
		return Decision{Kind: Exec, Argv: slices.Clone(in.Args), Drop: drop}
	}
	gr, ok := cmdline.ParseGatewayRun(args)
	if !ok {
		return Decision{Kind: Exec, Argv: append([]string{prog}, args...), Drop: drop}
	}
	p := gr.Profile
	fg := Decision{Kind: Foreground, Profile: p, Drop: drop, Argv: append([]string{prog}, without(args, NoSuperviseFlag)...)}
	why := func(format string, a ...any) Decision {
		fg.Reason = "gateway run stays in the foreground, unsupervised: " + fmt.Sprintf(format, a...)
		return fg
	}
	switch v := in.getenv(EnvNoSupervise); {
	case gr.NoSupervise:
		fg.OptOut = true
		return why("%s given", NoSuperviseFlag)
	case cmdline.Truthy(v):
		fg.OptOut = true
		return why("%s=%s", EnvNoSupervise, v)
	case in.getenv(EnvSupervisedChild) != "":
		return why("already inside its slot (%s is set)", EnvSupervisedChild)
	case in.NoRedirect != "":
		return why("%s", in.NoRedirect)
	case len(gr.Extra) > 0:
		return why("arguments %s cannot be carried into the supervised slot %s", quoteAll(gr.Extra), profile.SlotName(p))
	}
	if ok, why2 := DetectS6(rootOr(in.getenv(EnvProc), DefaultProc), rootOr(in.getenv(EnvBasedir), DefaultBasedir)); !ok {
		return why("%s", why2)
	}
	return Decision{Kind: Redirect, Profile: p, Argv: slices.Clone(Hold), Drop: drop}
}

// guard is the `docker run --user` check: only root and the service
// account may run the CMD. With no service account configured there is
// nothing to compare against and every uid passes.
func guard(in Input) error {
	if in.UID == 0 || in.Account == "" || (in.Service != nil && in.Service.UID == in.UID) {
		return nil
	}
	who := in.Account
	if in.Service != nil {
		who = fmt.Sprintf("%s (uid %d)", in.Account, in.Service.UID)
	} else {
		who += " (not in this image's user database)"
	}
	err := fmt.Errorf("%w %d: the container must start as root or as the service account %s", ErrUser, in.UID, who)
	// hint.Of lists the outermost first.
	err = hint.With(err, "to run the gateway as a different uid/gid, set HERMES_UID and HERMES_GID (or PUID and PGID) instead: the service account is remapped to them at boot")
	return hint.With(err, "do not use `docker run --user` (or a compose/k8s `user:`) with this image: the data volume's ownership and the s6 tree depend on the container starting as root")
}

// hermesArgs splits the CMD into the gateway program and its arguments.
// ok is false when the CMD is some other program on PATH. A CMD that starts
// with the hermes program (`hermes gateway run`) means what its arguments
// mean, as boot reconcile reads it (cmdline.HermesArgs).
func hermesArgs(in Input) (prog string, args []string, ok bool) {
	if len(in.Args) == 0 {
		return in.Hermes, nil, true
	}
	if rest := cmdline.HermesArgs(in.Args); len(rest) < len(in.Args) {
		return in.Args[0], slices.Clone(rest), true
	}
	lookPath := in.LookPath
	if lookPath == nil {
		lookPath = execLookPath
	}
	if first := in.Args[0]; first != "" {
		if _, err := lookPath(first); err == nil {
			return "", nil, false
		}
	}
	return in.Hermes, slices.Clone(in.Args), true
}

func without(args []string, drop string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a != drop {
			out = append(out, a)
		}
	}
	return out
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

func rootOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// DetectS6 reports whether s6 runs this container: procRoot/1/comm reads
// s6-svscan (s6-overlay v3 execs it as PID 1) and basedir is a directory.
// When it does not, why says what was found, in one line.
func DetectS6(procRoot, basedir string) (ok bool, why string) {
	commPath := filepath.Join(procRoot, "1", "comm")
	b, err := os.ReadFile(commPath)
	if err != nil {
		return false, fmt.Sprintf("s6 not detected (%v)", err)
	}
	if comm := strings.TrimSpace(string(b)); comm != "s6-svscan" {
		return false, fmt.Sprintf("s6 not detected (PID 1 is %q, not s6-svscan, per %s)", comm, commPath)
	}
	if fi, err := os.Stat(basedir); err != nil || !fi.IsDir() {
		return false, fmt.Sprintf("s6 not detected (%s is not a directory)", basedir)
	}
	return true, ""
}
