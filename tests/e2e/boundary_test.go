//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// The gateway runs an agent as the service account, so the account must
// not become root through the supervision tree: the scandir, every slot
// and s6-svscan's control are root's. It still drives its gateways and
// registers new profiles (through the root broker).
func TestPrivilegeBoundary(t *testing.T) {
	setup(t)
	c := startDetached(t, nil, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })

	for _, attack := range []string{
		// A new slot that root's s6-svscan would run.
		`mkdir /run/service/evil`,
		// Rewrite what s6-supervise runs as root for an existing slot.
		`printf '#!/bin/sh\nid > /run/service/pwned\nexec sleep 1d\n' > /run/service/gateway-default/run`,
		`mv /run/service/gateway-default /run/service/gateway-moved`,
		`touch /run/service/gateway-default/down`,
		`rm -f /run/service/gateway-default/finish`,
		// Drive s6-svscan itself.
		`/command/s6-svscanctl -a /run/service`,
	} {
		if r := c.exec("hermes", "sh", "-c", attack); r.ok() {
			t.Errorf("as hermes, %q succeeded:\n%s", attack, r)
		}
	}
	if r := c.exec("", "test", "-e", "/run/service/pwned"); r.ok() {
		t.Fatal("/run/service/pwned exists: something ran as root")
	}
	if owner := strings.TrimSpace(c.mustExec("", "stat", "-c", "%U", "/run/service", "/run/service/gateway-default", "/run/service/gateway-default/run")); owner != "root\nroot\nroot" {
		t.Errorf("owners: %q, want root for the scandir and the slot", owner)
	}

	// What the account may do, it still can.
	hermesS6(c, "stop", "--profile", "default")
	c.waitSlot("gateway-default", "down", func(s svstat) bool { return !s.up && !s.wantUp })
	hermesS6(c, "start", "--profile", "default")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })
	hermesS6(c, "status", "--json")
	createProfile(c, "coder")
	hermesS6(c, "register", "--profile", "coder", "--start")
	c.waitSlot("gateway-coder", "up", func(s svstat) bool { return s.up })
	if owner := strings.TrimSpace(c.mustExec("", "stat", "-c", "%U", "/run/service/gateway-coder/run")); owner != "root" {
		t.Errorf("gateway-coder/run registered by hermes through the broker is owned by %s, want root", owner)
	}
	hermesS6(c, "unregister", "--profile", "coder")
	if r := c.exec("", "test", "-e", "/run/service/gateway-coder"); r.ok() {
		t.Error("unregister through the broker left the slot")
	}
}
