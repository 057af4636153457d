// Package render turns a slot configuration into the files of an s6 service
// directory. It is pure: Config in, bytes and modes out, no I/O, so every
// byte of every slot is covered by the golden files in golden/.
package render

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/templates"
)

// Kind tells what a slot supervises.
type Kind string

const (
	Gateway   Kind = "gateway"
	Dashboard Kind = "dashboard"
)

// DashboardSlot is the service directory name of the dashboard.
const DashboardSlot = "dashboard"

// Shebangs for an s6-overlay image (scripts see the container environment)
// and for a plain host.
const (
	ShebangContenv = "#!/command/with-contenv sh"
	ShebangSh      = "#!/bin/sh"
)

// Defaults for the logger (docs/slot.md).
const (
	DefaultLogArchives = 10
	DefaultLogSize     = 1000000
)

// CrashLimit parks a slot after Deaths crashes within Window (s6-permafailon).
type CrashLimit struct {
	Deaths int
	Window time.Duration
}

// ParseCrashLimit reads "N/DURATION", e.g. "5/60s". "" and "off" mean none.
func ParseCrashLimit(s string) (*CrashLimit, error) {
	if s == "" || s == "off" {
		return nil, nil
	}
	n, d, ok := strings.Cut(s, "/")
	deaths, err := strconv.Atoi(n)
	if !ok || err != nil || deaths < 1 {
		return nil, fmt.Errorf("crash limit %q: want N/DURATION with N ≥ 1, e.g. 5/60s", s)
	}
	win, err := time.ParseDuration(d)
	if err != nil || win < time.Second || win%time.Second != 0 {
		return nil, fmt.Errorf("crash limit %q: the window must be a whole number of seconds, at least 1s, e.g. 5/60s", s)
	}
	return &CrashLimit{Deaths: deaths, Window: win}, nil
}

// String renders the limit in the form ParseCrashLimit reads.
func (c *CrashLimit) String() string {
	if c == nil {
		return "off"
	}
	return fmt.Sprintf("%d/%s", c.Deaths, c.Window)
}

// EnvVar is one extra environment variable exported by run.
type EnvVar struct{ Key, Value string }

// envKeyRE is compiled on first use: only slots with extra environment
// need it.
var envKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// ParseEnv reads KEY=VALUE. The key must be a shell variable name.
func ParseEnv(s string) (EnvVar, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return EnvVar{}, fmt.Errorf("extra environment %q: want KEY=VALUE", s)
	}
	if !envKeyRE().MatchString(k) {
		return EnvVar{}, fmt.Errorf("extra environment key %q: want a shell variable name ([A-Za-z_][A-Za-z0-9_]*)", k)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return EnvVar{}, fmt.Errorf("extra environment %s: the value holds a NUL byte, which no environment can carry", k)
	}
	return EnvVar{Key: k, Value: v}, nil
}

// Config is everything a slot's files depend on.
type Config struct {
	Kind    Kind
	Profile string // gateway profile; unused for the dashboard

	Home    string // HERMES_HOME at render time (the fallback when unset at run time)
	Shebang string // first line of every script
	S6Bin   string // directory of the s6 tools; "" calls them through PATH
	Account string // service account to drop to when run as root; "" never drops
	Hermes  string // the gateway program

	LogArchives int // s6-log nN
	LogSize     int // s6-log sN, bytes
	CrashLimit  *CrashLimit
	Stderr      string // "log" (default, merged into the log) or "console"
	Env         []EnvVar

	DashboardHost string
	DashboardPort int
	// Self is hermes-s6's own absolute path: the dashboard's readiness
	// check runs `Self probe --http HOST:PORT`. "" runs hermes-s6 from PATH.
	Self string

	Down bool // include a down file: the slot must not start on pickup
}

// NotificationFD is the descriptor a slot that declares readiness writes
// its newline to (s6's notification-fd; s6-notifyoncheck does it for the
// dashboard).
const NotificationFD = 3

// ProbeAddr is the address that reaches a server listening on host:port
// from inside its container: a wildcard listener is probed on loopback.
func ProbeAddr(host string, port int) string {
	switch host {
	case "0.0.0.0", "":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
}

// File is one regular file of a slot, Path relative to the slot directory.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Slot is a rendered service directory.
type Slot struct {
	Name  string // directory name in the scandir
	Files []File // sorted by Path
}

// File returns the named file of the slot, or nil.
func (s *Slot) File(p string) *File {
	for i := range s.Files {
		if s.Files[i].Path == p {
			return &s.Files[i]
		}
	}
	return nil
}

// SlotName is the service directory name of the slot c describes.
func (c *Config) SlotName() string {
	if c.Kind == Dashboard {
		return DashboardSlot
	}
	return profile.SlotName(c.Profile)
}

// Render produces the slot's files. It fails on a configuration no script
// could carry safely, naming the offending field.
func Render(c Config) (*Slot, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	d := c.data()
	slot := &Slot{Name: d.Name}
	for _, f := range []struct {
		path, tmpl string
	}{{"run", "run.tmpl"}, {"finish", "finish.tmpl"}, {"log/run", "log-run.tmpl"}} {
		b, err := templates.Execute(f.tmpl, d)
		if err != nil {
			return nil, err
		}
		slot.Files = append(slot.Files, File{Path: f.path, Mode: 0o755, Data: b})
	}
	if d.Notify != "" {
		b, err := templates.Execute("check.tmpl", d)
		if err != nil {
			return nil, err
		}
		slot.Files = append(slot.Files, File{Path: "data/check", Mode: 0o755, Data: b})
	}
	// Every slot tells s6 when it is ready: a gateway once it holds the
	// lease and starts, the dashboard once it answers HTTP.
	slot.Files = append(slot.Files, File{Path: "notification-fd", Mode: 0o644, Data: []byte(strconv.Itoa(NotificationFD) + "\n")})
	// The logger tells s6 when it holds the lease (s6-log -d).
	slot.Files = append(slot.Files, File{Path: "log/notification-fd", Mode: 0o644, Data: []byte(strconv.Itoa(NotificationFD) + "\n")})
	slot.Files = append(slot.Files, File{Path: "type", Mode: 0o644, Data: []byte("longrun\n")})
	if c.Down {
		slot.Files = append(slot.Files, File{Path: "down", Mode: 0o644, Data: []byte{}})
	}
	sort.Slice(slot.Files, func(i, j int) bool { return slot.Files[i].Path < slot.Files[j].Path })
	return slot, nil
}

func (c *Config) check() error {
	var errs []error
	switch c.Kind {
	case Gateway:
		if err := profile.Validate(c.Profile); err != nil {
			errs = append(errs, err)
		}
	case Dashboard:
		if c.DashboardPort < 1 || c.DashboardPort > 65535 {
			errs = append(errs, fmt.Errorf("dashboard port %d: want 1-65535", c.DashboardPort))
		}
		if c.DashboardHost == "" {
			errs = append(errs, errors.New("dashboard host is empty"))
		}
		if c.Self != "" && !path.IsAbs(c.Self) {
			errs = append(errs, fmt.Errorf("hermes-s6 path %q: want an absolute path (the dashboard's readiness check runs it)", c.Self))
		}
	default:
		errs = append(errs, fmt.Errorf("slot kind %q: want gateway or dashboard", c.Kind))
	}
	for field, v := range map[string]string{"home": c.Home, "shebang": c.Shebang, "s6 tool directory": c.S6Bin,
		"account": c.Account, "gateway program": c.Hermes, "dashboard host": c.DashboardHost, "hermes-s6 path": c.Self} {
		if strings.IndexByte(v, 0) >= 0 {
			errs = append(errs, fmt.Errorf("%s %q holds a NUL byte, which no script or command line can carry", field, v))
		}
	}
	if !path.IsAbs(c.Home) {
		errs = append(errs, fmt.Errorf("home %q: want an absolute path", c.Home))
	}
	if !strings.HasPrefix(c.Shebang, "#!/") || strings.ContainsAny(c.Shebang, "\n\r") {
		errs = append(errs, fmt.Errorf("shebang %q: want one line starting with #!/", c.Shebang))
	}
	if c.S6Bin != "" && !path.IsAbs(c.S6Bin) {
		errs = append(errs, fmt.Errorf("s6 tool directory %q: want an absolute path", c.S6Bin))
	}
	if c.Hermes == "" {
		errs = append(errs, errors.New("gateway program is empty"))
	}
	if c.LogArchives < 1 {
		errs = append(errs, fmt.Errorf("log archives %d: want at least 1", c.LogArchives))
	}
	// s6-log's own bounds for sN: 4096 to 268435455 bytes.
	if c.LogSize < 4096 || c.LogSize > 268435455 {
		errs = append(errs, fmt.Errorf("log size %d: want 4096-268435455 bytes (s6-log's bounds)", c.LogSize))
	}
	if c.Stderr != "" && c.Stderr != "log" && c.Stderr != "console" {
		errs = append(errs, fmt.Errorf("stderr %q: want log or console", c.Stderr))
	}
	seen := map[string]bool{}
	for _, e := range c.Env {
		if !envKeyRE().MatchString(e.Key) || strings.IndexByte(e.Value, 0) >= 0 {
			errs = append(errs, fmt.Errorf("extra environment %q: want KEY=VALUE with a shell variable name and no NUL", e.Key))
		}
		if seen[e.Key] {
			errs = append(errs, fmt.Errorf("extra environment %s given twice", e.Key))
		}
		seen[e.Key] = true
	}
	return errors.Join(errs...)
}

// data is what the templates see.
type data struct {
	Kind, Name, Regenerate string
	Shebang, Home          string
	Account                string
	SetUIDGID, S6Log       string
	PermaFailOn, SvStat    string
	SvWait, SetLock        string
	NotificationFD         int
	// GatewayLock: run holds the gateway's own lock (gateway slots).
	GatewayLock bool
	Self        string
	// Notify is the address the readiness check probes ("" when the slot
	// declares no readiness) and Notifier the s6-notifyoncheck command
	// line that runs it.
	Notify               string
	Notifier             []string
	Command              []string
	Env                  []envData
	MergeStderr          bool
	LogSubdir            string
	LogArchives, LogSize int
	CrashLimit           *crashData
}

type crashData struct{ Deaths, Seconds int }

type envData struct {
	Key, Value string
	Last       bool // no line continuation after it
}

func (c *Config) data() data {
	tool := func(name string) string {
		if c.S6Bin == "" {
			return name
		}
		return path.Join(c.S6Bin, name)
	}
	d := data{
		Kind:        string(c.Kind),
		Name:        c.SlotName(),
		Shebang:     c.Shebang,
		Home:        c.Home,
		Account:     c.Account,
		SetUIDGID:   tool("s6-setuidgid"),
		S6Log:       tool("s6-log"),
		PermaFailOn: tool("s6-permafailon"),
		SvStat:      tool("s6-svstat"),
		SvWait:      tool("s6-svwait"),
		SetLock:     tool("s6-setlock"),

		NotificationFD: NotificationFD,
		Self:           cmp.Or(c.Self, "hermes-s6"),
		MergeStderr:    c.Stderr != "console",
		LogArchives:    c.LogArchives,
		LogSize:        c.LogSize,
	}
	env := append([]EnvVar(nil), c.Env...)
	sort.Slice(env, func(i, j int) bool { return env[i].Key < env[j].Key })
	for i, e := range env {
		d.Env = append(d.Env, envData{Key: e.Key, Value: e.Value, Last: i == len(env)-1})
	}
	if c.CrashLimit != nil {
		d.CrashLimit = &crashData{Deaths: c.CrashLimit.Deaths, Seconds: int(c.CrashLimit.Window / time.Second)}
	}
	switch c.Kind {
	case Dashboard:
		d.Regenerate = "hermes-s6 reconcile"
		d.LogSubdir = "logs/dashboard"
		d.Command = []string{c.Hermes, "dashboard", "--host", c.DashboardHost, "--port", strconv.Itoa(c.DashboardPort), "--no-open"}
		d.Notify = ProbeAddr(c.DashboardHost, c.DashboardPort)
		// Poll every second, each try cut at 2 s, for as long as it takes:
		// a dashboard that never answers stays up and not ready, which
		// status and health report.
		d.Notifier = []string{tool("s6-notifyoncheck"), "-d", "-s", "100", "-w", "1000", "-t", "2000", "-n", "0"}
	default:
		d.Regenerate = "hermes-s6 register --profile " + c.Profile
		d.LogSubdir = "logs/gateways/" + c.Profile
		d.GatewayLock = true
		d.Command = []string{c.Hermes}
		if c.Profile != profile.Default {
			d.Command = append(d.Command, "-p", c.Profile)
		}
		d.Command = append(d.Command, "gateway", "run", "--replace")
	}
	return d
}
