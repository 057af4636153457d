package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

func TestPrintOrderAndTail(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "@400000006000000000000000.s"), []byte("1\n2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "@400000006000000100000000.s"), []byte("3\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "current"), []byte("4\n5"), 0o644)
	os.WriteFile(filepath.Join(dir, "state"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o644)
	var b bytes.Buffer
	if _, err := Print(&b, dir, 0); err != nil || b.String() != "1\n2\n3\n4\n5" {
		t.Fatalf("Print: %q %v", b.String(), err)
	}
	b.Reset()
	if _, err := Print(&b, dir, 2); err != nil || b.String() != "4\n5" {
		t.Fatalf("Print tail 2: %q %v", b.String(), err)
	}
}

func TestSymlinkRefused(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "logs")
	os.Symlink(real, link)
	if _, err := Print(&bytes.Buffer{}, link, 0); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlinked log dir: %v", err)
	}
}

// Follow sees lines appended before and after a rotation exactly once.
func TestFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "current")
	os.WriteFile(cur, []byte("old\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out s6tree.SyncBuffer
	pos, err := Print(&out, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- Follow(ctx, &out, dir, pos, 5*time.Millisecond) }()

	appendTo := func(p, s string) {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	want := "old\n"
	for i := 0; i < 50; i++ {
		line := fmt.Sprintf("line %d\n", i)
		appendTo(cur, line)
		want += line
		if i%10 == 9 { // rotate like s6-log: rename current, start a new one
			os.Rename(cur, filepath.Join(dir, fmt.Sprintf("@4000000060000000%08d.s", i)))
			appendTo(cur, "")
		}
	}
	s6tree.Poll(5*time.Second, func() bool { return out.String() == want })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow: %v", err)
	}
	if out.String() != want {
		t.Fatalf("followed %d lines, want %d:\n%s", strings.Count(out.String(), "\n"), strings.Count(want, "\n"), out.String())
	}
}
