package reconcile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBootRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runtime")
	if b, err := ReadBoot(dir); err != nil || b != (Boot{}) {
		t.Fatalf("no record: got %+v, %v; want a zero Boot, no error", b, err)
	}
	if err := WriteBoot(dir, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBoot(dir); err != nil || b != (Boot{This: true}) {
		t.Fatalf("after a good boot: got %+v, %v; want this boot's, not failed", b, err)
	}
	if err := WriteBoot(dir, errors.New("read the volume /opt/data:\n  permission denied")); err != nil {
		t.Fatal(err)
	}
	want := Boot{This: true, Failed: "read the volume /opt/data: permission denied"}
	if b, err := ReadBoot(dir); err != nil || b != want {
		t.Fatalf("after a failed boot: got %+v, %v; want %+v", b, err, want)
	}

	// A record an earlier container left on a /run that outlived it.
	id, err := bootID()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootFile), []byte("pid1-start 1"+id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBoot(dir); err != nil || b.This {
		t.Fatalf("another boot's record: got %+v, %v; want not this boot's", b, err)
	}

	// A symlink is not followed (the record is root's; nothing else's is read).
	if err := os.Remove(filepath.Join(dir, BootFile)); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(other, []byte("pid1-start "+id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(dir, BootFile)); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBoot(dir); err == nil || b.This {
		t.Fatalf("a symlinked record: got %+v, %v; want an error", b, err)
	}
}
