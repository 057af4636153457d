// Package drain takes a container's gateways down through s6 when the
// container stops, before s6-overlay's stage 3 kills what is left.
//
// On `docker stop` s6-overlay runs its stage 3: s6-rc brings its own
// services down (the /etc/cont-finish.d scripts run there), then
// s6-linux-init-shutdownd sends every remaining process SIGTERM and, after
// S6_KILL_GRACETIME, SIGKILL. The slots in the scandir are not s6-rc
// services, so without a drain a gateway and its s6-log get SIGTERM at the
// same moment: the lines the gateway writes while it shuts down are lost,
// and it has only the kill grace to finish.
//
// Run is the cont-finish.d hook's work. Within one deadline it:
//
//  1. sends SIGTERM to the foreground gateway, if the shim recorded one
//     (`gateway run --no-supervise`), and s6-svc -d to every gateway slot
//     at once: no desired state on the volume changes, so the next boot
//     brings back exactly what was running;
//  2. waits (s6-svwait -D) until they are down and their finish scripts
//     are done, then does the same for the dashboard;
//  3. kills what is still up at the deadline (s6-svc -k, SIGKILL for the
//     foreground gateway) and names it in one line;
//  4. waits until each drained slot's logger has read everything its
//     gateway wrote: s6-log exits on SIGTERM without reading what is still
//     in its pipe, so the final SIGTERM must find the pipes empty.
//
// The loggers themselves are left up: stage 3 stops them after this.
package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// DefaultTimeout fits docker stop's default 10 s with room for the rest of
// stage 3.
const DefaultTimeout = 8 * time.Second

// EnvTimeout sets the deadline (a Go duration).
const EnvTimeout = "HERMES_S6_DRAIN_TIMEOUT"

// EnvFinishMaxTime is s6-overlay's bound on each cont-finish.d script, in
// milliseconds (0 or unset: none). A drain longer than it would be killed
// before it could kill what is left, so Run stays under it.
const EnvFinishMaxTime = "S6_KILL_FINISH_MAXTIME"

// finishMargin is what Run leaves of S6_KILL_FINISH_MAXTIME for the kill
// and the logger wait after the deadline.
const finishMargin = 1500 * time.Millisecond

// afterKill bounds the wait for killed slots' finish scripts and for the
// loggers to catch up, past the deadline.
const afterKill = time.Second

// Options say what to drain and how: the shared Env (its Layout.Scandir
// and Tools) and the drain's own settings.
type Options struct {
	config.Env
	// Timeout is the deadline for everything to be down.
	Timeout time.Duration
	// Foreground is the shim's record of a foreground gateway ("" or a
	// missing file: none).
	Foreground string
	// Out gets one line per event worth an operator's eye (docker logs).
	Out io.Writer
}

// Report says what Run did.
type Report struct {
	// Drained are the slots told to go down, and "foreground" for the
	// foreground gateway: all down now, but for Killed.
	Drained []string
	// Killed are those still up at the deadline, killed.
	Killed []string
	// Took is the whole drain.
	Took time.Duration
}

// Capped returns timeout bounded by S6_KILL_FINISH_MAXTIME (finishMS, in
// milliseconds, 0 for none) less the margin the kill needs, and whether it
// had to be cut.
func Capped(timeout time.Duration, finishMS int) (time.Duration, bool) {
	if finishMS <= 0 {
		return timeout, false
	}
	limit := time.Duration(finishMS)*time.Millisecond - finishMargin
	if limit < 0 {
		limit = 0
	}
	if timeout > limit {
		return limit, true
	}
	return timeout, false
}

// Run drains the container's slots and foreground gateway.
func Run(ctx context.Context, o Options) (Report, error) {
	start := time.Now()
	deadline := start.Add(o.Timeout)
	var rep Report

	inv, err := slot.Take(o.Layout.Scandir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("drain: read scandir: %w", err)
	}
	var gateways, dashboard []string
	for _, dir := range inv.Dirs(o.Layout.Scandir) {
		if ok, _ := s6.Supervised(dir); !ok {
			continue
		}
		if filepath.Base(dir) == render.DashboardSlot {
			dashboard = append(dashboard, dir)
		} else {
			gateways = append(gateways, dir)
		}
	}

	fg, fgErr := readForeground(o.Foreground)
	if fgErr != nil {
		fmt.Fprintf(o.Out, "hermes-s6: drain: %v\n", fgErr)
	}
	if fg != nil {
		if err := fg.signal(syscall.SIGTERM); err == nil {
			rep.Drained = append(rep.Drained, "foreground")
		}
	}

	var errs []error
	var killed []string
	for _, group := range [][]string{gateways, dashboard} {
		if len(group) == 0 {
			continue
		}
		if err := down(ctx, o.Tools, group); err != nil {
			errs = append(errs, err)
		}
		for _, d := range group {
			rep.Drained = append(rep.Drained, filepath.Base(d))
		}
		if err := o.Tools.WaitDown(ctx, s6.Remaining(deadline), group...); err != nil {
			if !errors.Is(err, s6.ErrTimeout) {
				errs = append(errs, err)
			}
			killed = append(killed, stillUp(ctx, o.Tools, group)...)
			// The dashboard gets no time of its own once the deadline has
			// passed: it is killed with the gateways.
		}
	}
	if fg != nil && !fg.waitGone(ctx, deadline) {
		if fg.signal(syscall.SIGKILL) == nil {
			rep.Killed = append(rep.Killed, "foreground gateway (pid "+strconv.Itoa(fg.pid)+")")
		}
	}
	if len(killed) > 0 {
		for _, dir := range killed {
			if err := o.Tools.Kill(ctx, dir); err != nil {
				errs = append(errs, err)
			}
			rep.Killed = append(rep.Killed, filepath.Base(dir))
		}
		// Their finish scripts run now; s6 bounds them (timeout-finish).
		_ = o.Tools.WaitDown(ctx, afterKill, killed...)
	}
	if len(rep.Killed) > 0 {
		fmt.Fprintf(o.Out, "hermes-s6: drain: still up after %s, killed: %s\n", o.Timeout, strings.Join(rep.Killed, ", "))
	}
	loggersCaughtUp(ctx, o.Tools, append(gateways, dashboard...), time.Now().Add(afterKill))
	rep.Took = time.Since(start)
	return rep, errors.Join(errs...)
}

// down sends s6-svc -d to every dir at once (one s6-svc each: s6 before
// 2.13 takes one service directory per call).
func down(ctx context.Context, t s6.Tools, dirs []string) error {
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.Down(ctx, dir, s6.NoWait, 0)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stillUp are the dirs whose process is still up.
func stillUp(ctx context.Context, t s6.Tools, dirs []string) []string {
	var out []string
	for _, dir := range dirs {
		if st, err := t.Status(ctx, dir); err != nil || st.Up {
			out = append(out, dir)
		}
	}
	return out
}

// loggersCaughtUp waits, until deadline, for the logger of each slot to
// have read everything in its pipe.
func loggersCaughtUp(ctx context.Context, t s6.Tools, dirs []string, deadline time.Time) {
	var wg sync.WaitGroup
	for _, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := t.Status(ctx, filepath.Join(dir, "log"))
			if err != nil || !st.Up || st.PID <= 0 {
				return
			}
			// Past the deadline the logger is left to stage 3 as it is.
			_ = s6.Until(ctx, deadline, "the logger of "+dir+" to catch up", func() (bool, error) {
				n, err := Unread(st.PID)
				return err != nil || n == 0, nil
			})
		}()
	}
	wg.Wait()
}

// Unread is how many bytes wait in process pid's standard input, a pipe:
// FIONREAD on a second read end opened through /proc, which takes nothing
// from the pipe.
func Unread(pid int) (int, error) {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/fd/0", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, e
	}
	return int(n), nil
}
