package lease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadHolderSinceFromTheFileTime(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "logs", "gateways", "coder")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// What the leased pass of log/run writes (templates/log-run.tmpl).
	rec := filepath.Join(dir, HolderFile)
	if err := os.WriteFile(rec, []byte(`{"host":"hermes-gateway-1","container":"","pid":42}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if err := os.Chtimes(rec, at, at); err != nil {
		t.Fatal(err)
	}
	h, ok, err := ReadHolder(home, dir)
	if err != nil || !ok || h.PID != 42 || h.Host != "hermes-gateway-1" || !h.Since.Equal(at) {
		t.Fatalf("holder: %+v %v %v", h, ok, err)
	}
	if s := h.String(); s != "hermes-gateway-1, pid 42, since 2026-12-02T08:00:00Z" {
		t.Fatalf("holder words: %s", s)
	}
}

func TestContainerIn(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct{ name, mountinfo, want string }{
		{"docker", "1 0 8:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n", id},
		{"after a non-id", "1 0 0:1 /x/containers/abc/y /a rw\n2 0 8:1 /var/lib/docker/containers/" + id + "/hosts /etc/hosts rw\n", id},
		{"upper case is not an id", "1 0 8:1 /containers/" + strings.ToUpper(id) + "/hostname /etc/hostname\n", ""},
		{"none", "21 26 0:20 / /proc rw,relatime - proc proc rw\n", ""},
	} {
		if got := containerIn(c.mountinfo); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Root reads the holder record without following a symlink: one planted
// by the account is refused, not read through.
func TestReadHolderNeverFollowsALink(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "logs", "gateways", "coder")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(`{"host":"leak","pid":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, HolderFile)); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := ReadHolder(home, dir); err == nil || ok || h.Host == "leak" {
		t.Fatalf("a symlinked holder record must be refused: %+v %v %v", h, ok, err)
	}
	if _, ok, err := ReadHolder(home, filepath.Join(home, "logs", "gateways", "none")); ok || err != nil {
		t.Fatalf("no record: want ok false and no error, got %v %v", ok, err)
	}
}
