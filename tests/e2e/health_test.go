//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Health (docs/health.md) on the real s6-overlay: the image's HEALTHCHECK
// runs `hermes-s6 health`, which judges what the container was asked to
// run; the dashboard slot is ready only once it answers HTTP.

// healthcheck is what the image declares as its HEALTHCHECK command.
var healthcheck = []string{"CMD", "/usr/local/bin/hermes-s6", "health"}

// fastHealth overrides the image's HEALTHCHECK timings (30 s apart, three
// misses, 60 s start period) so that Docker's verdict follows the container
// within a second or two; the command itself stays the image's. The start
// period is 1 ms, not 0: Docker reads 0 as "not set" and keeps the image's
// 60 s, during which a container that never passed stays "starting".
var fastHealth = []string{"--health-interval=1s", "--health-retries=1", "--health-start-period=1ms"}

// healthReport is `hermes-s6 health --json`.
type healthReport struct {
	Healthy  bool   `json:"healthy"`
	Role     string `json:"role"`
	Slots    int    `json:"slots"`
	Problems []struct {
		Slot    string `json:"slot"`
		Profile string `json:"profile"`
		Problem string `json:"problem"`
		Fix     string `json:"fix"`
	} `json:"problems"`
}

// slotStatus is one element of `hermes-s6 status --json`.
type slotStatus struct {
	Name         string  `json:"name"`
	Profile      *string `json:"profile"`
	Up           bool    `json:"up"`
	WantUp       bool    `json:"want_up"`
	Ready        bool    `json:"ready"`
	PID          int     `json:"pid"`
	ExitCode     int     `json:"exit_code"`
	Seconds      int     `json:"seconds"`
	DesiredState string  `json:"desired_state"`
}

func (s slotStatus) String() string {
	return fmt.Sprintf("%s: up=%t want_up=%t ready=%t pid=%d exit=%d for=%ds desired=%s",
		s.Name, s.Up, s.WantUp, s.Ready, s.PID, s.ExitCode, s.Seconds, s.DesiredState)
}

// slotJSON is slot's element of `hermes-s6 status --json`, run as the
// service account.
func (c *container) slotJSON(slot string) (slotStatus, error) {
	r := c.exec("hermes", "hermes-s6", "status", "--json")
	if !r.ok() {
		return slotStatus{}, fmt.Errorf("status --json: %s", r)
	}
	var all []slotStatus
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		return slotStatus{}, fmt.Errorf("status --json: %v\n%s", err, r.stdout)
	}
	for _, s := range all {
		if s.Name == slot {
			return s, nil
		}
	}
	return slotStatus{}, fmt.Errorf("status --json has no slot %s:\n%s", slot, r.stdout)
}

// health runs `hermes-s6 health ARGS…` in the container as user.
func (c *container) health(user string, args ...string) result {
	return c.exec(user, append([]string{"hermes-s6", "health"}, args...)...)
}

// healthJSON runs `hermes-s6 health --json` as user and checks that its
// exit code agrees with the report (0 healthy, 1 not).
func (c *container) healthJSON(user string) (healthReport, error) {
	r := c.health(user, "--json")
	var h healthReport
	if r.err != nil {
		return h, fmt.Errorf("%s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		return h, fmt.Errorf("health --json: %v\n%s", err, r)
	}
	if want := map[bool]int{true: 0, false: 1}[h.Healthy]; r.code != want {
		return h, fmt.Errorf("health --json says healthy=%t but exits %d, want %d\n%s", h.Healthy, r.code, want, r)
	}
	return h, nil
}

// dockerHealth is Docker's verdict on the container (.State.Health.Status:
// starting, healthy or unhealthy) and the last check's exit code and
// output, for messages.
func (c *container) dockerHealth() (status, last string) {
	r := docker(time.Minute, "inspect", "-f", "{{json .State.Health}}", c.name)
	if !r.ok() {
		return "unknown", r.String()
	}
	var h struct {
		Status string
		Log    []struct {
			ExitCode int
			Output   string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		return "unknown", fmt.Sprintf("%v: %s", err, r.stdout)
	}
	last = "no check has run"
	if n := len(h.Log); n > 0 {
		last = fmt.Sprintf("last check: exit %d: %s", h.Log[n-1].ExitCode, strings.TrimSpace(h.Log[n-1].Output))
	}
	return h.Status, last
}

// waitDockerHealth waits until Docker's verdict is want and the output of
// the last check contains says: with one retry, a check that runs while a
// slot is being restarted can flip the verdict before the state under test
// is reached, so the verdict alone does not say which check made it.
func (c *container) waitDockerHealth(want, says string) {
	c.t.Helper()
	c.eventually(fmt.Sprintf("docker inspect: health %s, the last check saying %q", want, says), func() (bool, string) {
		st, last := c.dockerHealth()
		return st == want && strings.Contains(last, says), st + "; " + last
	})
}

// The image's HEALTHCHECK runs hermes-s6 health, and Docker's verdict
// follows what the container was asked to run: healthy with the default
// gateway up; unhealthy once it exits 78 and finish parks it while its
// desired state is still running (and `health` names the exit); healthy
// again once the configuration is fixed and the gateway started.
func TestHealthcheck(t *testing.T) {
	setup(t)
	r := docker(time.Minute, "image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", cfg.image)
	var test []string
	if !r.ok() || json.Unmarshal([]byte(r.stdout), &test) != nil {
		t.Fatalf("the image's HEALTHCHECK: %s", r)
	}
	if !slices.Equal(test, healthcheck) {
		t.Fatalf("the image's HEALTHCHECK is %q, want %q", test, healthcheck)
	}

	c := startDetached(t, fastHealth, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up && s.pid > 0 })
	c.waitDockerHealth("healthy", "healthy: supervisor container")

	// A configuration error: the gateway exits 78 on its next start and
	// finish parks it. The operator asked for it to run, and still does.
	c.mustExec("hermes", "mkdir", "-p", "/opt/data/standin")
	c.mustExec("hermes", "sh", "-c", "echo 78 > /opt/data/standin/default.exit")
	hermesS6(c, "restart", "--profile", "default")
	c.waitSlot("gateway-default", "parked after exit 78", func(s svstat) bool { return !s.up && !s.wantUp && s.exitCode == 78 })
	if s, err := c.slotJSON("gateway-default"); err != nil || s.DesiredState != "running" {
		t.Errorf("after the gateway exited 78: %s %v, want desired state running", s, err)
	}
	c.waitDockerHealth("unhealthy", "parked by finish after exit 78")
	h := c.health("hermes")
	if h.err != nil || h.code != 1 {
		t.Errorf("hermes-s6 health: want exit 1\n%s", h)
	}
	const parked = "UNHEALTHY gateway-default: parked by finish after exit 78 (configuration error)"
	if !strings.Contains(h.stdout, parked+"\n") {
		t.Errorf("hermes-s6 health does not say %q:\n%s", parked, h)
	}
	if !strings.Contains(h.stdout, "fix: hermes-s6 logs --profile default") {
		t.Errorf("hermes-s6 health gives no fix naming the profile's logs:\n%s", h)
	}

	// Fixed: the gateway runs again and Docker agrees.
	c.mustExec("hermes", "rm", "/opt/data/standin/default.exit")
	hermesS6(c, "start", "--profile", "default")
	c.waitSlot("gateway-default", "up again", func(s svstat) bool { return s.up && s.wantUp && s.pid > 0 })
	c.waitDockerHealth("healthy", "healthy: supervisor container")
	if h := c.health("hermes"); !h.ok() || !strings.HasPrefix(h.stdout, "healthy: ") {
		t.Errorf("hermes-s6 health after the fix: want exit 0 and healthy\n%s", h)
	}
}

// The dashboard slot (HERMES_DASHBOARD=1) is ready, in s6's sense, once it
// answers HTTP, and health waits for that only as long as the start grace:
// a dashboard that runs but never serves stays up and not ready, and makes
// the container unhealthy.
func TestHealthDashboardReadiness(t *testing.T) {
	setup(t)
	t.Run("serving", func(t *testing.T) {
		setup(t)
		c := startDetached(t, append([]string{"-e", "HERMES_DASHBOARD=1"}, fastHealth...), "gateway", "run")
		c.eventually("status --json: dashboard up and ready", func() (bool, string) {
			s, err := c.slotJSON("dashboard")
			if err != nil {
				return false, err.Error()
			}
			return s.Up && s.WantUp && s.Ready && s.PID > 0, s.String()
		})
		c.eventually("health --json: healthy, gateway and dashboard judged", func() (bool, string) {
			h, err := c.healthJSON("hermes")
			if err != nil {
				return false, err.Error()
			}
			return h.Healthy && h.Role == "supervisor" && h.Slots == 2, fmt.Sprintf("%+v", h)
		})
		c.waitDockerHealth("healthy", "healthy: supervisor container, 2 slot(s)")
	})
	t.Run("mute", func(t *testing.T) {
		setup(t)
		flags := []string{"-e", "HERMES_DASHBOARD=1", "-e", "HERMES_STANDIN_DASHBOARD=mute", "-e", "HERMES_S6_START_GRACE=2s"}
		c := startDetached(t, append(flags, fastHealth...), "gateway", "run")
		c.waitLogs("mute: serving nothing")
		s := c.waitSlot("dashboard", "up past the 2 s start grace", func(s svstat) bool { return s.up && s.pid > 0 && s.seconds >= 3 })
		// s6-notifyoncheck asks every second: three seconds see three
		// answers, none of them ready, and the dashboard is not restarted.
		c.holds(3*time.Second, "dashboard up, not ready, same process", func() (bool, string) {
			n, err := c.slotJSON("dashboard")
			if err != nil {
				return false, err.Error()
			}
			return n.Up && !n.Ready && n.PID == s.pid, fmt.Sprintf("%s (pid was %d)", n, s.pid)
		})
		h := c.health("hermes")
		if h.err != nil || h.code != 1 {
			t.Errorf("hermes-s6 health: want exit 1\n%s", h)
		}
		if !lineWith(h.stdout, "UNHEALTHY dashboard: ", "does not answer HTTP") {
			t.Errorf("hermes-s6 health does not say the dashboard does not answer HTTP:\n%s", h)
		}
		if strings.Contains(h.stdout, "gateway-default") {
			t.Errorf("hermes-s6 health blames the gateway, which runs:\n%s", h)
		}
		c.waitDockerHealth("unhealthy", "but does not answer HTTP yet")
	})
}

// A dashboard container (CMD `dashboard …`) runs no gateway: reconcile
// registers no slot, and health asks the CMD's dashboard for HTTP on its
// --host/--port, a wildcard address on loopback.
func TestHealthDashboardContainer(t *testing.T) {
	setup(t)
	cmd := []string{"dashboard", "--host", "0.0.0.0", "--port", "9119"}
	t.Run("serving", func(t *testing.T) {
		setup(t)
		c := startDetached(t, fastHealth, cmd...)
		c.waitLogs("Hermes dashboard on http://")
		c.eventually("health --json: a healthy dashboard container", func() (bool, string) {
			h, err := c.healthJSON("hermes")
			if err != nil {
				return false, err.Error()
			}
			return h.Healthy && h.Role == "dashboard", fmt.Sprintf("%+v", h)
		})
		c.waitDockerHealth("healthy", "healthy: dashboard container")
		c.eventually("the boot reconcile said it reconciled no slot", func() (bool, string) {
			logs := c.logs()
			return strings.Contains(logs, "reconcile: dashboard container"), tail(logs, 20)
		})
		slots := strings.Fields(c.mustExec("hermes", "ls", "-A", "/run/service"))
		for _, s := range slots {
			if isHermesSlot(s) || strings.HasPrefix(s, ".gateway-") {
				t.Errorf("a dashboard container has slot %s in /run/service: %v", s, slots)
			}
		}
		if out := c.mustExec("hermes", "hermes-s6", "list"); strings.TrimSpace(out) != "" {
			t.Errorf("hermes-s6 list in a dashboard container: %q, want nothing", out)
		}
	})
	t.Run("mute", func(t *testing.T) {
		setup(t)
		c := startDetached(t, append([]string{"-e", "HERMES_STANDIN_DASHBOARD=mute"}, fastHealth...), cmd...)
		c.waitLogs("mute: serving nothing")
		const silent = "UNHEALTHY dashboard (CMD): the dashboard does not answer HTTP on 127.0.0.1:9119"
		c.waitDockerHealth("unhealthy", silent)
		h := c.health("hermes")
		if h.err != nil || h.code != 1 {
			t.Errorf("hermes-s6 health: want exit 1\n%s", h)
		}
		if !strings.Contains(h.stdout, silent) {
			t.Errorf("hermes-s6 health does not say %q:\n%s", silent, h)
		}
	})
}

// lineWith reports whether a line of text starts with prefix and contains
// sub.
func lineWith(text, prefix, sub string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// Without a supervision tree (the entrypoint bypassed, so no /init) health
// has nothing to judge: exit 4, said on stderr, nothing on stdout.
func TestHealthNoTree(t *testing.T) {
	setup(t)
	_, r, _ := runForeground(t, "", []string{"--entrypoint", "/usr/local/bin/hermes-s6"}, "health")
	if r.err != nil || r.code != 4 {
		t.Errorf("health without /init: want exit 4\n%s", r)
	}
	if !strings.Contains(r.stderr, "no s6 supervision tree") {
		t.Errorf("stderr does not say there is no s6 supervision tree:\n%s", r)
	}
	if r.stdout != "" {
		t.Errorf("health wrote to stdout without --json:\n%s", r)
	}
}
