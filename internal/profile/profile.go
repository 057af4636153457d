// Package profile owns gateway profile names and every path derived from one.
//
// A name is validated (docs/slot.md: Profile names) before any path is built from it: Layout's
// methods take only names that passed Validate, so no input can reach outside
// the scandir or HERMES_HOME.
package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Default is the root profile: it lives at HERMES_HOME itself.
const Default = "default"

// MaxLen is the longest accepted profile name, in bytes.
const MaxLen = 64

// Rule is the naming rule, quoted in every rejection.
const Rule = "a profile name is 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"

// ErrInvalidName is wrapped by every rejection from Validate.
var ErrInvalidName = errors.New("invalid profile name")

// Validate reports whether name is an acceptable profile name.
func Validate(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty: %s", ErrInvalidName, Rule)
	case len(name) > MaxLen:
		return fmt.Errorf("%w: %d bytes long: %s", ErrInvalidName, len(name), Rule)
	case !nameChars(name):
		return fmt.Errorf("%w %s: %s", ErrInvalidName, strconv.Quote(name), Rule)
	}
	return nil
}

// nameChars is ^[a-z0-9][a-z0-9_-]*$ for a non-empty name, written out:
// every command validates a name, and compiling a regexp at start-up cost
// each of them more than the check itself (FuzzValidate holds the two to
// agreement).
func nameChars(name string) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// SlotPrefix starts the s6 service directory name of every gateway slot.
const SlotPrefix = "gateway-"

// SlotName is the s6 service directory name for a (valid) profile.
func SlotName(name string) string { return SlotPrefix + name }

// Layout locates the scandir and the data volume.
type Layout struct {
	Home    string // HERMES_HOME, the data volume
	Scandir string // s6 scan directory, e.g. /run/service
}

// ProfileDir is where a profile's data lives: HERMES_HOME for default.
func (l Layout) ProfileDir(name string) string {
	if name == Default {
		return l.Home
	}
	return filepath.Join(l.Home, "profiles", name)
}

// SlotDir is the s6 service directory of a profile's gateway.
func (l Layout) SlotDir(name string) string { return filepath.Join(l.Scandir, SlotName(name)) }

// StateFile is the profile's persisted desired state.
func (l Layout) StateFile(name string) string {
	return filepath.Join(l.ProfileDir(name), "gateway_state.json")
}

// StateRel is StateFile relative to Home: what state.Read and state.Write
// take, so they walk down from the volume's root without following links.
func (l Layout) StateRel(name string) string {
	if name == Default {
		return "gateway_state.json"
	}
	return filepath.Join("profiles", name, "gateway_state.json")
}

// LogDir is where s6-log keeps the profile's rotated gateway log.
func (l Layout) LogDir(name string) string {
	return filepath.Join(l.Home, "logs", "gateways", name)
}

// ErrNoProfile is wrapped when a named profile has no directory with SOUL.md.
var ErrNoProfile = errors.New("profile does not exist")

// Exists reports whether a valid profile exists: default always does; a
// named profile needs profiles/NAME/SOUL.md as a regular file.
func (l Layout) Exists(name string) error {
	if name == Default {
		return nil
	}
	dir := l.ProfileDir(name)
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%w: %s is a symbolic link: refused (a profile lives on the data volume, not where a link points)", ErrNoProfile, d)
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%w: %s is not a directory", ErrNoProfile, d)
		}
	}
	soul := filepath.Join(dir, "SOUL.md")
	fi, err := os.Stat(soul)
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s has no SOUL.md (%s)", ErrNoProfile, name, soul)
	}
	return nil
}

// Skipped is a directory under profiles/ that is not a usable profile.
type Skipped struct {
	Dir    string
	Reason string
}

// Scan lists the valid named profiles under HERMES_HOME/profiles, sorted,
// and the entries it skipped with the reason. A missing profiles/ directory
// is not an error.
func (l Layout) Scan() (names []string, skipped []Skipped, err error) {
	dir := filepath.Join(l.Home, "profiles")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list profiles: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case !e.IsDir():
			skipped = append(skipped, Skipped{p, "not a directory"})
		case e.Name() == Default:
			skipped = append(skipped, Skipped{p, "the default profile lives at HERMES_HOME itself, not under profiles/"})
		case Validate(e.Name()) != nil:
			skipped = append(skipped, Skipped{p, "invalid name: " + Rule})
		case l.Exists(e.Name()) != nil:
			skipped = append(skipped, Skipped{p, "no SOUL.md"})
		default:
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, skipped, nil
}
