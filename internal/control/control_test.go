package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// fakeS6 stands in for the s6 tools behind s6.Tools.Exec: it records every
// call (tool name and arguments) and answers with the exit code set for
// that tool (0 unless told otherwise).
type fakeS6 struct {
	mu    sync.Mutex
	calls []string
	codes map[string]int
}

func (f *fakeS6) exec(_ context.Context, argv []string) ([]byte, []byte, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := filepath.Base(argv[0]) + " " + strings.Join(argv[1:], " ")
	f.calls = append(f.calls, call)
	code := f.codes[filepath.Base(argv[0])]
	var stderr []byte
	if code == 99 {
		stderr = []byte(filepath.Base(argv[0]) + ": fatal: timed out\n")
	}
	return nil, stderr, code, nil
}

func (f *fakeS6) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// index is where the first call starting with prefix is, -1 when none.
func (f *fakeS6) index(prefix string) int {
	return slices.IndexFunc(f.seen(), func(c string) bool { return strings.HasPrefix(c, prefix) })
}

type fixture struct {
	t   *testing.T
	m   *Manager
	s6  *fakeS6
	env config.Env
}

// newFixture is a Manager on a temporary HERMES_HOME and scandir, whose
// s6 tools are fakeS6. s6-svscan is "running" while the fixture holds its
// control FIFO open for reading, as s6-svscan does.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	home, scandir, bin := filepath.Join(root, "home"), filepath.Join(root, "service"), filepath.Join(root, "bin")
	for _, d := range []string{home, scandir, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"s6-svc", "s6-svscanctl", "s6-svstat", "s6-svwait", "s6-svdt"} {
		if err := os.WriteFile(filepath.Join(bin, tool), []byte("#!/bin/sh\nexit 111\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{t: t, s6: &fakeS6{codes: map[string]int{}}}
	f.env = config.Env{
		Layout: profile.Layout{Home: home, Scandir: scandir},
		Tools:  s6.Tools{Dir: bin, Exec: f.s6.exec},
		Slot: render.Config{Kind: render.Gateway, Home: home, Shebang: render.ShebangSh, Hermes: "hermes",
			LogArchives: render.DefaultLogArchives, LogSize: render.DefaultLogSize, Stderr: "log"},
		Identity: account.Resolve(nil),
	}
	f.m = New(f.env)
	return f
}

// listen makes a FIFO at path with a reader, as a running s6 supervisor
// keeps its control FIFO.
func (f *fixture) listen(path string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		f.t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { r.Close() })
}

func (f *fixture) tree() { f.listen(filepath.Join(f.env.Layout.Scandir, ".s6-svscan", "control")) }

// supervised installs p's slot (down) and makes it look taken over by
// s6-supervise.
func (f *fixture) supervised(p string) string {
	f.t.Helper()
	if _, err := f.m.Install(p, false, false); err != nil {
		f.t.Fatal(err)
	}
	dir := f.env.Layout.SlotDir(p)
	f.listen(filepath.Join(dir, "supervise", "control"))
	if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), make([]byte, 35), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return dir
}

func (f *fixture) desired(p string) state.Desired {
	f.t.Helper()
	st, err := state.Read(f.env.Layout.Home, f.env.Layout.StateRel(p))
	if err != nil {
		f.t.Fatal(err)
	}
	return st.Desired
}

var wait = Wait{Timeout: 5 * time.Second}

// The order of the checks fixes the exit code when several fail: an
// invalid name (2) before an unregistered slot (3) before no tree (4),
// and none of them runs an s6 tool.
func TestPrecedence(t *testing.T) {
	ops := map[string]func(*Manager, context.Context, string, Wait) error{
		"start": (*Manager).Start, "stop": (*Manager).Stop, "restart": (*Manager).Restart, "unregister": (*Manager).Unregister,
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if err := op(f.m, ctx, "../x", wait); !errors.Is(err, profile.ErrInvalidName) {
				t.Errorf("invalid name, no slot, no tree: %v; want ErrInvalidName", err)
			}
			if err := op(f.m, ctx, "coder", wait); !errors.Is(err, ErrNotRegistered) {
				t.Errorf("no slot, no tree: %v; want ErrNotRegistered", err)
			}
			if _, err := f.m.Install("coder", false, false); err != nil {
				t.Fatal(err)
			}
			if err := op(f.m, ctx, "coder", wait); !errors.Is(err, s6.ErrNoTree) {
				t.Errorf("no tree: %v; want ErrNoTree", err)
			}
			if calls := f.s6.seen(); len(calls) != 0 {
				t.Errorf("failed checks ran s6 tools: %q", calls)
			}
			if _, err := os.Stat(f.env.Layout.StateFile("coder")); !os.IsNotExist(err) {
				t.Errorf("failed checks wrote desired state: %v", err)
			}
		})
	}
}

// Restart takes the gateway down and waits for its finish script (-D)
// before it sends -u, also with NoWait, which only skips waiting for up.
func TestRestartOrder(t *testing.T) {
	for _, noWait := range []bool{false, true} {
		f := newFixture(t)
		f.tree()
		dir := f.supervised("default")
		if err := f.m.Restart(context.Background(), "default", Wait{Timeout: 5 * time.Second, NoWait: noWait}); err != nil {
			t.Fatal(err)
		}
		down, finished, up := f.s6.index("s6-svc -d "+dir), f.s6.index("s6-svwait -D"), f.s6.index("s6-svc -u "+dir)
		if down < 0 || finished < 0 || up < 0 || up < down || up < finished {
			t.Fatalf("noWait=%t: want s6-svc -d and s6-svwait -D before s6-svc -u; calls:\n%s", noWait, strings.Join(f.s6.seen(), "\n"))
		}
		// A slot that declares readiness is waited for up and ready (-U).
		if waitedUp := f.s6.index("s6-svwait -U") >= 0; waitedUp == noWait {
			t.Errorf("noWait=%t: waited for up: %t; calls:\n%s", noWait, waitedUp, strings.Join(f.s6.seen(), "\n"))
		}
		if d := f.desired("default"); d != state.Running {
			t.Errorf("desired state after restart: %s, want running", d)
		}
	}
}

// Start and stop record the intent on the volume and keep the down file
// in step with it, so a container restart honours it.
func TestStartStopRecordIntent(t *testing.T) {
	f := newFixture(t)
	f.tree()
	dir := f.supervised("default")
	ctx := context.Background()

	if err := f.m.Start(ctx, "default", wait); err != nil {
		t.Fatal(err)
	}
	if d := f.desired("default"); d != state.Running {
		t.Errorf("after start: desired %s, want running", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "down")); !os.IsNotExist(err) {
		t.Errorf("after start the down file is still there: %v", err)
	}
	if f.s6.index("s6-svc -u "+dir) < 0 || f.s6.index("s6-svwait -U") < 0 {
		t.Errorf("start did not send -u and wait for up and ready:\n%s", strings.Join(f.s6.seen(), "\n"))
	}

	if err := f.m.Stop(ctx, "default", wait); err != nil {
		t.Fatal(err)
	}
	if d := f.desired("default"); d != state.Stopped {
		t.Errorf("after stop: desired %s, want stopped", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "down")); err != nil {
		t.Errorf("after stop there is no down file: %v", err)
	}
	if f.s6.index("s6-svc -d "+dir) < 0 || f.s6.index("s6-svwait -D") < 0 {
		t.Errorf("stop did not send -d and wait for down and finish:\n%s", strings.Join(f.s6.seen(), "\n"))
	}
}

// A wait that runs out is ErrTimeout naming what was awaited; a tool that
// fails is reported with its argv and exit code.
func TestToolFailures(t *testing.T) {
	f := newFixture(t)
	f.tree()
	f.supervised("default")
	f.s6.codes["s6-svwait"] = 99
	err := f.m.Start(context.Background(), "default", wait)
	if !errors.Is(err, s6.ErrTimeout) || !strings.Contains(err.Error(), "gateway-default to be up") {
		t.Errorf("a timed-out wait: %v; want ErrTimeout naming the slot and up", err)
	}

	f.s6.codes["s6-svwait"] = 0
	f.s6.codes["s6-svc"] = 111
	err = f.m.Stop(context.Background(), "default", wait)
	var ee *s6.ExitError
	if !errors.As(err, &ee) || ee.Code != 111 || !strings.HasSuffix(ee.Argv[0], "s6-svc") {
		t.Errorf("a failing s6-svc: %v; want its ExitError", err)
	}
}
