package shim

import (
	"encoding/json"
	"slices"
)

// CmdJSON is the value of HERMES_S6_CMD: the CMD's arguments as a JSON
// array (`[]` for none), read by the boot reconcile (docs/reconcile.md).
func CmdJSON(args []string) string {
	if args == nil {
		args = []string{}
	}
	b, _ := json.Marshal(args) // a []string always marshals
	return string(b)
}

// InitArgv is what the entrypoint execs as PID 1: s6-overlay's /init, which
// runs its arguments as the CMD once the tree is up, here the shim itself.
// s6-overlay v3 gives the CMD only PATH unless it is wrapped in
// with-contenv, so when contenv (e.g. /command/with-contenv) is set the
// shim runs under it and sees `docker run -e` variables such as
// HERMES_GATEWAY_NO_SUPERVISE, and so does a foreground gateway.
func InitArgv(init, contenv, self string, args []string) []string {
	argv := []string{init}
	if contenv != "" {
		argv = append(argv, contenv)
	}
	return append(append(argv, self, "shim", "--"), slices.Clone(args)...)
}

// NotPID1 is the entrypoint's one warning when a runtime injected its own
// init (docker run --init, tini): /init must be PID 1, so no s6 tree starts
// and the CMD runs directly, a gateway in the foreground.
const NotPID1 = "warning: not PID 1 (the runtime started its own init, e.g. `docker run --init`): s6-overlay's /init is not started and no gateway is supervised; running the command directly"

// NotPID1Reason is the Foreground reason behind NotPID1.
const NotPID1Reason = "the entrypoint is not PID 1, so there is no s6 tree"
