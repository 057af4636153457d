// Package lease is the per-profile lease on the volume (docs/scale-out.md):
// one gateway per profile across every container that mounts the volume.
//
// A slot's logger takes the lease: its log/run runs s6-setlock (blocking)
// on the log directory's `lease` file, then runs itself again ("leased"),
// which records who holds it beside the lock (HolderFile) and execs s6-log
// with `-d 3`, so s6 marks the logger ready only once it holds the lease
// and has the log directory. The slot's run waits for its logger to be
// ready before the gateway starts, and the gateway itself runs under
// s6-setlock on `gateway.lock`, so two gateways of one profile never run at
// once even if a logger dies. A second container's logger waits in
// s6-setlock, silently, and its gateway waits on it: when the holder's
// container stops, its logger exits last (after the drain), and the
// standby takes over at once.
//
// All of that is shell in templates/log-run.tmpl, run as the service
// account on its own directory: no Go process per logger start. What is
// here is what root does: find the container's id for boot reconcile to
// record (ContainerID, ContainerFile) and read the holder record
// (ReadHolder), never following a symlink.
package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nousresearch/hermes-s6/internal/safefs"
)

// Files in a slot's log directory.
const (
	LockFile    = "lease"        // s6-setlock's lock: held by the logger
	HolderFile  = "holder"       // who holds it (Holder, JSON, without since)
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
	Since     time.Time `json:"since"` // the record's file time when it does not say
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

// ContainerFile is the runtime record (internal/rundir) that holds the
// container's id: boot reconcile writes it, every logger's leased pass
// reads it.
const ContainerFile = "container"

// containerMark precedes a Docker container id in /proc/self/mountinfo (the
// bind mounts of /etc/hostname and friends name it).
const containerMark = "/containers/"

// ContainerID is the id of the Docker container this process runs in, ""
// when none shows in /proc/self/mountinfo.
func ContainerID() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	return containerIn(string(b))
}

// containerIn finds the container id in a mountinfo text.
func containerIn(s string) string {
	for {
		i := strings.Index(s, containerMark)
		if i < 0 {
			return ""
		}
		s = s[i+len(containerMark):]
		if id, _, ok := strings.Cut(s, "/"); ok && len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
			return id
		}
	}
}

// ReadHolder reads the holder record in logDir, a path below home, without
// following a symlink or blocking; root may call it. A missing record is
// ok false. The record does not say since when: its file's time does (the
// leased pass writes it once, as it takes the lease).
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
	b, fi, err := d.ReadFileInfo(HolderFile, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, false, fmt.Errorf("lease holder record %s: %w", filepath.Join(logDir, HolderFile), err)
	}
	if h.Since.IsZero() {
		h.Since = fi.ModTime().UTC().Truncate(time.Second)
	}
	return h, true, nil
}
