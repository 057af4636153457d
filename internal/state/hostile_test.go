package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/safefs"
)

// Everything on the volume may have been put there by the service account
// to make root read or write elsewhere. None of it works.
func TestHostileStateFiles(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte(`{"desired_state":"running","token":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path string)
		why   error
	}{
		{"symlink to a secret", func(t *testing.T, p string) { must(t, os.Symlink(secret, p)) }, safefs.ErrLink},
		{"symlink to /dev/zero", func(t *testing.T, p string) { must(t, os.Symlink("/dev/zero", p)) }, safefs.ErrLink},
		{"FIFO", func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o644)) }, safefs.ErrNotRegular},
		{"1 GB file", func(t *testing.T, p string) {
			f, err := os.Create(p)
			must(t, err)
			must(t, f.Truncate(1<<30))
			f.Close()
		}, safefs.ErrTooBig},
		{"directory", func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o755)) }, safefs.ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			p := filepath.Join(home, "gateway_state.json")
			tc.plant(t, p)
			done := make(chan *File, 1)
			go func() {
				f, err := Read(home, "gateway_state.json")
				if err != nil {
					t.Errorf("Read: %v", err)
				}
				done <- f
			}()
			var f *File
			select {
			case f = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Read blocked")
			}
			if f == nil || f.Desired != Corrupt || !errors.Is(f.Problem, tc.why) {
				t.Fatalf("Read: %+v; want corrupt because %v", f, tc.why)
			}
			if _, ok := f.Get("token"); ok {
				t.Fatal("the secret's keys were read")
			}
			if _, err := Write(home, "gateway_state.json", Stopped, nil, nil, time.Unix(1700000000, 0)); err != nil && tc.name != "directory" {
				t.Fatalf("Write: %v", err)
			}
			if b, err := os.ReadFile(secret); err != nil || !bytes.Contains(b, []byte("s3cret")) || bytes.Contains(b, []byte("stopped")) {
				t.Fatalf("the secret outside the volume changed: %q %v", b, err)
			}
			if tc.name == "directory" {
				return
			}
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("after Write the state file is %v %v; want a fresh regular file", fi, err)
			}
			if aside, _ := filepath.Glob(p + ".corrupt-*"); len(aside) != 1 {
				t.Fatalf("the hostile entry was not moved aside: %v", aside)
			}
		})
	}
}

// A profile directory that is a symlink (to /etc/cont-init.d, say) is
// refused: nothing is read or written through it.
func TestSymlinkedProfileDir(t *testing.T) {
	home, target := t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(home, "profiles"), 0o755))
	must(t, os.Symlink(target, filepath.Join(home, "profiles", "x")))
	rel := filepath.Join("profiles", "x", "gateway_state.json")
	if _, err := Read(home, rel); !errors.Is(err, safefs.ErrLink) {
		t.Fatalf("Read through a symlinked profile dir: %v; want ErrLink", err)
	}
	if _, err := Write(home, rel, Running, nil, nil, time.Now()); !errors.Is(err, safefs.ErrLink) {
		t.Fatalf("Write through a symlinked profile dir: %v; want ErrLink", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("something was written through the link: %v", ents)
	}
}

// Keys that are not valid UTF-8 would be rewritten by a JSON round trip:
// the file counts as corrupt and is moved aside whole.
func TestInvalidUTF8KeptWhole(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, "gateway_state.json")
	orig := []byte("{\"desired_state\":\"running\",\"k\xff\":1}")
	must(t, os.WriteFile(p, orig, 0o644))
	f, err := Read(home, "gateway_state.json")
	if err != nil || f.Desired != Corrupt || !strings.Contains(f.Problem.Error(), "UTF-8") {
		t.Fatalf("Read: %+v %v; want corrupt, not valid UTF-8", f, err)
	}
	if _, err := Write(home, "gateway_state.json", Stopped, nil, nil, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p + ".corrupt-1700000000"); err != nil || !bytes.Equal(b, orig) {
		t.Fatalf("the original is not kept byte for byte: %q %v", b, err)
	}
}

// A huge bad value is named, not echoed.
func TestProblemIsClipped(t *testing.T) {
	home := t.TempDir()
	big := `{"desired_state":` + strings.Repeat("9", 500000) + `}`
	must(t, os.WriteFile(filepath.Join(home, "gateway_state.json"), []byte(big), 0o644))
	f, err := Read(home, "gateway_state.json")
	if err != nil || f.Desired != Corrupt {
		t.Fatalf("Read: %+v %v", f, err)
	}
	if n := len(f.Problem.Error()); n > 400 {
		t.Fatalf("the problem quotes %d bytes of the file", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
