//go:build e2e

package e2e

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// Scenario 11: `docker run --user` with an unknown uid is refused at once,
// with advice.
func TestUserGuard(t *testing.T) {
	setup(t)
	_, r, took := runForeground(t, "", []string{"--user", "1234"}, "gateway", "run")
	if r.err != nil {
		t.Fatalf("%s", r)
	}
	if r.code != 1 {
		t.Errorf("exit code %d, want 1\n%s", r.code, r)
	}
	if out := r.stdout + r.stderr; !strings.Contains(out, "HERMES_UID") && !strings.Contains(out, "PUID") {
		t.Errorf("no advice naming HERMES_UID or PUID:\n%s", out)
	}
	if limit := 20 * time.Second; took > limit {
		t.Errorf("the refusal took %s, want under %s", took.Round(time.Millisecond), limit)
	}
}

// Scenario 12: a CMD's exit code is the container's.
func TestCmdExitCode(t *testing.T) {
	setup(t)
	_, r, _ := runForeground(t, "exit3", nil, "sh", "-c", "exit 3")
	if r.err != nil || r.code != 3 {
		t.Errorf("`sh -c 'exit 3'`: want exit code 3\n%s", r)
	}
	_, r, _ = runForeground(t, "version", nil, "hermes-s6", "version")
	if r.err != nil || r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("`hermes-s6 version`: want exit code 0 and a version\n%s", r)
	}
}

// What hermes-s6 relies on from s6-overlay: s6-svscan
// is PID 1, /run/s6/basedir exists, the s6 tools and with-contenv are in
// /command, and the cont-init hook has run as root (it handed the scandir
// (kept the scandir root's and registered gateway-default) before the CMD.
func TestProviderContract(t *testing.T) {
	setup(t)
	script := `cat /proc/1/comm
test -d /run/s6/basedir && echo basedir
test -x /command/with-contenv && test -x /command/s6-svc && test -x /command/s6-svstat && echo command
stat -c 'scandir-owner=%U' /run/service
test -d /run/service/gateway-default && echo slot-before-cmd`
	_, r, _ := runForeground(t, "", nil, "sh", "-c", script)
	if r.err != nil || r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"s6-svscan\n", "basedir\n", "command\n", "scandir-owner=root\n", "slot-before-cmd\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in the CMD's output:\n%s", strings.TrimSpace(want), r)
		}
	}
}

// copyOut reads one file out of a (possibly stopped) container.
func copyOut(c *container, path string) (string, error) {
	r := docker(time.Minute, "cp", c.name+":"+path, "-")
	if !r.ok() {
		return "", fmt.Errorf("docker cp: %s", r)
	}
	tr := tar.NewReader(strings.NewReader(r.stdout))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("docker cp %s: no file in the archive", path)
		}
		if err != nil {
			return "", fmt.Errorf("docker cp %s: %w", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			return string(b), err
		}
	}
}

// The advice of the --user refusal works: HERMES_UID/HERMES_GID give the
// service account other ids, the volume follows, and the supervised
// gateway runs with them.
func TestServiceAccountIDs(t *testing.T) {
	setup(t)
	c := startDetached(t, []string{"-e", "HERMES_UID=12345", "-e", "HERMES_GID=12346"}, "gateway", "run")
	c.waitSlot("gateway-default", "up", func(s svstat) bool { return s.up })
	var gw proc
	c.waitCmd("the supervised gateway runs as 12345:12346", func(ps, _ []proc) (bool, string) {
		g := gateways(ps)
		if len(g) != 1 {
			return false, fmt.Sprintf("gateways: %v", g)
		}
		gw = g[0]
		status := c.exec("hermes", "cat", fmt.Sprintf("/proc/%d/status", gw.pid)).stdout
		return strings.Contains(status, "\nUid:\t12345\t") && strings.Contains(status, "\nGid:\t12346\t"), status
	})
	if owner := strings.TrimSpace(c.mustExec("hermes", "stat", "-c", "%u:%g", "/opt/data")); owner != "12345:12346" {
		t.Errorf("/opt/data is owned by %s, want 12345:12346", owner)
	}
	if logs := c.logs(); !strings.Contains(logs, "hermes is now 12345:12346") {
		t.Errorf("the id change is not in docker logs:%s", tail(logs, 20))
	}
}
