package lease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHoldRecordsTheHolder(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "logs", "gateways", "coder")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A leftover s6-log lock the account can open stays as it is.
	lock := filepath.Join(dir, "lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(lock)
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if err := Hold(dir, now); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(lock); err != nil || !os.SameFile(before, after) {
		t.Fatalf("a usable lock must never be replaced: %v", err)
	}
	h, ok, err := ReadHolder(home, dir)
	host, _ := os.Hostname()
	if err != nil || !ok || h.PID != os.Getpid() || h.Host != host || !h.Since.Equal(now) {
		t.Fatalf("holder: %+v %v %v", h, ok, err)
	}
	if s := h.String(); !strings.Contains(s, host) || !strings.Contains(s, "since 2026-12-02T08:00:00Z") {
		t.Fatalf("holder words: %s", s)
	}
}

// A lock that is no regular file the account can open (here a symlink,
// which s6-log would follow) is replaced; s6-log then makes a fresh one.
func TestHoldReplacesAnUnusableLock(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "lock")); err != nil {
		t.Fatal(err)
	}
	if err := Hold(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "lock")); !os.IsNotExist(err) {
		t.Fatalf("the symlinked lock should be gone: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatal("the link's target was touched")
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
