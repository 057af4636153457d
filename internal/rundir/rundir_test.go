package rundir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "hermes-s6")
	if b, err := Read(dir, "rec", 16); b != nil || err != nil {
		t.Fatalf("no record: %q %v; want nil, nil", b, err)
	}
	if err := Write(dir, "rec", []byte("0123456789abcdefXYZ\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "rec")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("record: %v %v; want mode 0644", fi, err)
	}
	if b, err := Read(dir, "rec", 16); err != nil || string(b) != "0123456789abcdef" {
		t.Fatalf("capped read: %q %v", b, err)
	}
	if err := Write(dir, "rec", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "rec")); !os.IsNotExist(err) {
		t.Fatalf("empty data should remove the record: %v", err)
	}
	if err := Write(dir, "rec", nil); err != nil {
		t.Fatalf("removing no record: %v", err)
	}
}

// A symlink is never followed: root reads only its own records.
func TestReadRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "rec")); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(dir, "rec", 64); err == nil || b != nil {
		t.Fatalf("symlinked record: %q %v; want an error", b, err)
	}
}

func TestDir(t *testing.T) {
	if d := Dir(func(string) string { return "" }); d != Default {
		t.Fatalf("Dir without %s = %s", Env, d)
	}
	if d := Dir(func(k string) string { return map[string]string{Env: "/tmp/x"}[k] }); d != "/tmp/x" {
		t.Fatalf("Dir = %s", d)
	}
}
