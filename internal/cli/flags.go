package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
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

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "scandir", Value: "/run/service", EnvVars: []string{"HERMES_S6_SCANDIR"}, Usage: "s6 scan directory watched by s6-svscan"},
		&cli.StringFlag{Name: "home", Value: "/opt/data", EnvVars: []string{"HERMES_HOME"}, Usage: "data volume (HERMES_HOME)"},
		&cli.StringFlag{Name: "s6-bin", Value: s6.DefaultBin(), DefaultText: "/command if present, else PATH", EnvVars: []string{"HERMES_S6_BIN"}, Usage: "directory of the s6 tools of the running tree"},
		&cli.StringFlag{Name: "account", Value: "hermes", EnvVars: []string{"HERMES_S6_ACCOUNT"}, Usage: "service account gateways run as when started by root (\"\" for none)"},
		&cli.StringFlag{Name: "hermes", Value: "hermes", EnvVars: []string{"HERMES_S6_GATEWAY_BIN"}, Usage: "the gateway program"},
		&cli.StringFlag{Name: "shebang", Value: defaultShebang(), EnvVars: []string{"HERMES_S6_SHEBANG"}, Usage: "first line of every generated script"},
	}
}

var profileFlag = &cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Value: profile.Default, Usage: "gateway profile"}

var timeoutFlag = &cli.DurationFlag{Name: "timeout", Value: control.DefaultTimeout, Usage: "how long to wait for s6 (a Go duration)"}

var noWaitFlag = &cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the new state"}

// slotFlagNames are the flags that shape a slot's files.
var slotFlagNames = []string{"log-archives", "log-size", "crash-limit", "stderr", "env"}

func slotFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "log-archives", Value: render.DefaultLogArchives, EnvVars: []string{"HERMES_S6_LOG_ARCHIVES"}, Usage: "rotated log archives kept (s6-log nN)"},
		&cli.IntFlag{Name: "log-size", Value: render.DefaultLogSize, EnvVars: []string{"HERMES_S6_LOG_SIZE"}, Usage: "log file size that triggers rotation, bytes (s6-log sN)"},
		&cli.StringFlag{Name: "crash-limit", EnvVars: []string{"HERMES_S6_CRASH_LIMIT"}, DefaultText: "off", Usage: "park the slot after N crashes within DURATION, e.g. 5/60s"},
		&cli.StringFlag{Name: "stderr", Value: "log", EnvVars: []string{"HERMES_S6_STDERR"}, Usage: "where the gateway's stderr goes: log (with stdout) or console"},
		&cli.StringSliceFlag{Name: "env", Usage: "extra environment for the gateway, KEY=VALUE (repeatable)"},
	}
}

// anySlotFlagSet reports whether the caller shaped the slot explicitly.
func anySlotFlagSet(c *cli.Context) bool {
	for _, n := range slotFlagNames {
		if c.IsSet(n) {
			return true
		}
	}
	return false
}

// slotConfig builds the render template from global and slot flags.
func slotConfig(c *cli.Context) (render.Config, error) {
	cfg := render.Config{
		Kind:        render.Gateway,
		Home:        c.String("home"),
		Shebang:     c.String("shebang"),
		S6Bin:       c.String("s6-bin"),
		Account:     c.String("account"),
		Hermes:      c.String("hermes"),
		LogArchives: render.DefaultLogArchives,
		LogSize:     render.DefaultLogSize,
		Stderr:      "log",
	}
	// Commands without slot flags (start, stop, ...) still render with the
	// environment's settings, so every command shapes a slot the same way.
	if c.Command != nil && hasFlag(c.Command, "log-size") {
		cfg.LogArchives = c.Int("log-archives")
		cfg.LogSize = c.Int("log-size")
		cfg.Stderr = c.String("stderr")
		cl, err := render.ParseCrashLimit(c.String("crash-limit"))
		if err != nil {
			return cfg, usage(err)
		}
		cfg.CrashLimit = cl
		for _, kv := range c.StringSlice("env") {
			e, err := render.ParseEnv(kv)
			if err != nil {
				return cfg, usage(err)
			}
			cfg.Env = append(cfg.Env, e)
		}
	}
	// Validate the shared part now, with a neutral profile, so a bad flag is
	// reported as bad usage before anything runs; commands that render
	// nothing skip it: a stop must not fail on a render setting it never
	// uses, and status, list, start and stop stay cheap (parsing the
	// templates is a third of a millisecond).
	if c.Command == nil || !(rendersSlots[c.Command.Name] || reshapes(c)) {
		return cfg, nil
	}
	probe := cfg
	probe.Profile = profile.Default
	if _, err := render.Render(probe); err != nil {
		return cfg, usage(err)
	}
	return cfg, nil
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// rendersSlots names the commands that render slots: they validate the
// slot settings before they change anything.
var rendersSlots = map[string]bool{
	"render": true, "register": true, "reconcile": true, "shim": true, "entrypoint": true,
}

// drivesSlots names the commands that drive existing slots without
// rendering them.
var drivesSlots = map[string]bool{"start": true, "stop": true, "restart": true, "unregister": true}

// usesAccount reports whether a command resolves the service account: it
// renders slots, or writes volume files and lock files the account must own.
func usesAccount(name string) bool { return rendersSlots[name] || drivesSlots[name] }

// reshapes reports whether a start was given slot flags: it then installs
// the slot anew before starting it.
func reshapes(c *cli.Context) bool {
	return c.Command != nil && hasFlag(c.Command, "log-size") && anySlotFlagSet(c)
}

// manager builds the control.Manager for a command.
func manager(c *cli.Context) (*control.Manager, error) {
	cfg, err := slotConfig(c)
	if err != nil {
		return nil, err
	}
	var svc *account.Account
	if c.Command == nil || usesAccount(c.Command.Name) {
		if svc, err = serviceAccount(cfg.Account); err != nil {
			return nil, err
		}
	}
	return &control.Manager{
		Layout:  profile.Layout{Home: c.String("home"), Scandir: c.String("scandir")},
		Tools:   s6.Tools{Dir: c.String("s6-bin")},
		Slot:    cfg,
		Service: svc,
		Log:     newLogger(c.App.ErrWriter),
	}, nil
}

// serviceAccount resolves the account gateways drop to. As root it must
// exist (a run script would otherwise fail in s6-setuidgid and loop); as
// non-root it only names the account in scripts.
func serviceAccount(name string) (*account.Account, error) {
	a, err := account.Lookup(name)
	if err == nil || os.Geteuid() != 0 {
		return a, nil
	}
	return nil, hint.With(usage(err), fmt.Sprintf("create the account (useradd --system %s), or pass --account '' (HERMES_S6_ACCOUNT=) to run gateways as root", name))
}

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
