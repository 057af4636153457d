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

	"github.com/google/renameio/v2"
	"github.com/nousresearch/hermes-s6/internal/account"
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

// Read loads path. A missing file gives Desired None; a file that does not
// parse, or whose state is not understood, gives Corrupt with Problem set.
// Only I/O errors other than "does not exist" are returned as errors.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Path: path, Desired: None}, nil
	}
	if err != nil {
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
			return Corrupt, fmt.Errorf("desired_state is not a string: %s", raw)
		}
		switch Desired(s) {
		case Running, Stopped:
			return Desired(s), nil
		}
		return Corrupt, fmt.Errorf("desired_state %q: want running or stopped", s)
	}
	if raw, ok := keys["gateway_state"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Corrupt, fmt.Errorf("gateway_state is not a string: %s", raw)
		}
		switch s {
		case "running", "draining", "degraded":
			return Running, nil
		}
		return Stopped, nil
	}
	return None, nil
}

// Get returns the raw JSON of another key, for callers and tests.
func (f *File) Get(key string) (json.RawMessage, bool) {
	v, ok := f.keys[key]
	return v, ok
}

// Write records desired state d at path atomically (temp file + rename),
// keeping every other key of the current file. extra adds or replaces keys
// (e.g. migrated_from). A corrupt current file is moved aside to
// PATH.corrupt-<epoch> first and the returned note says so. When owner is
// set the file is created owned by that account.
func Write(path string, d Desired, extra map[string]any, owner *account.Account, now time.Time) (note string, err error) {
	if d != Running && d != Stopped {
		return "", fmt.Errorf("desired state %q: want running or stopped", d)
	}
	cur, err := Read(path)
	if err != nil {
		return "", err
	}
	if cur.Desired == Corrupt {
		aside := path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
		if err := os.Rename(path, aside); err != nil {
			return "", fmt.Errorf("move corrupt desired state aside: %w", err)
		}
		note = fmt.Sprintf("%v; moved it aside to %s and wrote a fresh one", cur.Problem, aside)
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
	return note, writeAtomic(path, b, owner)
}

func writeAtomic(path string, b []byte, owner *account.Account) error {
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(0o644))
	if err != nil {
		return fmt.Errorf("write desired state %s: %w", path, err)
	}
	defer pf.Cleanup()
	if owner != nil {
		if err := pf.Chown(owner.UID, owner.GID); err != nil {
			return fmt.Errorf("write desired state %s: chown to %s: %w", path, owner.Name, err)
		}
	}
	if _, err := pf.Write(b); err != nil {
		return fmt.Errorf("write desired state %s: %w", path, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write desired state %s: %w", path, err)
	}
	return nil
}
