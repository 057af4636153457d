// Package broker is the root side of what the service account may ask of
// root: registering a profile's slot and unregistering it. The scandir
// and every slot in it are root's, so the service account cannot install a
// slot itself; it asks the broker, a small root service that s6-overlay
// supervises (/etc/services.d/hermes-s6-broker), over a unix socket.
//
// The broker trusts nothing but the peer's uid (SO_PEERCRED: root or the
// service account) and a request of two words: the operation and a
// profile name, validated before anything is built from it. It renders
// the slot itself, from its own configuration, never from the client's
// environment or files, and answers with the outcome: exit code, error,
// hints.
package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
)

// DefaultSocket is where the broker listens in the image.
const DefaultSocket = "/run/hermes-s6/broker.sock"

// EnvSocket moves the socket (tests).
const EnvSocket = "HERMES_S6_BROKER"

// Operations.
const (
	OpRegister   = "register"
	OpUnregister = "unregister"
)

// Request is what a client may ask.
type Request struct {
	Op      string `json:"op"`
	Profile string `json:"profile"`
	// Start registers and starts (desired state running).
	Start bool `json:"start,omitempty"`
}

// Response is the outcome.
type Response struct {
	Code  int      `json:"code"`
	Error string   `json:"error,omitempty"`
	Hints []string `json:"hints,omitempty"`
}

// requestMax caps a request line.
const requestMax = 512

// requestTimeout bounds the wait for a request line.
const requestTimeout = 5 * time.Second

// connTimeout bounds one request, from accept to answer.
const connTimeout = 2 * time.Minute

// Handler carries a validated request out; its error's exit code and
// hints go back to the client.
type Handler func(ctx context.Context, req Request) error

// Server serves requests on a unix socket.
type Server struct {
	Socket string
	// Allowed are the uids served besides root.
	Allowed []int
	// Group, when ≥ 0, is the socket's group (mode 0660): only root and
	// that group may connect at all.
	Group  int
	Handle Handler
	Code   func(error) int
	Log    *slog.Logger
	// peer reads the peer's uid (peerUID; tests stand in for another uid).
	peer func(*net.UnixConn) (int, error)
}

// Listen makes the socket: a stale one (left by a broker that died) is
// replaced; anything else at the path is refused.
func (s *Server) Listen() (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(s.Socket), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(s.Socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("broker: %s exists and is not a socket: refusing to replace it", s.Socket)
		}
		if err := os.Remove(s.Socket); err != nil {
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.Socket, Net: "unix"})
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o666)
	if s.Group >= 0 {
		if err := os.Chown(s.Socket, 0, s.Group); err != nil {
			ln.Close()
			return nil, err
		}
		mode = 0o660
	}
	if err := os.Chmod(s.Socket, mode); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers connections on ln until ctx ends, one at a time: a
// register waits for the slot lock anyway.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.serve(ctx, c)
	}
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connTimeout))
	peer := s.peer
	if peer == nil {
		peer = peerUID
	}
	uid, err := peer(c)
	resp := Response{}
	// The request is read in every case, so that a refused client has
	// written it before the answer and the close (no broken pipe for it),
	// and quickly: a client that sends nothing holds the broker 5 s at most.
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	req, rerr := read(c)
	switch {
	case err != nil:
		resp = Response{Code: 1, Error: "broker: cannot tell who is asking: " + err.Error()}
	case uid != 0 && !contains(s.Allowed, uid):
		resp = Response{Code: 1, Error: fmt.Sprintf("broker: uid %d may not ask the broker: only root and the service account may", uid)}
		s.Log.Warn("broker: request refused", "uid", uid)
	case rerr != nil:
		resp = Response{Code: 2, Error: "broker: " + rerr.Error()}
	default:
		s.Log.Info("broker: request", "uid", uid, "op", req.Op, "profile", req.Profile, "start", req.Start)
		if err := s.Handle(ctx, req); err != nil {
			resp = Response{Code: s.Code(err), Error: err.Error(), Hints: hint.Of(err)}
		}
	}
	json.NewEncoder(c).Encode(resp)
}

// read takes one request line and validates it.
func read(c io.Reader) (Request, error) {
	line, err := bufio.NewReader(io.LimitReader(c, requestMax)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return Request{}, err
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("not a request: %v", err)
	}
	if req.Op != OpRegister && req.Op != OpUnregister {
		return Request{}, fmt.Errorf("unknown operation %q (register or unregister)", req.Op)
	}
	if req.Op == OpUnregister && req.Start {
		return Request{}, errors.New("unregister takes no start")
	}
	if err := profile.Validate(req.Profile); err != nil {
		return Request{}, err
	}
	return req, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// peerUID is the uid of the process at the other end (SO_PEERCRED).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// ErrNoBroker: nothing listens on the socket.
var ErrNoBroker = errors.New("no hermes-s6 broker")

// Call asks the broker at socket and returns its answer.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Response{}, hint.With(fmt.Errorf("%w at %s: %v", ErrNoBroker, socket, err),
			"registering a slot needs root: in the image the broker service does it for the service account (is /etc/services.d/hermes-s6-broker running? `hermes-s6 status` as root, or run the command as root)")
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(connTimeout))
	}
	werr := json.NewEncoder(c).Encode(req)
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, fmt.Errorf("broker %s: %w", socket, werr)
		}
		return Response{}, fmt.Errorf("broker %s: no answer: %w", socket, err)
	}
	// An answer counts even when the broker closed before all of the
	// request was written (a refusal).
	return resp, nil
}
