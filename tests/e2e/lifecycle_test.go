//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// createProfile makes profiles/NAME/SOUL.md on the volume, as the service
// account.
func createProfile(c *container, name string) {
	c.t.Helper()
	dir := "/opt/data/profiles/" + name
	c.mustExec("hermes", "mkdir", "-p", dir)
	c.mustExec("hermes", "touch", dir+"/SOUL.md")
}

// hermesS6 runs `hermes-s6 ARGS…` in the container as the service account
// and fails the test unless it exits 0.
func hermesS6(c *container, args ...string) {
	c.t.Helper()
	c.mustExec("hermes", append([]string{"hermes-s6"}, args...)...)
}

// upSlots lists hermes-s6's slots (gateway-*, dashboard) whose service is
// up. The scandir of a real s6-overlay also holds its own root-only
// services, which are none of the tests' business.
func upSlots(c *container) ([]string, error) {
	r := c.exec("hermes", "ls", "-A", "/run/service")
	if !r.ok() {
		return nil, fmt.Errorf("ls /run/service: %s", r)
	}
	var up []string
	for _, slot := range strings.Fields(r.stdout) {
		if !isHermesSlot(slot) {
			continue
		}
		s, err := c.svstat(slot)
		if err != nil {
			return nil, err
		}
		if s.up {
			up = append(up, slot)
		}
	}
	slices.Sort(up)
	return up, nil
}

// isHermesSlot reports whether a scandir entry is one of hermes-s6's slots.
func isHermesSlot(name string) bool {
	return strings.HasPrefix(name, "gateway-") || name == "dashboard"
}

// Scenario 7: `docker restart` brings back exactly the profiles that were
// running, and the boot log says what it did with each.
func TestRestartKeepsIntent(t *testing.T) {
	setup(t)
	c := startDetached(t, nil, "gateway", "run")
	c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })

	for _, p := range []string{"alpha", "beta"} {
		createProfile(c, p)
		hermesS6(c, "register", "--profile", p)
		hermesS6(c, "start", "--profile", p)
	}
	hermesS6(c, "stop", "--profile", "beta")
	c.waitSlot("gateway-alpha", "up", func(s svstat) bool { return s.up && s.wantUp })
	c.waitSlot("gateway-beta", "down", func(s svstat) bool { return !s.up && !s.wantUp })

	if r := docker(2*time.Minute, "restart", c.name); !r.ok() {
		t.Fatalf("docker restart: %s", r)
	}

	c.waitSlot("gateway-alpha", "up again after the restart", func(s svstat) bool { return s.up && s.wantUp && s.pid > 0 })
	c.waitSlot("gateway-beta", "registered and down after the restart", func(s svstat) bool { return !s.up && !s.wantUp })
	want := []string{"gateway-alpha", "gateway-default"}
	c.eventually(fmt.Sprintf("exactly %v up", want), func() (bool, string) {
		up, err := upSlots(c)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(up, want), fmt.Sprintf("up: %v", up)
	})

	bootLog, err := c.readFile("/opt/data/logs/container-boot.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, fields := range [][]string{
		{"profile=alpha", "prior_state=running", "action=started"},
		{"profile=beta", "prior_state=stopped", "action=registered"},
	} {
		if !hasLineWith(bootLog, fields...) {
			t.Errorf("container-boot.log has no line with %v:\n%s", fields, bootLog)
		}
	}
}

func hasLineWith(text string, fields ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, f := range fields {
			if !strings.Contains(" "+line+" ", " "+f+" ") {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// Scenario 8: a profile created in a running container goes through
// register, start, stop and unregister as the service account, and s6
// agrees at each step.
func TestLiveProfileLifecycle(t *testing.T) {
	setup(t)
	c := startDetached(t, nil, "gateway", "run")
	c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })
	const slot = "gateway-coder"
	createProfile(c, "coder")

	hermesS6(c, "register", "--profile", "coder")
	if s, err := c.svstat(slot); err != nil || s.up || s.wantUp || s.normallyUp {
		t.Fatalf("after register: %s %v, want registered, down, not normally up", s, err)
	}

	hermesS6(c, "start", "--profile", "coder")
	s, err := c.svstat(slot)
	if err != nil || !s.up || !s.wantUp || s.pid <= 0 {
		t.Fatalf("after start: %s %v, want up", s, err)
	}
	ps, err := c.procs()
	if err != nil {
		t.Fatal(err)
	}
	gw, ok := find(ps, s.pid)
	if !ok || gw.comm != "hermes" || !strings.Contains(gw.args, "-p coder gateway run") {
		t.Errorf("the supervised pid %d is not `hermes -p coder gateway run`:\n%s", s.pid, procList(ps))
	}

	hermesS6(c, "stop", "--profile", "coder")
	if s, err := c.svstat(slot); err != nil || s.up || s.wantUp {
		t.Fatalf("after stop: %s %v, want down", s, err)
	}

	hermesS6(c, "unregister", "--profile", "coder")
	if s, err := c.svstat(slot); err == nil {
		t.Errorf("after unregister s6-svstat still reads the slot: %s", s)
	}
	if r := c.exec("hermes", "test", "-e", "/run/service/"+slot); r.ok() {
		t.Errorf("after unregister /run/service/%s still exists", slot)
	}
	ps, err = c.procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.comm == "s6-supervise" && strings.Contains(p.args, slot) {
			t.Errorf("after unregister a supervisor of %s is left: %s", slot, p)
		}
	}
}

// Scenario 9: s6 restarts a gateway killed by SIGKILL; a gateway exiting 78
// (configuration error) is parked down instead.
func TestCrash(t *testing.T) {
	setup(t)
	t.Run("kill -9 restarts", func(t *testing.T) {
		setup(t)
		c := startDetached(t, nil, "gateway", "run")
		s := c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up && s.pid > 0 })
		// Up is the run script (root's) until it holds the lease and execs
		// the gateway, with the same pid: the banner says it has.
		waitBanner(c, "default")
		c.mustExec("hermes", "kill", "-9", strconv.Itoa(s.pid))
		c.waitSlot("gateway-default", fmt.Sprintf("up again with a pid other than %d", s.pid), func(n svstat) bool {
			return n.up && n.pid > 0 && n.pid != s.pid
		})
	})
	t.Run("exit 78 parks", func(t *testing.T) {
		setup(t)
		c := startDetached(t, []string{"-e", "HERMES_STANDIN_EXIT=78"}, "gateway", "run")
		parked := func(s svstat) bool { return !s.up && !s.wantUp && s.exitCode == 78 }
		c.waitSlot("gateway-default", "parked down after exit 78", parked)
		starts := bannerCount(c)
		// s6 spaces restarts one second apart: a window of three would see one.
		c.holds(3*time.Second, "gateway-default stays parked", func() (bool, string) {
			s, err := c.svstat("gateway-default")
			if err != nil {
				return false, err.Error()
			}
			n := bannerCount(c)
			return parked(s) && n == starts, fmt.Sprintf("%s, %d starts (was %d)", s, n, starts)
		})
	})
}

// bannerCount is how many times the default gateway started, per its log.
func bannerCount(c *container) int {
	s, _ := c.readFile("/opt/data/logs/gateways/default/current")
	return strings.Count(s, banner)
}

// Scenario 10: a crash-looping gateway leaves no zombie behind: over ten
// seconds no defunct process outlives the moment it is reaped by its parent.
func TestNoZombies(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", "HERMES_STANDIN_EXIT=1"}, "gateway", "run")
	c.waitSlot("gateway-default", "wants up", func(s svstat) bool { return s.wantUp })

	firstSeen := map[int]time.Time{}
	zombies := func() (bool, string) {
		ps, err := c.procs()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if !strings.HasPrefix(p.stat, "Z") {
				continue
			}
			first, ok := firstSeen[p.pid]
			if !ok {
				firstSeen[p.pid] = time.Now()
				continue
			}
			if time.Since(first) > 2*time.Second {
				return false, fmt.Sprintf("zombie for %s: %s\n%s", time.Since(first).Round(time.Second), p, procList(ps))
			}
		}
		return true, ""
	}
	c.holds(10*time.Second, "no lasting zombie", zombies)

	if n := strings.Count(c.logs(), banner); n < 3 {
		t.Errorf("the gateway started %d times in 10 s, want a crash loop (>= 3)", n)
	}
	eventuallyWithin(t, 3*time.Second, "no zombie at all", func() (bool, string) {
		ps, err := c.procs()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if strings.HasPrefix(p.stat, "Z") {
				return false, p.String()
			}
		}
		return true, ""
	})
}
