package config

// Environment variables hermes-s6 reads. Every one is in Vars, and
// docs/environment.md lists exactly these (TestVarsDocumented).
const (
	EnvHome        = "HERMES_HOME"
	EnvScandir     = "HERMES_S6_SCANDIR"
	EnvS6Bin       = "HERMES_S6_BIN"
	EnvAccount     = "HERMES_S6_ACCOUNT"
	EnvGatewayBin  = "HERMES_S6_GATEWAY_BIN"
	EnvShebang     = "HERMES_S6_SHEBANG"
	EnvLogArchives = "HERMES_S6_LOG_ARCHIVES"
	EnvLogSize     = "HERMES_S6_LOG_SIZE"
	EnvCrashLimit  = "HERMES_S6_CRASH_LIMIT"
	EnvStderr      = "HERMES_S6_STDERR"
)

// Var is one environment variable: its name, its default ("" for unset)
// and what it does, in a line.
type Var struct {
	Name, Default, Meaning string
}

// Vars is every environment variable hermes-s6 and its image hooks read.
var Vars = []Var{
	{EnvHome, "/opt/data", "the data volume; the default profile lives here, named ones in profiles/P/ (with SOUL.md)"},
	{EnvScandir, "/run/service", "the s6 scan directory (--scandir)"},
	{EnvS6Bin, "/command if present, else PATH", "where the s6 tools of the running tree are (--s6-bin)"},
	{EnvAccount, "hermes", "the service account gateways run as when started by root; empty for none (--account)"},
	{EnvGatewayBin, "hermes", "the gateway program (--hermes)"},
	{EnvShebang, "#!/command/with-contenv sh if that exists, else #!/bin/sh", "the first line of every generated script (--shebang)"},
	{EnvLogArchives, "10", "rotated log archives kept per slot (--log-archives)"},
	{EnvLogSize, "1000000", "log size in bytes that triggers rotation (--log-size)"},
	{EnvCrashLimit, "", "N/DURATION: park a slot after N deaths within DURATION (--crash-limit)"},
	{EnvStderr, "log", "where a gateway's stderr goes: log (with stdout) or console (--stderr)"},
	{"HERMES_DASHBOARD", "", "1, true or yes: run the dashboard slot"},
	{"HERMES_DASHBOARD_HOST", "127.0.0.1", "where the dashboard listens"},
	{"HERMES_DASHBOARD_PORT", "9119", "the dashboard's port"},
	{"HERMES_GATEWAY_NO_SUPERVISE", "", "1, true or yes: `gateway run` stays the foreground CMD (as --no-supervise)"},
	{"HERMES_S6_SUPERVISED_CHILD", "", "set by every slot's run script: a gateway started by s6 never redirects again"},
	{"HERMES_S6_CMD", "", "the container's CMD as a JSON array, exported by the entrypoint for reconcile and doctor"},
	{"HERMES_S6_INIT", "/init", "what the entrypoint execs as PID 1"},
	{"HERMES_S6_PROC", "/proc", "s6 detection: the proc root whose 1/comm must be s6-svscan"},
	{"HERMES_S6_BASEDIR", "/run/s6/basedir", "s6 detection: s6-overlay's basedir, which must exist"},
	{"HERMES_S6_DRAIN_TIMEOUT", "8s", "how long the stop drain lets slots go down before it kills them (drain --timeout)"},
	{"HERMES_S6_PROFILES", "", "names and globs, comma-separated: the profiles this container supervises (default every profile)"},
	{"HERMES_S6_SHARD", "", "I/N: supervise only the profiles rendezvous hashing gives shard I of N (0-based)"},
	{"HERMES_S6_SHARDS", "", "N: as HERMES_S6_SHARD, with I the -ORDINAL ending the host name (a StatefulSet pod)"},
	{"HERMES_S6_RUNTIME_DIR", "/run/hermes-s6", "root's runtime records, read by health: that this boot's reconcile has run (and how), the profiles it left out"},
	{"HERMES_S6_START_GRACE", "60s", "health: how long a slot may be up and not ready before it counts as unhealthy"},
	{"HERMES_S6_BROKER", "/run/hermes-s6/broker.sock", "the root broker's socket: register and unregister run as the service account ask it"},
	{"HERMES_S6_FOREGROUND_RECORD", "/run/hermes-s6/foreground", "where the shim records the foreground gateway for the stop drain"},
	{"HERMES_UID", "", "boot hook: give the service account this uid (PUID is read too)"},
	{"HERMES_GID", "", "boot hook: give the service account this gid (PGID is read too)"},
	{"S6_KILL_FINISH_MAXTIME", "", "s6-overlay's bound on each cont-finish.d script (ms); the drain keeps under it"},
	{"S6_KILL_GRACETIME", "100 in the image (s6-overlay: 3000)", "s6-overlay's kill grace after the drain (ms)"},
}
