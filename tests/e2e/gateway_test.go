//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scenario 1: the historical `docker run IMAGE gateway run` becomes a
// supervised gateway; the CMD holds the container up with `sleep infinity`
// and says so in the logs.
func TestGatewayRunIsSupervised(t *testing.T) {
	setup(t)
	c := startDetached(t, nil, "gateway", "run")

	c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })
	c.waitCmd("the CMD process is `sleep infinity`", func(_, cmd []proc) (bool, string) {
		return len(cmd) == 1 && isHold(cmd[0]), fmt.Sprintf("CMD processes: %v", cmd)
	})
	logs := c.waitLogs("s6 supervision")
	if !strings.Contains(logs, "--no-supervise") {
		t.Errorf("the breadcrumb does not name the opt-out --no-supervise; docker logs:%s", tail(logs, 30))
	}
	c.holds(2*time.Second, "the container keeps running", func() (bool, string) {
		st, code := c.state()
		return st == "running", fmt.Sprintf("container %s (exit %d)", st, code)
	})
}

// Scenario 2: `--no-supervise` keeps the pre-s6 behaviour.
func TestGatewayRunNoSuperviseFlag(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", marker}, "gateway", "run", "--no-supervise")
	assertForeground(t, c)
}

// Scenario 3: HERMES_GATEWAY_NO_SUPERVISE=1 is the same opt-out.
func TestGatewayRunNoSuperviseEnv(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", "HERMES_GATEWAY_NO_SUPERVISE=1", "-e", marker}, "gateway", "run")
	assertForeground(t, c)
}

// marker is a variable given to `docker run -e`: a gateway, supervised or
// not, must find it in its environment (API keys travel that way).
const marker = "HERMES_E2E_MARKER=from-docker-run"

// hasEnv reports whether process pid has the variable kv (NAME=VALUE).
func hasEnv(c *container, pid int, kv string) bool {
	c.t.Helper()
	environ := c.mustExec("hermes", "cat", "/proc/"+strconv.Itoa(pid)+"/environ")
	return strings.Contains("\x00"+environ, "\x00"+kv+"\x00")
}

// assertForeground checks an opted-out `gateway run`: the gateway is the CMD
// process itself, outside s6, with the container environment; no
// breadcrumb; gateway-default is registered by the boot reconcile but does
// not want up.
func assertForeground(t *testing.T, c *container) {
	t.Helper()
	ps := c.waitCmd("the gateway is the CMD process", func(_, cmd []proc) (bool, string) {
		return len(cmd) == 1 && cmd[0].comm == "hermes" && strings.Contains(cmd[0].args, "gateway run"),
			fmt.Sprintf("CMD processes: %v", cmd)
	})
	gw := cmdProcs(ps)[0]
	if strings.Contains(gw.args, "--no-supervise") {
		t.Errorf("--no-supervise was handed to the gateway: %s", gw)
	}
	if !hasEnv(c, gw.pid, marker) {
		t.Errorf("the foreground gateway lacks %s from `docker run -e`", marker)
	}
	if all := gateways(ps); len(all) != 1 {
		t.Errorf("want exactly one gateway process (the CMD), got %d:\n%s", len(all), procList(ps))
	}
	for _, p := range ps {
		if isHold(p) {
			t.Errorf("a `sleep infinity` runs although the redirect was opted out: %s", p)
		}
	}
	c.waitLogs(banner)
	s := c.waitSlot("gateway-default", "registered by the boot reconcile", func(svstat) bool { return true })
	if s.wantUp || s.up {
		t.Errorf("gateway-default: %s, want not wanted up and down (the opt-out must not start it)", s)
	}
	if logs := c.logs(); strings.Contains(logs, "s6 supervision") {
		t.Errorf("the redirect breadcrumb was printed despite the opt-out; docker logs:%s", tail(logs, 30))
	}
}

// Scenario 4: the supervised gateway does not redirect again (the
// HERMES_S6_SUPERVISED_CHILD guard): one gateway, one `sleep infinity`.
func TestSupervisedGatewayDoesNotRecurse(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", marker}, "gateway", "run")

	s := c.waitSlot("gateway-default", "up for 2 s in a row", func(s svstat) bool {
		return s.up && s.pid > 0 && s.seconds >= 2
	})
	ps := c.waitCmd("the CMD process is `sleep infinity`", func(_, cmd []proc) (bool, string) {
		return len(cmd) == 1 && isHold(cmd[0]), fmt.Sprintf("CMD processes: %v", cmd)
	})
	gw := gateways(ps)
	if len(gw) != 1 {
		t.Fatalf("want exactly one gateway process, got %d:\n%s", len(gw), procList(ps))
	}
	if gw[0].pid != s.pid {
		t.Errorf("the gateway process %s is not the supervised one (s6-svstat pid %d)", gw[0], s.pid)
	}
	if parent, ok := find(ps, gw[0].ppid); !ok || parent.comm != "s6-supervise" || !strings.HasSuffix(parent.args, "gateway-default") {
		t.Errorf("the gateway's parent is %s, want s6-supervise gateway-default", parent)
	}
	holds := 0
	for _, p := range ps {
		if isHold(p) {
			holds++
		}
	}
	if holds != 1 {
		t.Errorf("want exactly one `sleep infinity` (the CMD), got %d:\n%s", holds, procList(ps))
	}
	for _, kv := range []string{"HERMES_S6_SUPERVISED_CHILD=1", marker} {
		if !hasEnv(c, s.pid, kv) {
			t.Errorf("the supervised gateway's environment lacks %s", kv)
		}
	}
}

// Scenario 5: HERMES_DASHBOARD=1 supervises the dashboard beside the
// gateway; without it the dashboard slot is down with no process.
func TestDashboard(t *testing.T) {
	setup(t)
	t.Run("enabled", func(t *testing.T) {
		setup(t)
		c := startDetached(t, []string{"-e", "HERMES_DASHBOARD=1"}, "gateway", "run")
		c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })
		c.waitSlot("dashboard", "wants up and is up", func(s svstat) bool { return s.wantUp && s.up })
		c.eventually("the dashboard answers HTTP 200 on 127.0.0.1:9119", func() (bool, string) {
			r := c.exec("hermes", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "http://127.0.0.1:9119/")
			return r.ok() && r.stdout == "200", r.String()
		})
	})
	t.Run("disabled", func(t *testing.T) {
		setup(t)
		c := startDetached(t, nil, "gateway", "run")
		c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })
		s := c.waitSlot("dashboard", "registered", func(svstat) bool { return true })
		if s.up || s.wantUp || s.pid > 0 {
			t.Errorf("dashboard: %s, want down with no process", s)
		}
		ps, err := c.procs()
		if err != nil {
			t.Fatal(err)
		}
		if d := dashboards(ps); len(d) > 0 {
			t.Errorf("dashboard processes run without HERMES_DASHBOARD:\n%s", procList(d))
		}
	})
}

// Scenario 6: the banner reaches docker logs raw and the rotated log file
// with an ISO 8601 stamp.
func TestBannerInDockerLogsAndLogFile(t *testing.T) {
	setup(t)
	c := startDetached(t, nil, "gateway", "run")

	c.eventually("a raw banner line in docker logs", func() (bool, string) {
		logs := c.logs()
		for _, line := range strings.Split(logs, "\n") {
			if strings.HasPrefix(strings.TrimRight(line, "\r"), banner) {
				return true, ""
			}
		}
		return false, tail(logs, 30)
	})
	stamped := regexp.MustCompile(`(?m)^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?\s+` + regexp.QuoteMeta(banner))
	c.eventually("a stamped banner line in logs/gateways/default/current", func() (bool, string) {
		s, err := c.readFile("/opt/data/logs/gateways/default/current")
		if err != nil {
			return false, err.Error()
		}
		return stamped.MatchString(s), tail(s, 20)
	})
}
