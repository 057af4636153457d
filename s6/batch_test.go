package s6

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeSvstat is an s6-svstat that answers "up" with the number at the end
// of the directory's name as the pid, fails for a name with "fail" in it
// and warns first for one with "warn".
const fakeSvstat = `#!/bin/sh
[ "$1 $2" = "-o ` + StatusFields + `" ] || { echo "s6-svstat: usage" >&2; exit 100; }
case $3 in
  *fail*) echo "s6-svstat: fatal: unable to read status for $3: boom" >&2; exit 111 ;;
  *warn*) echo "s6-svstat: warning: odd" >&2 ;;
esac
echo "true true true false ${3##*-} -1 NA 5"
`

// supervisedDir makes dir look like a directory s6-supervise runs: a
// control FIFO with a reader and a status file.
func supervisedDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "supervise", "control")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), make([]byte, 35), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fakeTools(t *testing.T) Tools {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "s6-svstat"), []byte(fakeSvstat), 0o755); err != nil {
		t.Fatal(err)
	}
	return Tools{Dir: bin}
}

// Statuses answers like Status, slot by slot and in order, whether it runs
// s6-svstat from Go (a few slots) or from shell loops (many).
func TestStatusesMatchesStatus(t *testing.T) {
	tools := fakeTools(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for _, n := range []int{3, batchMin, 5 * batchMin} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			root := t.TempDir()
			var dirs []string
			for i := range n {
				name := fmt.Sprintf("svc-%d", i+1)
				switch i {
				case 1:
					name = fmt.Sprintf("warn-%d", i+1)
				case n - 1:
					name = fmt.Sprintf("fail-%d", i+1)
				}
				d := filepath.Join(root, name)
				if i == 2 {
					// Unsupervised, and down on pickup.
					if err := os.MkdirAll(d, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(d, "down"), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				} else {
					supervisedDir(t, d)
				}
				dirs = append(dirs, d)
			}
			var mu sync.Mutex
			shells := 0
			batched := tools
			batched.Exec = func(ctx context.Context, argv []string) ([]byte, []byte, int, error) {
				mu.Lock()
				if argv[0] == Shell {
					shells++
				}
				mu.Unlock()
				return spawn(ctx, argv[0], argv)
			}
			sts, errs := batched.Statuses(context.Background(), dirs)
			want := min(3, (n-1)/batchMin) // GOMAXPROCS 3, n-1 supervised
			if want < 2 {
				want = 0 // a few slots: s6-svstat runs from Go
			}
			if shells != want {
				t.Errorf("%d shell loops for %d supervised dirs, want %d", shells, n-1, want)
			}
			if len(sts) != n || len(errs) != n {
				t.Fatalf("%d statuses and %d errors for %d dirs", len(sts), len(errs), n)
			}
			for i, d := range dirs {
				want, werr := tools.Status(context.Background(), d)
				if sts[i] != want {
					t.Errorf("%s: %+v, want %+v", filepath.Base(d), sts[i], want)
				}
				if (errs[i] == nil) != (werr == nil) {
					t.Fatalf("%s: error %v, want %v", filepath.Base(d), errs[i], werr)
				}
				if werr == nil {
					continue
				}
				var got, exp *ExitError
				if !errors.As(errs[i], &got) || !errors.As(werr, &exp) {
					t.Fatalf("%s: error %v, want an ExitError like %v", filepath.Base(d), errs[i], werr)
				}
				if got.Code != exp.Code || strings.Join(got.Argv, " ") != strings.Join(exp.Argv, " ") || strings.TrimSpace(got.Stderr) != strings.TrimSpace(exp.Stderr) {
					t.Errorf("%s: error %q, want %q", filepath.Base(d), errs[i], werr)
				}
			}
			if sts[0].PID != 1 || !sts[0].Supervised || sts[2].Supervised || sts[2].NormallyUp {
				t.Errorf("unexpected answers: %+v", sts[:3])
			}
		})
	}
}

// A shell that cannot run leaves every slot it had with an error, and the
// others answered.
func TestStatusesShellFails(t *testing.T) {
	tools := fakeTools(t)
	defer func(s string) { Shell = s }(Shell)
	Shell = filepath.Join(t.TempDir(), "no-sh")
	root := t.TempDir()
	var dirs []string
	for i := range 2 * batchMin {
		d := filepath.Join(root, fmt.Sprintf("svc-%d", i+1))
		supervisedDir(t, d)
		dirs = append(dirs, d)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	_, errs := tools.Statuses(context.Background(), dirs)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "no-sh") {
			t.Fatalf("dir %d: error %v, want one naming the shell", i, err)
		}
	}
}

// A missing s6-svstat is ErrToolMissing for every supervised slot.
func TestStatusesToolMissing(t *testing.T) {
	tools := Tools{Dir: t.TempDir()}
	root := t.TempDir()
	var dirs []string
	for i := range 2 * batchMin {
		d := filepath.Join(root, fmt.Sprintf("svc-%d", i+1))
		supervisedDir(t, d)
		dirs = append(dirs, d)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	_, errs := tools.Statuses(context.Background(), dirs)
	for i, err := range errs {
		if !errors.Is(err, ErrToolMissing) {
			t.Fatalf("dir %d: error %v, want ErrToolMissing", i, err)
		}
	}
}
