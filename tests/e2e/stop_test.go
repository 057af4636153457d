//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The container stop (stage 3 of s6-overlay with the hermes-s6 drain in
// /etc/cont-finish.d): every gateway is taken down through s6 while its
// logger still runs, so what it writes while it shuts down reaches docker
// logs and its rotated file; desired state is left as it was.

// lastLine is what the stand-in gateway writes just before it exits 0.
func lastLine(p string) string { return "gateway " + p + ": last line, exit 0" }

// drainStep is the stand-in's i-th drain line of n.
func drainStep(p string, i, n int) string {
	return fmt.Sprintf("gateway %s: draining, step %d/%d", p, i, n)
}

// stop runs docker stop -t grace and returns how long it took; the
// container must then have exited.
func stop(t *testing.T, c *container, grace time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if r := docker(grace+time.Minute, "stop", "-t", fmt.Sprint(int(grace.Seconds())), c.name); !r.ok() {
		t.Fatalf("docker stop: %s", r)
	}
	took := time.Since(start)
	if st, _ := c.state(); st != "exited" {
		t.Fatalf("after docker stop the container is %s", st)
	}
	t.Logf("docker stop -t %d took %s", int(grace.Seconds()), took.Round(time.Millisecond))
	return took
}

// gatewayLog is a profile's rotated log (current), read out of a possibly
// stopped container.
func gatewayLog(t *testing.T, c *container, p string) string {
	t.Helper()
	s, err := copyOut(c, "/opt/data/logs/gateways/"+p+"/current")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inBoth fails the test unless every line is in docker logs and in p's
// rotated log.
func inBoth(t *testing.T, c *container, p string, lines ...string) {
	t.Helper()
	logs, file := c.logs(), gatewayLog(t, c, p)
	for _, l := range lines {
		if !strings.Contains(logs, l) {
			t.Errorf("%q is not in docker logs:%s", l, tail(logs, 30))
		}
		if !strings.Contains(file, l) {
			t.Errorf("%q is not in logs/gateways/%s/current:%s", l, p, tail(file, 30))
		}
	}
}

// waitBanner waits until profile p's gateway has logged its banner to its
// rotated file, so the logger is known to run.
func waitBanner(c *container, p string) {
	c.t.Helper()
	c.eventually(p+"'s banner in its rotated log", func() (bool, string) {
		s, err := c.readFile("/opt/data/logs/gateways/" + p + "/current")
		return err == nil && strings.Contains(s, banner), tail(s, 5)
	})
}

// A gateway that exits at once on SIGTERM: docker stop returns quickly, the
// gateway's last line is in docker logs and in its rotated file, the
// desired state is byte for byte what it was, and docker start brings the
// gateway back.
func TestDockerStop(t *testing.T) {
	setupAlone(t)
	c := startDetached(t, nil, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up && s.pid > 0 })
	waitBanner(c, "default")
	before, err := c.readFile("/opt/data/gateway_state.json")
	if err != nil {
		t.Fatal(err)
	}

	took := stop(t, c, 20*time.Second)
	if st, code := c.state(); st != "exited" || code != 0 {
		t.Errorf("after docker stop: %s, exit code %d; want exited, 0", st, code)
	}
	// Nothing to wait for: the drain deadline (8 s) and the old 3 s kill
	// grace must both be far off. make e2e-bench measures the real figure.
	if took >= 3*time.Second {
		t.Errorf("docker stop took %s for a gateway that exits at once", took.Round(time.Millisecond))
	}
	inBoth(t, c, "default", "received terminated, shutting down", lastLine("default"))
	after, err := copyOut(c, "/opt/data/gateway_state.json")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("gateway_state.json changed across docker stop:\nbefore %s\nafter  %s", before, after)
	}

	if r := docker(time.Minute, "start", c.name); !r.ok() {
		t.Fatalf("docker start: %s", r)
	}
	c.waitSlot("gateway-default", "up again after docker start", func(s svstat) bool { return s.up && s.wantUp && s.pid > 0 })
}

// A gateway that needs 5 s to drain gets them under docker stop -t 15, and
// every line it writes meanwhile is in both places.
func TestDockerStopSlowDrain(t *testing.T) {
	setup(t)
	const drain = 5 * time.Second
	c := startDetached(t, []string{"-e", "HERMES_STANDIN_DRAIN=" + drain.String()}, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })
	waitBanner(c, "default")

	took := stop(t, c, 15*time.Second)
	if took < drain || took >= 15*time.Second {
		t.Errorf("docker stop took %s; want the %s drain and no kill", took.Round(time.Millisecond), drain)
	}
	n := int(drain / (250 * time.Millisecond))
	lines := []string{lastLine("default")}
	for i := 1; i <= n; i++ {
		lines = append(lines, drainStep("default", i, n))
	}
	inBoth(t, c, "default", lines...)
	if logs := c.logs(); strings.Contains(logs, "killed:") {
		t.Errorf("the drain killed something:%s", tail(logs, 20))
	}
}

// A gateway that ignores SIGTERM is killed through s6 at the drain
// deadline, and docker logs name it; docker stop does not wait for its own
// timeout.
func TestDockerStopStuckGateway(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", "HERMES_STANDIN_EXIT=hold", "-e", "HERMES_S6_DRAIN_TIMEOUT=2s"}, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })
	waitBanner(c, "default")

	took := stop(t, c, 30*time.Second)
	if took < 2*time.Second || took >= 10*time.Second {
		t.Errorf("docker stop took %s; want about the 2 s drain deadline plus the kill grace", took.Round(time.Millisecond))
	}
	logs := c.logs()
	if !strings.Contains(logs, "killed: gateway-default") {
		t.Errorf("docker logs do not name the killed slot:%s", tail(logs, 20))
	}
	if file := gatewayLog(t, c, "default"); !strings.Contains(file, "holding on") {
		t.Errorf("the gateway's answer to SIGTERM is not in its rotated log:%s", tail(file, 10))
	}
}

// The foreground gateway (--no-supervise) gets SIGTERM from the drain, its
// drain time, and its last lines in docker logs.
func TestDockerStopForeground(t *testing.T) {
	setup(t)
	const drain = 2 * time.Second
	c := startDetached(t, []string{"-e", "HERMES_STANDIN_DRAIN=" + drain.String()}, "gateway", "run", "--no-supervise")
	c.waitLogs("gateway profile=default")

	took := stop(t, c, 15*time.Second)
	if took < drain || took >= 15*time.Second {
		t.Errorf("docker stop took %s; want the %s drain and no kill", took.Round(time.Millisecond), drain)
	}
	logs := c.logs()
	n := int(drain / (250 * time.Millisecond))
	for _, l := range []string{"received terminated, shutting down", drainStep("default", n, n), lastLine("default")} {
		if !strings.Contains(logs, l) {
			t.Errorf("%q is not in docker logs:%s", l, tail(logs, 30))
		}
	}
}

// Several gateways and the dashboard drain at once: the stop takes about
// as long as the slowest drain, not the sum of them.
func TestDockerStopParallel(t *testing.T) {
	setupAlone(t)
	const drain = 3 * time.Second
	c := startDetached(t, []string{"-e", "HERMES_DASHBOARD=1", "-e", "HERMES_STANDIN_DRAIN=" + drain.String()}, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })
	profiles := []string{"default", "alpha", "beta", "gamma"}
	for _, p := range profiles[1:] {
		createProfile(c, p)
		hermesS6(c, "register", "--profile", p, "--start")
	}
	for _, p := range profiles {
		waitBanner(c, p)
	}
	c.waitSlot("dashboard", "up", func(s svstat) bool { return s.up })

	took := stop(t, c, 30*time.Second)
	// One after the other would take 4 × 3 s.
	if took < drain || took >= 2*drain {
		t.Errorf("docker stop took %s; want about one %s drain", took.Round(time.Millisecond), drain)
	}
	for _, p := range profiles {
		inBoth(t, c, p, lastLine(p))
	}
	if logs := c.logs(); !strings.Contains(logs, "dashboard received terminated") {
		t.Errorf("the dashboard was not stopped by the drain:%s", tail(logs, 30))
	}
}
