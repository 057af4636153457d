// Package cmdline reads a container's CMD the way both of its readers must
// agree on: the exec shim (docs/shim.md), which decides whether `gateway run`
// becomes a supervised slot, and boot reconcile (docs/reconcile.md), which migrates a
// legacy `gateway run` container to desired state running and recognises a
// dashboard container. If the two disagreed, a container could end up with
// a supervised gateway and a foreground one, or with none.
//
// The CMD is a list of hermes arguments (`gateway run`, `dashboard …`). A CMD
// that starts with the hermes program itself (`hermes gateway run`,
// `/usr/local/bin/hermes dashboard`) means the same: HermesArgs drops it.
package cmdline

import (
	"path"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/profile"
)

// NoSuperviseFlag opts one `gateway run` out of supervision (docs/shim.md).
const NoSuperviseFlag = "--no-supervise"

// NoSuperviseEnv, when truthy, opts every `gateway run` out of supervision.
const NoSuperviseEnv = "HERMES_GATEWAY_NO_SUPERVISE"

// Env holds the container's CMD as a JSON array of strings: the entrypoint
// exports it before it execs /init, and s6-overlay hands it on to boot
// reconcile and doctor through the container environment.
const Env = "HERMES_S6_CMD"

// Truthy reports whether an environment value switches something on:
// 1, true or yes in any case, ignoring surrounding blanks.
func Truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// HermesArgs returns the hermes arguments of a CMD: the CMD itself, or the
// CMD without its first word when that word is the hermes program (`hermes`
// or a path whose last element is `hermes`).
func HermesArgs(cmd []string) []string {
	if len(cmd) > 0 && path.Base(cmd[0]) == "hermes" {
		return cmd[1:]
	}
	return cmd
}

// IsDashboard reports whether a CMD runs the dashboard (`dashboard …`,
// optionally after the hermes program).
func IsDashboard(cmd []string) bool {
	args := HermesArgs(cmd)
	return len(args) > 0 && args[0] == "dashboard"
}

// OtherRoles are the hermes commands that make a container something other
// than a gateway container: upstream's GUI-mode set. Such a container
// reconciles no gateway (docs/scale-out.md).
var OtherRoles = []string{"dashboard", "serve", "gui", "desktop"}

// Role returns the CMD's role when it is one of OtherRoles (`dashboard …`,
// `hermes gui`, …), "" otherwise.
func Role(cmd []string) string {
	args := HermesArgs(cmd)
	if len(args) == 0 {
		return ""
	}
	for _, r := range OtherRoles {
		if args[0] == r {
			return r
		}
	}
	return ""
}

// Foreground returns the profile of a CMD that runs `gateway run` in the
// foreground by the operator's choice (--no-supervise or
// HERMES_GATEWAY_NO_SUPERVISE); "" when it does not.
func Foreground(cmd []string, getenv func(string) string) string {
	g, ok := ParseGatewayRun(HermesArgs(cmd))
	if !ok || !g.OptedOut(getenv) {
		return ""
	}
	return g.Profile
}

// GatewayRun is a parsed `gateway run` command line.
type GatewayRun struct {
	// Profile is the profile named by -p/--profile, profile.Default when
	// none is given. It is not validated here.
	Profile string
	// NoSupervise is set when --no-supervise appears anywhere.
	NoSupervise bool
	// Extra holds every other argument after `gateway run`, in order: a
	// supervised slot cannot carry them (its run script is fixed).
	Extra []string
}

// ParseGatewayRun reads hermes arguments (no program name; see HermesArgs)
// of the form
//
//	[PROFILE] gateway run [PROFILE | --replace | --no-supervise | EXTRA]…
//
// where PROFILE is `-p P`, `--profile P` or `--profile=P`. ok is false when
// args are not a `gateway run` command line at all, including a profile flag
// without a value or an unknown argument before `gateway`. When several
// profile flags are given the last one wins, as with hermes itself.
func ParseGatewayRun(args []string) (g GatewayRun, ok bool) {
	g.Profile = profile.Default
	// profileAt consumes a profile flag at args[i]: it returns how many
	// arguments it used (0 when args[i] is no profile flag) or -1 when the
	// flag has no value.
	profileAt := func(i int) int {
		a := args[i]
		switch {
		case a == "-p" || a == "--profile":
			if i+1 >= len(args) || args[i+1] == "" {
				return -1
			}
			g.Profile = args[i+1]
			return 2
		case strings.HasPrefix(a, "--profile="):
			v := strings.TrimPrefix(a, "--profile=")
			if v == "" {
				return -1
			}
			g.Profile = v
			return 1
		}
		return 0
	}
	i := 0
	for i < len(args) && args[i] != "gateway" {
		switch n := profileAt(i); {
		case n > 0:
			i += n
		case args[i] == NoSuperviseFlag:
			g.NoSupervise = true
			i++
		default:
			return GatewayRun{}, false
		}
	}
	if i+1 >= len(args) || args[i] != "gateway" || args[i+1] != "run" {
		return GatewayRun{}, false
	}
	for i += 2; i < len(args); {
		switch n := profileAt(i); {
		case n < 0:
			return GatewayRun{}, false
		case n > 0:
			i += n
			continue
		}
		switch args[i] {
		case "--replace":
		case NoSuperviseFlag:
			g.NoSupervise = true
		default:
			g.Extra = append(g.Extra, args[i])
		}
		i++
	}
	return g, true
}

// OptedOut reports whether g must run in the foreground by the operator's
// choice: --no-supervise in the arguments or HERMES_GATEWAY_NO_SUPERVISE
// truthy in the environment (getenv, e.g. os.Getenv).
func (g GatewayRun) OptedOut(getenv func(string) string) bool {
	return g.NoSupervise || Truthy(getenv(NoSuperviseEnv))
}
