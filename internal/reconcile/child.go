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
	"os/user"
	"strconv"
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
type AsAccount struct {
	Account *account.Account
	// Exe is the hermes-s6 binary to run; "" means this process's own.
	Exe string
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
func (a AsAccount) Scan(ctx context.Context, req ScanRequest) (*ScanReport, error) {
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
func (a AsAccount) AppendBootLog(ctx context.Context, req BootLogRequest) (*BootLogReport, error) {
	var resp response
	if err := a.call(ctx, request{BootLog: &req}, &resp); err != nil {
		return nil, err
	}
	if resp.BootLog == nil {
		return nil, errors.New("volume worker: empty boot log report")
	}
	return resp.BootLog, nil
}

func (a AsAccount) call(ctx context.Context, req request, resp *response) error {
	exe := a.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("volume worker: find own binary: %w", err)
		}
	}
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, VolumeArgs...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid:    uint32(a.Account.UID),
		Gid:    uint32(a.Account.GID),
		Groups: groups(a.Account),
	}}
	runErr := cmd.Run()
	if err := json.Unmarshal(stdout.Bytes(), resp); err == nil && resp.Error != "" {
		return fmt.Errorf("as %s: %s", a.Account.Name, resp.Error)
	}
	if runErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = runErr.Error()
		}
		return fmt.Errorf("volume worker %s %s as %s: %s", exe, strings.Join(VolumeArgs, " "), a.Account.Name, msg)
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		return fmt.Errorf("volume worker as %s: bad answer: %w", a.Account.Name, err)
	}
	return nil
}

// groups lists the account's supplementary group ids (its primary group
// at least), as a login would set them.
func groups(a *account.Account) []uint32 {
	out := []uint32{uint32(a.GID)}
	u, err := user.LookupId(strconv.Itoa(a.UID))
	if err != nil {
		return out
	}
	ids, err := u.GroupIds()
	if err != nil {
		return out
	}
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil && uint32(g) != uint32(a.GID) {
			out = append(out, uint32(g))
		}
	}
	return out
}

// ServeVolume is the child's side of AsAccount: it reads one request from
// in, does it in-process (as whoever runs it) and writes the answer to out.
// A failed request is answered with its error, not an exit status.
func ServeVolume(in io.Reader, out io.Writer) error {
	var req request
	var resp response
	dec := json.NewDecoder(io.LimitReader(in, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	switch {
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
	return json.NewEncoder(out).Encode(resp)
}
