package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nousresearch/hermes-s6/internal/hint"
)

// A request is an operation and a valid profile name, nothing else.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		line, err string
	}{
		{`{"op":"register","profile":"coder"}`, ""},
		{`{"op":"register","profile":"coder","start":true}`, ""},
		{`{"op":"unregister","profile":"default"}`, ""},
		{`{"op":"unregister","profile":"coder","start":true}`, "takes no start"},
		{`{"op":"exec","profile":"coder"}`, "unknown operation"},
		{`{"op":"register","profile":"../etc"}`, "profile name"},
		{`{"op":"register","profile":"coder","home":"/etc"}`, "unknown field"},
		{`garbage`, "not a request"},
		{`{"op":"register","profile":"` + strings.Repeat("a", 600) + `"}`, "not a request"},
	} {
		_, err := read(strings.NewReader(tc.line + "\n"))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.60s: %v, want an error with %q", tc.line, err, tc.err)
		}
	}
}

// A round trip on a real socket: the handler sees the request, its error's
// code and hints come back.
func TestServeAndCall(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "b.sock")
	var got []Request
	srv := &Server{Socket: sock, Group: -1, Allowed: []int{os.Getuid()}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Code: func(error) int { return 3 },
		Handle: func(_ context.Context, req Request) error {
			got = append(got, req)
			if req.Profile == "missing" {
				return hint.With(errors.New("slot not registered"), "register it first")
			}
			return nil
		}}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	resp, err := Call(ctx, sock, Request{Op: OpRegister, Profile: "coder", Start: true})
	if err != nil || resp.Code != 0 {
		t.Fatalf("register: %+v %v", resp, err)
	}
	resp, err = Call(ctx, sock, Request{Op: OpUnregister, Profile: "missing"})
	if err != nil || resp.Code != 3 || resp.Error != "slot not registered" || len(resp.Hints) != 1 {
		t.Fatalf("a failing request: %+v %v", resp, err)
	}
	resp, err = Call(ctx, sock, Request{Op: OpRegister, Profile: "Bad"})
	if err != nil || resp.Code != 2 {
		t.Fatalf("an invalid name: %+v %v", resp, err)
	}
	if len(got) != 2 || got[0] != (Request{Op: OpRegister, Profile: "coder", Start: true}) {
		t.Fatalf("the handler saw %+v", got)
	}
	if _, err := Call(ctx, filepath.Join(t.TempDir(), "none.sock"), Request{Op: OpRegister, Profile: "x"}); !errors.Is(err, ErrNoBroker) {
		t.Fatalf("no broker: %v", err)
	}
}

// Only uids on the list (and root) are served; the peer's uid comes from
// the kernel (SO_PEERCRED), here stood in for by another uid.
func TestRefusesOtherUIDs(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "b.sock")
	srv := &Server{Socket: sock, Group: -1, Allowed: []int{10000}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Code: func(error) int { return 1 },
		Handle: func(context.Context, Request) error { t.Error("handled a refused request"); return nil },
		peer:   func(*net.UnixConn) (int, error) { return 10001, nil }}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, ln)
	defer cancel()
	resp, err := Call(ctx, sock, Request{Op: OpRegister, Profile: "coder"})
	if err != nil || resp.Code != 1 || !strings.Contains(resp.Error, "may not ask the broker") {
		t.Fatalf("%+v %v", resp, err)
	}
}

// Listen replaces a stale socket, never anything else.
func TestListenRefusesNonSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.sock")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Server{Socket: p, Group: -1}).Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a file: %v", err)
	}
}
