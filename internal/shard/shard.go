// Package shard decides which profiles a container supervises
// (docs/scale-out.md): all of them by default, or those HERMES_S6_PROFILES
// names (names and globs), and of those, with HERMES_S6_SHARD=I/N (or
// HERMES_S6_SHARDS=N and a host name ending in -I, as a StatefulSet pod's
// does), only the ones whose rendezvous hash picks shard I.
//
// Rendezvous (highest random weight) hashing gives each profile a weight
// per shard and the profile goes to the heaviest: going from N to N+1
// shards moves only the profiles the new shard wins, about 1/(N+1) of
// them, where hash-mod-N would move most. Every container computes the same
// answer from the name alone, with no coordination; the per-profile lease
// (docs/scale-out.md) keeps a profile from running twice while shards
// disagree during a re-shard.
package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Environment variables that select profiles.
const (
	EnvProfiles = "HERMES_S6_PROFILES"
	EnvShard    = "HERMES_S6_SHARD"
	EnvShards   = "HERMES_S6_SHARDS"
)

// MaxShards bounds N: a typo such as 1/1000000 is refused, not computed.
const MaxShards = 4096

// Selection is which profiles this container supervises.
type Selection struct {
	// Patterns are HERMES_S6_PROFILES's names and globs; none selects all.
	Patterns []string
	// Index and Count are the shard, 0 ≤ Index < Count; Count 0 means
	// no sharding.
	Index, Count int
	// Source says where the shard came from, for messages.
	Source string
}

// FromEnv reads the selection from the environment; hostname is the
// container's (for HERMES_S6_SHARDS). Bad values are errors that name the
// variable and the fix.
func FromEnv(getenv func(string) string, hostname string) (Selection, error) {
	var s Selection
	var errs []error
	if raw := strings.TrimSpace(getenv(EnvProfiles)); raw != "" {
		for _, p := range strings.Split(raw, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if _, err := path.Match(p, ""); err != nil || strings.Contains(p, "/") {
				errs = append(errs, fmt.Errorf("%s: %q is not a profile name or glob (e.g. coder, team-*, ops-?)", EnvProfiles, p))
				continue
			}
			s.Patterns = append(s.Patterns, p)
		}
		if len(s.Patterns) == 0 && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%s=%q names no profile: unset it to supervise every profile", EnvProfiles, raw))
		}
	}
	switch one, n := strings.TrimSpace(getenv(EnvShard)), strings.TrimSpace(getenv(EnvShards)); {
	case one != "":
		i, c, ok := strings.Cut(one, "/")
		idx, err1 := strconv.Atoi(i)
		cnt, err2 := strconv.Atoi(c)
		if !ok || err1 != nil || err2 != nil || cnt < 1 || cnt > MaxShards || idx < 0 || idx >= cnt {
			errs = append(errs, fmt.Errorf("%s=%q: want I/N with 0 ≤ I < N ≤ %d, e.g. 0/3 for the first of three shards", EnvShard, one, MaxShards))
			break
		}
		s.Index, s.Count, s.Source = idx, cnt, EnvShard+"="+one
	case n != "":
		cnt, err := strconv.Atoi(n)
		if err != nil || cnt < 1 || cnt > MaxShards {
			errs = append(errs, fmt.Errorf("%s=%q: want a shard count 1-%d", EnvShards, n, MaxShards))
			break
		}
		k := strings.LastIndexByte(hostname, '-')
		idx, err := strconv.Atoi(hostname[k+1:])
		if k < 0 || err != nil || idx < 0 || hostname[k+1:] != strconv.Itoa(idx) {
			errs = append(errs, fmt.Errorf("%s=%d: the host name %q does not end in -ORDINAL (a StatefulSet pod's does, e.g. hermes-gateway-2); set %s=I/N instead", EnvShards, cnt, hostname, EnvShard))
			break
		}
		if idx >= cnt {
			errs = append(errs, fmt.Errorf("%s=%d: host %q is ordinal %d, outside 0-%d: raise %s to the replica count", EnvShards, cnt, hostname, idx, cnt-1, EnvShards))
			break
		}
		s.Index, s.Count, s.Source = idx, cnt, fmt.Sprintf("%s=%d, host %s", EnvShards, cnt, hostname)
	}
	return s, errors.Join(errs...)
}

// All reports whether the selection takes every profile.
func (s Selection) All() bool { return len(s.Patterns) == 0 && s.Count <= 1 }

// Pick reports whether this container supervises profile p, and when not,
// why, in words for status, doctor and reconcile --dry-run.
func (s Selection) Pick(p string) (bool, string) {
	if len(s.Patterns) > 0 && !s.named(p) {
		return false, fmt.Sprintf("not named by %s=%s", EnvProfiles, strings.Join(s.Patterns, ","))
	}
	if s.Count > 1 {
		if o := Owner(p, s.Count); o != s.Index {
			return false, fmt.Sprintf("shard %d/%d runs it; this is shard %d/%d (%s)", o, s.Count, s.Index, s.Count, s.Source)
		}
	}
	return true, ""
}

func (s Selection) named(p string) bool {
	for _, pat := range s.Patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// String describes the selection in one line.
func (s Selection) String() string {
	var parts []string
	if len(s.Patterns) > 0 {
		parts = append(parts, "profiles "+strings.Join(s.Patterns, ","))
	} else {
		parts = append(parts, "every profile")
	}
	if s.Count > 1 {
		parts = append(parts, fmt.Sprintf("shard %d/%d (%s)", s.Index, s.Count, s.Source))
	}
	return strings.Join(parts, ", ")
}

// Owner is the shard of n that profile p hashes to: the shard with the
// highest weight sha256(p, shard).
func Owner(p string, n int) int {
	if n <= 1 {
		return 0
	}
	best, owner := uint64(0), 0
	buf := make([]byte, 0, len(p)+1+4)
	for i := 0; i < n; i++ {
		buf = append(append(append(buf[:0], p...), 0), byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
		sum := sha256.Sum256(buf)
		if w := binary.BigEndian.Uint64(sum[:8]); i == 0 || w > best {
			best, owner = w, i
		}
	}
	return owner
}
