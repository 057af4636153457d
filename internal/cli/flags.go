package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shard"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

const withContenv = "/command/with-contenv"

func defaultShebang() string {
	if _, err := os.Stat(withContenv); err == nil {
		return render.ShebangContenv
	}
	return render.ShebangSh
}

// globalOpts are the global flags and their environment variables, bound
// once, when the app parses them.
type globalOpts struct {
	Scandir, Home, S6Bin, Account, Hermes, Shebang string
}

func (g *globalOpts) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "scandir", Destination: &g.Scandir, Value: "/run/service", EnvVars: []string{config.EnvScandir}, Usage: "s6 scan directory watched by s6-svscan"},
		&cli.StringFlag{Name: "home", Destination: &g.Home, Value: "/opt/data", EnvVars: []string{config.EnvHome}, Usage: "data volume (HERMES_HOME)"},
		&cli.StringFlag{Name: "s6-bin", Destination: &g.S6Bin, Value: s6.DefaultBin(), DefaultText: "/command if present, else PATH", EnvVars: []string{config.EnvS6Bin}, Usage: "directory of the s6 tools of the running tree"},
		&cli.StringFlag{Name: "account", Destination: &g.Account, Value: "hermes", EnvVars: []string{config.EnvAccount}, Usage: "service account gateways run as when started by root (\"\" for none)"},
		&cli.StringFlag{Name: "hermes", Destination: &g.Hermes, Value: "hermes", EnvVars: []string{config.EnvGatewayBin}, Usage: "the gateway program"},
		&cli.StringFlag{Name: "shebang", Destination: &g.Shebang, Value: defaultShebang(), EnvVars: []string{config.EnvShebang}, Usage: "first line of every generated script"},
	}
}

// layout is the data volume and the scandir the flags name.
func (g *globalOpts) layout() profile.Layout {
	return profile.Layout{Home: g.Home, Scandir: g.Scandir}
}

// clean checks that the data volume and the scandir are absolute paths and
// cleans them: a relative or empty HERMES_HOME would be resolved against
// whatever directory a command runs in, and a trailing slash would render
// every slot differently from the boot's (and so rewrite them all).
func (g *globalOpts) clean() error {
	for _, p := range []struct {
		val        *string
		env, flag  string
		suggestion string
	}{
		{&g.Home, config.EnvHome, "--home", "/opt/data"},
		{&g.Scandir, config.EnvScandir, "--scandir", "/run/service"},
	} {
		if !filepath.IsAbs(*p.val) {
			return hint.With(usage(fmt.Errorf("%s / %s %q is not an absolute path", p.flag, p.env, *p.val)),
				fmt.Sprintf("set %s (or %s) to an absolute path, e.g. %s", p.env, p.flag, p.suggestion))
		}
		*p.val = filepath.Clean(*p.val)
	}
	return nil
}

// slotOpts are the slot-shaping flags of one command that has them.
type slotOpts struct {
	LogArchives, LogSize int
	CrashLimit, Stderr   string
	Env                  cli.StringSlice
}

func (s *slotOpts) flags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "log-archives", Destination: &s.LogArchives, Value: render.DefaultLogArchives, EnvVars: []string{config.EnvLogArchives}, Usage: "rotated log archives kept (s6-log nN)"},
		&cli.IntFlag{Name: "log-size", Destination: &s.LogSize, Value: render.DefaultLogSize, EnvVars: []string{config.EnvLogSize}, Usage: "log file size that triggers rotation, bytes (s6-log sN)"},
		&cli.StringFlag{Name: "crash-limit", Destination: &s.CrashLimit, EnvVars: []string{config.EnvCrashLimit}, DefaultText: "off", Usage: "park the slot after N crashes within DURATION, e.g. 5/60s"},
		&cli.StringFlag{Name: "stderr", Destination: &s.Stderr, Value: "log", EnvVars: []string{config.EnvStderr}, Usage: "where the gateway's stderr goes: log (with stdout) or console"},
		&cli.StringSliceFlag{Name: "env", Destination: &s.Env, Usage: "extra environment for the gateway, KEY=VALUE (repeatable)"},
	}
}

// slotFlagNames are the flags slotOpts binds.
var slotFlagNames = []string{"log-archives", "log-size", "crash-limit", "stderr", "env"}

// anySet reports whether the caller shaped the slot explicitly.
func (s *slotOpts) anySet(c *cli.Context) bool {
	for _, n := range slotFlagNames {
		if c.IsSet(n) {
			return true
		}
	}
	return false
}

// needs is what a command takes from its environment, declared in its
// definition.
type needs struct {
	// account: resolve the service account (as root it must exist).
	account bool
	// render: the command renders slots, so bad slot settings are bad
	// usage before anything runs. A command that only drives slots never
	// fails on a render setting it does not use.
	render bool
	// selection: the command reads which profiles this container
	// supervises (HERMES_S6_PROFILES, HERMES_S6_SHARD[S]); bad values are
	// bad usage.
	selection bool
	// slot: the command's slot flags; nil when it has none (it renders
	// with the defaults, so every command shapes a slot the same way). A
	// command with slot flags that does not render validates them when
	// one is given (start reshapes the slot then).
	slot *slotOpts
}

// env binds the global flags, the command's slot flags and the process's
// identity into the config.Env the work below the CLI runs on.
func (g *globalOpts) env(c *cli.Context, n needs) (config.Env, error) {
	cfg, err := g.slotConfig(n)
	if err != nil {
		return config.Env{}, err
	}
	id := account.Resolve(nil)
	if n.account {
		if id.Service, err = serviceAccount(cfg.Account, id.Root()); err != nil {
			return config.Env{}, err
		}
	}
	if n.render || n.slot != nil && n.slot.anySet(c) {
		probe := cfg
		probe.Profile = profile.Default
		if _, err := render.Render(probe); err != nil {
			return config.Env{}, usage(err)
		}
	}
	var sel shard.Selection
	if n.selection {
		host, _ := os.Hostname()
		if sel, err = shard.FromEnv(os.Getenv, host); err != nil {
			return config.Env{}, usage(err)
		}
	}
	return config.Env{
		Selection: sel,
		Layout:    g.layout(),
		Tools:     s6.Tools{Dir: g.S6Bin},
		Slot:      cfg,
		Identity:  id,
		Getenv:    os.Getenv,
		Log:       newLogger(c.App.ErrWriter),
	}, nil
}

// slotConfig is the render template of the global flags and n's slot
// flags (the defaults when the command has none).
func (g *globalOpts) slotConfig(n needs) (render.Config, error) {
	if err := g.clean(); err != nil {
		return render.Config{}, err
	}
	cfg := render.Config{
		Kind:        render.Gateway,
		Home:        g.Home,
		Shebang:     g.Shebang,
		S6Bin:       g.S6Bin,
		Account:     g.Account,
		Hermes:      g.Hermes,
		Self:        selfPath(),
		LogArchives: render.DefaultLogArchives,
		LogSize:     render.DefaultLogSize,
		Stderr:      "log",
	}
	s := n.slot
	if s == nil {
		return cfg, nil
	}
	cfg.LogArchives, cfg.LogSize, cfg.Stderr = s.LogArchives, s.LogSize, s.Stderr
	cl, err := render.ParseCrashLimit(s.CrashLimit)
	if err != nil {
		return cfg, usage(err)
	}
	cfg.CrashLimit = cl
	for _, kv := range s.Env.Value() {
		e, err := render.ParseEnv(kv)
		if err != nil {
			return cfg, usage(err)
		}
		cfg.Env = append(cfg.Env, e)
	}
	return cfg, nil
}

// manager is a control.Manager on the command's env.
func (g *globalOpts) manager(c *cli.Context, n needs) (*control.Manager, error) {
	env, err := g.env(c, n)
	if err != nil {
		return nil, err
	}
	return control.New(env), nil
}

// serviceAccount resolves the account gateways drop to. As root it must
// exist (a run script would otherwise fail in s6-setuidgid and loop); as
// non-root it only names the account in scripts.
func serviceAccount(name string, root bool) (*account.Account, error) {
	a, err := account.Lookup(name)
	if err == nil || !root {
		return a, nil
	}
	return nil, hint.With(usage(err), fmt.Sprintf("create the account (useradd --system %s), or pass --account '' (HERMES_S6_ACCOUNT=) to run gateways as root", name))
}

var profileFlag = &cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Value: profile.Default, Usage: "gateway profile"}

var timeoutFlag = &cli.DurationFlag{Name: "timeout", Value: control.DefaultTimeout, Usage: "how long to wait for s6 (a Go duration)"}

var noWaitFlag = &cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the new state"}

// profileArg returns --profile, refusing a positional argument that was
// probably meant as one.
func profileArg(c *cli.Context) (string, error) {
	if c.Args().Present() {
		return "", usage(fmt.Errorf("unexpected argument %q (use --profile %s)", c.Args().First(), strings.TrimSpace(c.Args().First())))
	}
	p := c.String("profile")
	if err := profile.Validate(p); err != nil {
		return "", hint.With(err, "profile names look like coder, ops-2 or team_a")
	}
	return p, nil
}

var errNoCommand = errors.New("no command given")

// selfPath is this binary's absolute path, which the dashboard slot's
// readiness check runs; "hermes-s6" on PATH when the kernel cannot say.
func selfPath() string {
	p, err := os.Executable()
	if err != nil {
		return "/usr/local/bin/hermes-s6"
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}
