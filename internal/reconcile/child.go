package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
)

// VolumeArgs are the arguments that make hermes-s6 serve one volume
// request on stdin (the hidden `hermes-s6 reconcile volume` command).
var VolumeArgs = []string{"reconcile", "volume"}

// childTimeout bounds one volume request in the child.
const childTimeout = 2 * time.Minute

// AsAccount does the volume work in a child process, a re-exec of this
// hermes-s6 binary running with the service account's uid, gid and
// supplementary groups. Go cannot change the credentials of one thread,
// so the privilege split is a process boundary: root never opens a path on
// the volume, and the kernel checks every access as the account.
//
// One child serves every request of a run (scan, then boot log), one JSON
// request and answer at a time over its stdin and stdout; Close ends it.
// A child per request would cost a Go start-up each on the boot path.
type AsAccount struct {
	Account *account.Account
	// Exe is the hermes-s6 binary to run; "" means this process's own.
	Exe string

	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *json.Decoder
	stderr bytes.Buffer
	cancel context.CancelFunc
}

// request is what the child reads on stdin.
type request struct {
	Scan    *ScanRequest    `json:"scan,omitempty"`
	BootLog *BootLogRequest `json:"boot_log,omitempty"`
}

// response is what the child writes on stdout.
type response struct {
	Scan    *ScanReport    `json:"scan,omitempty"`
	BootLog *BootLogReport `json:"boot_log,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Scan implements Volume.
func (a *AsAccount) Scan(ctx context.Context, req ScanRequest) (*ScanReport, error) {
	var resp response
	if err := a.call(ctx, request{Scan: &req}, &resp); err != nil {
		return nil, err
	}
	if resp.Scan == nil {
		return nil, errors.New("volume worker: empty scan report")
	}
	return resp.Scan, nil
}

// AppendBootLog implements Volume.
func (a *AsAccount) AppendBootLog(ctx context.Context, req BootLogRequest) (*BootLogReport, error) {
	var resp response
	if err := a.call(ctx, request{BootLog: &req}, &resp); err != nil {
		return nil, err
	}
	if resp.BootLog == nil {
		return nil, errors.New("volume worker: empty boot log report")
	}
	return resp.BootLog, nil
}

// start runs the child. Its lifetime spans several calls, so it is bounded
// by childTimeout rather than by one call's context.
func (a *AsAccount) start() error {
	exe := a.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("volume worker: find own binary: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	cmd := exec.CommandContext(ctx, exe, VolumeArgs...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	a.stderr.Reset()
	cmd.Stderr = &a.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid:    uint32(a.Account.UID),
		Gid:    uint32(a.Account.GID),
		Groups: uint32s(a.Account.GroupList()),
	}}
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("volume worker %s %s as %s: %w", exe, strings.Join(VolumeArgs, " "), a.Account.Name, err)
	}
	a.cmd, a.in, a.out, a.cancel = cmd, in, json.NewDecoder(out), cancel
	return nil
}

func (a *AsAccount) call(ctx context.Context, req request, resp *response) error {
	if a.cmd == nil {
		if err := a.start(); err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	go func() {
		if err := json.NewEncoder(a.in).Encode(req); err != nil {
			done <- err
			return
		}
		done <- a.out.Decode(resp)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		// The child died or hung: end it and report what it said.
		werr := a.Close()
		msg := strings.TrimSpace(a.stderr.String())
		if msg == "" && werr != nil {
			msg = werr.Error()
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("volume worker %s as %s: %s", strings.Join(VolumeArgs, " "), a.Account.Name, msg)
	}
	if resp.Error != "" {
		return fmt.Errorf("as %s: %s", a.Account.Name, resp.Error)
	}
	return nil
}

// Close ends the child, if one runs, and waits for it.
func (a *AsAccount) Close() error {
	if a.cmd == nil {
		return nil
	}
	a.in.Close()
	err := a.cmd.Wait()
	a.cancel()
	a.cmd = nil
	return err
}

// uint32s is ids as the kernel's credential wants them.
func uint32s(ids []int) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// ServeVolume is the child's side of AsAccount: it reads requests from in
// until it ends, does each in-process (as whoever runs it) and writes each
// answer to out. A failed request is answered with its error, not an exit
// status.
func ServeVolume(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(io.LimitReader(in, 16<<20))
	dec.DisallowUnknownFields()
	enc := json.NewEncoder(out)
	for {
		var req request
		var resp response
		err := dec.Decode(&req)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			err = fmt.Errorf("read request: %w", err)
		case req.Scan != nil:
			resp.Scan, err = scan(*req.Scan)
		case req.BootLog != nil:
			resp.BootLog, err = appendBootLog(*req.BootLog)
		default:
			err = errors.New("empty request")
		}
		if err != nil {
			resp = response{Error: err.Error()}
		}
		if werr := enc.Encode(resp); werr != nil {
			return werr
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || (err != nil && strings.HasPrefix(err.Error(), "read request")) {
			return nil // a garbled stream cannot be resynchronised
		}
	}
}
