// Package lease is the per-profile lease on the volume (docs/scale-out.md):
// one gateway per profile across every container that mounts the volume.
//
// A slot's logger takes the lease: its log/run runs s6-setlock (blocking)
// on the log directory's `lease` file, then `hermes-s6 lease`, which writes
// who holds it beside the lock and execs s6-log with `-d 3`, so s6 marks
// the logger ready only once it holds the lease and has the log directory.
// The slot's run waits for its logger to be ready before the gateway
// starts, and the gateway itself runs under s6-setlock on `gateway.lock`,
// so two gateways of one profile never run at once even if a logger dies.
// A second container's logger waits in s6-setlock, silently, and its
// gateway waits on it: when the holder's container stops, its logger exits
// last (after the drain), and the standby takes over at once.
//
// Everything here runs as the service account on its own directory, except
// ReadHolder, which root may call: it never follows a symlink.
package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/nousresearch/hermes-s6/internal/safefs"
)

// Files in a slot's log directory.
const (
	LockFile    = "lease"        // s6-setlock's lock: held by the logger
	HolderFile  = "holder"       // who holds it (Holder, JSON)
	GatewayLock = "gateway.lock" // s6-setlock's lock: held by the gateway
	// WaitMarker is created in the slot directory by run while it waits for
	// its logger to hold the lease.
	WaitMarker = "lease-wait"
)

// Holder is who holds a lease.
type Holder struct {
	Host      string    `json:"host"`
	Container string    `json:"container,omitempty"`
	PID       int       `json:"pid"`
	Since     time.Time `json:"since"`
}

// String is the holder in a few words, for status, health and doctor.
func (h Holder) String() string {
	s := h.Host
	if s == "" {
		s = "an unknown host"
	}
	if h.Container != "" && len(h.Container) >= 12 && h.Container[:12] != h.Host {
		s += " (container " + h.Container[:12] + ")"
	}
	s += ", pid " + strconv.Itoa(h.PID)
	if !h.Since.IsZero() {
		s += ", since " + h.Since.UTC().Format(time.RFC3339)
	}
	return s
}

// Hold runs in the logger's chain once s6-setlock has the lease: it
// replaces an s6-log lock the account cannot open (one root left; a
// leftover that the account can open blocks nothing and stays, since
// s6-log's lock is an flock), records the holder in dir/holder atomically,
// and returns; the caller then execs s6-log, keeping the lease descriptor.
func Hold(dir string, now time.Time) error {
	lock := filepath.Join(dir, "lock")
	if f, err := os.OpenFile(lock, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		if rerr := os.Remove(lock); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("s6-log's lock %s cannot be opened (%v) nor replaced: %w", lock, err, rerr)
		}
	}
	host, _ := os.Hostname()
	b, err := json.Marshal(Holder{Host: host, Container: containerID(), PID: os.Getpid(), Since: now.UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	return renameio.WriteFile(filepath.Join(dir, HolderFile), append(b, '\n'), 0o644)
}

// containerRE finds a Docker container id in /proc/self/mountinfo (the
// bind mounts of /etc/hostname and friends name it).
var containerRE = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

func containerID() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	if m := containerRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// ReadHolder reads the holder record in logDir, a path below home, without
// following a symlink or blocking; root may call it. A missing record is
// ok false.
func ReadHolder(home, logDir string) (h Holder, ok bool, err error) {
	rel, err := filepath.Rel(home, logDir)
	if err != nil {
		return h, false, err
	}
	d, err := safefs.OpenDir(home, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	defer d.Close()
	b, err := d.ReadFile(HolderFile, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, false, fmt.Errorf("lease holder record %s: %w", filepath.Join(logDir, HolderFile), err)
	}
	return h, true, nil
}
