// Package state reads and writes a profile's persisted desired state,
// gateway_state.json (docs/slot.md: Desired state): what the operator last asked for, so a
// container restart brings back exactly the gateways that were running.
//
// The file is shared with the gateway itself, which keeps its own keys in
// it; every key but desired_state and updated_at is preserved verbatim.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nousresearch/hermes-s6/internal/account"
	"github.com/nousresearch/hermes-s6/internal/safefs"
)

// Desired is the operator's intent for a slot.
type Desired string

const (
	Running Desired = "running"
	Stopped Desired = "stopped"
	None    Desired = "none"    // no state file
	Corrupt Desired = "corrupt" // a state file that does not parse
)

// File is a state file as read.
type File struct {
	Path    string
	Desired Desired
	// Problem says why the file counts as corrupt; nil otherwise.
	Problem error
	keys    map[string]json.RawMessage
}

var bom = []byte("\xef\xbb\xbf")

// MaxSize is the most of a state file hermes-s6 reads: a gateway's own
// keys fit many times over; /dev/zero or a 1 GB file does not.
const MaxSize = 1 << 20

// Read loads rel, a state file's path relative to the volume's root home
// (Layout.StateRel). It never follows a symlink below home, never blocks on
// a FIFO and reads at most MaxSize (safefs), so root may call it. A missing
// file (or profile directory) gives Desired None; a file that does not
// parse, whose state is not understood, or that is a symlink, not a
// regular file or too big, gives Corrupt with Problem set. A profile
// directory that is a symlink, and I/O failures, are errors.
func Read(home, rel string) (*File, error) {
	d, err := safefs.OpenDir(home, filepath.Dir(rel))
	if errors.Is(err, os.ErrNotExist) {
		return &File{Path: filepath.Join(home, rel), Desired: None}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read desired state: %w", err)
	}
	defer d.Close()
	return read(d, home, rel)
}

func read(d *safefs.Dir, home, rel string) (*File, error) {
	path := filepath.Join(home, rel)
	b, err := d.ReadFile(filepath.Base(rel), MaxSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &File{Path: path, Desired: None}, nil
	case errors.Is(err, safefs.ErrLink), errors.Is(err, safefs.ErrNotRegular), errors.Is(err, safefs.ErrTooBig):
		return &File{Path: path, Desired: Corrupt, Problem: err}, nil
	case err != nil:
		return nil, fmt.Errorf("read desired state: %w", err)
	}
	return Parse(path, b), nil
}

// Parse interprets b, the content of the state file at path, as Read does,
// for callers that open the file themselves (doctor, which never follows a
// symlink on the volume).
func Parse(path string, b []byte) *File {
	f := &File{Path: path, Desired: None}
	b = bytes.TrimPrefix(b, bom)
	if !utf8.Valid(b) {
		// encoding/json would replace the bad bytes in keys and so
		// rewrite keys that must be kept: such a file is moved aside
		// whole instead.
		f.Desired, f.Problem = Corrupt, fmt.Errorf("%s: not valid UTF-8", path)
		return f
	}
	if err := json.Unmarshal(b, &f.keys); err != nil || f.keys == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		f.Desired, f.Problem, f.keys = Corrupt, fmt.Errorf("%s: %w", path, err), nil
		return f
	}
	f.Desired, f.Problem = interpret(f.keys)
	if f.Problem != nil {
		f.Desired, f.Problem = Corrupt, fmt.Errorf("%s: %w", path, f.Problem)
	}
	return f
}

// interpret applies the rules of docs/slot.md (Desired state): desired_state wins; without it the gateway's
// own gateway_state decides (draining and degraded still count as running).
func interpret(keys map[string]json.RawMessage) (Desired, error) {
	if raw, ok := keys["desired_state"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Corrupt, fmt.Errorf("desired_state is not a string: %s", clip(raw))
		}
		switch Desired(s) {
		case Running, Stopped:
			return Desired(s), nil
		}
		return Corrupt, fmt.Errorf("desired_state %s: want running or stopped", clip([]byte(strconv.Quote(s))))
	}
	if raw, ok := keys["gateway_state"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Corrupt, fmt.Errorf("gateway_state is not a string: %s", clip(raw))
		}
		switch s {
		case "running", "draining", "degraded":
			return Running, nil
		}
		return Stopped, nil
	}
	return None, nil
}

// clipAt is how much of a bad value a message quotes.
const clipAt = 64

// clip shortens a bad value quoted in a message: a warning names the
// problem, it does not echo a 1 MB value into every log line.
func clip(b []byte) string {
	if len(b) <= clipAt {
		return string(b)
	}
	return fmt.Sprintf("%s… (%d bytes)", b[:clipAt], len(b))
}

// Get returns the raw JSON of another key, for callers and tests.
func (f *File) Get(key string) (json.RawMessage, bool) {
	v, ok := f.keys[key]
	return v, ok
}

// Write records desired state d in rel below home atomically (a fresh
// temporary file renamed over it, never written through, safefs),
// keeping every other key of the current file. extra adds or replaces keys
// (e.g. migrated_from). A corrupt current file is moved aside to
// PATH.corrupt-<epoch> first and the returned note says so. When owner is
// set the file is created owned by that account.
func Write(home, rel string, d Desired, extra map[string]any, owner *account.Account, now time.Time) (note string, err error) {
	if d != Running && d != Stopped {
		return "", fmt.Errorf("desired state %q: want running or stopped", d)
	}
	dir, err := safefs.OpenDir(home, filepath.Dir(rel))
	if err != nil {
		return "", fmt.Errorf("write desired state: %w", err)
	}
	defer dir.Close()
	cur, err := read(dir, home, rel)
	if err != nil {
		return "", err
	}
	name := filepath.Base(rel)
	if cur.Desired == Corrupt {
		aside := name + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
		if err := dir.Rename(name, aside); err != nil {
			return "", fmt.Errorf("move corrupt desired state aside: %w", err)
		}
		note = fmt.Sprintf("%v; moved it aside to %s and wrote a fresh one", cur.Problem, filepath.Join(dir.Path(), aside))
	}
	keys := cur.keys
	if keys == nil {
		keys = map[string]json.RawMessage{}
	}
	set := func(k string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("desired state key %s: %w", k, err)
		}
		keys[k] = raw
		return nil
	}
	for k, v := range extra {
		if err := set(k, v); err != nil {
			return note, err
		}
	}
	if err := set("desired_state", string(d)); err != nil {
		return note, err
	}
	if err := set("updated_at", now.Unix()); err != nil {
		return note, err
	}
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return note, err
	}
	b = append(b, '\n')
	if err := dir.WriteFile(name, b, 0o644, owner); err != nil {
		return note, fmt.Errorf("write desired state: %w", err)
	}
	return note, nil
}
