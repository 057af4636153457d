package shard

import (
	"fmt"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		host string
		want string // Selection.String(), or the error's substring after "error: "
	}{
		{"nothing", nil, "h", "every profile"},
		{"names", map[string]string{EnvProfiles: " coder, team-* ,"}, "h", "profiles coder,team-*"},
		{"shard", map[string]string{EnvShard: "1/3"}, "h", "every profile, shard 1/3 (HERMES_S6_SHARD=1/3)"},
		{"ordinal", map[string]string{EnvShards: "4"}, "hermes-gateway-2", "every profile, shard 2/4 (HERMES_S6_SHARDS=4, host hermes-gateway-2)"},
		{"shard wins", map[string]string{EnvShard: "0/2", EnvShards: "9"}, "x", "every profile, shard 0/2 (HERMES_S6_SHARD=0/2)"},
		{"bad shard", map[string]string{EnvShard: "3/3"}, "h", "error: HERMES_S6_SHARD=\"3/3\": want I/N"},
		{"bad shard text", map[string]string{EnvShard: "one/two"}, "h", "error: HERMES_S6_SHARD=\"one/two\""},
		{"huge", map[string]string{EnvShard: "0/99999"}, "h", "error: HERMES_S6_SHARD"},
		{"no ordinal", map[string]string{EnvShards: "3"}, "3f2a9c1b", "error: HERMES_S6_SHARDS=3: the host name \"3f2a9c1b\" does not end in -ORDINAL"},
		{"ordinal too big", map[string]string{EnvShards: "2"}, "gw-2", "error: HERMES_S6_SHARDS=2: host \"gw-2\" is ordinal 2, outside 0-1"},
		{"bad glob", map[string]string{EnvProfiles: "a[,b"}, "h", "error: HERMES_S6_PROFILES: \"a[\" is not a profile name or glob"},
		{"empty list", map[string]string{EnvProfiles: " , "}, "h", "error: HERMES_S6_PROFILES=\",\" names no profile"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := FromEnv(env(c.env), c.host)
			got := s.String()
			if err != nil {
				got = "error: " + err.Error()
			}
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("got %q, want it to start with %q", got, c.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	s := Selection{Patterns: []string{"team-*", "coder"}}
	for p, want := range map[string]bool{"coder": true, "team-a": true, "default": false, "teamx": false} {
		if ok, why := s.Pick(p); ok != want || (!ok && !strings.Contains(why, "not named by HERMES_S6_PROFILES=team-*,coder")) {
			t.Errorf("Pick(%s) = %v %q, want %v", p, ok, why, want)
		}
	}
	s = Selection{Index: 1, Count: 3, Source: "test"}
	for i := 0; i < 50; i++ {
		p := fmt.Sprintf("p%d", i)
		ok, why := s.Pick(p)
		if ok != (Owner(p, 3) == 1) || (!ok && !strings.Contains(why, "this is shard 1/3 (test)")) {
			t.Errorf("Pick(%s) = %v %q, owner %d", p, ok, why, Owner(p, 3))
		}
	}
}

// Every profile has exactly one shard, the shards share the load, and
// adding a shard moves about 1/(N+1) of the profiles, only to the new one.
func TestOwnerRendezvous(t *testing.T) {
	const profiles = 3000
	for n := 1; n <= 8; n++ {
		count := make([]int, n+1)
		moved := 0
		for i := 0; i < profiles; i++ {
			p := fmt.Sprintf("profile-%d", i)
			a, b := Owner(p, n), Owner(p, n+1)
			if a < 0 || a >= n || b < 0 || b > n {
				t.Fatalf("Owner(%s) out of range: %d of %d, %d of %d", p, a, n, b, n+1)
			}
			if a != b {
				moved++
				if b != n {
					t.Fatalf("N=%d→%d: %s moved from %d to %d, not to the new shard", n, n+1, p, a, b)
				}
			}
			count[b]++
		}
		frac, want := float64(moved)/profiles, 1/float64(n+1)
		if frac < want*0.8 || frac > want*1.2 {
			t.Errorf("N=%d→%d moved %.3f of the profiles, want about %.3f", n, n+1, frac, want)
		}
		for s, c := range count {
			if f := float64(c) / profiles; f < want*0.8 || f > want*1.2 {
				t.Errorf("N=%d: shard %d has %.3f of the profiles, want about %.3f", n+1, s, f, want)
			}
		}
	}
	// The same name always lands on the same shard: pinned values, which
	// change only if the hash does (and with it every deployment's shards).
	for p, want := range map[string]int{"coder": 3, "default": 5, "team-a": 2, "ops-2": 3} {
		if got := Owner(p, 7); got != want {
			t.Errorf("Owner(%s, 7) = %d, want %d: the hash changed, and with it every deployment's shards", p, got, want)
		}
	}
}
