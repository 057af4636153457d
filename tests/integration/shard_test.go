package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nousresearch/hermes-s6/internal/shard"
	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// A shard reconciles exactly the profiles rendezvous hashing gives it;
// dry-run, status, list and doctor say which shard this is and why a
// profile is not here; bad selections are refused before anything runs.
func TestShardedReconcile(t *testing.T) {
	tr := s6tree.Start(t)
	var mine, others []string
	for i := range 12 {
		p := fmt.Sprintf("p%02d", i)
		addProfile(t, tr, p)
		setState(t, tr, p, `{"desired_state":"running"}`)
		if shard.Owner(p, 3) == 1 {
			mine = append(mine, p)
		} else {
			others = append(others, p)
		}
	}
	setState(t, tr, "default", `{"desired_state":"running"}`)
	if shard.Owner("default", 3) == 1 {
		mine = append([]string{"default"}, mine...)
	} else {
		others = append(others, "default")
	}
	if len(mine) == 0 || len(others) == 0 {
		t.Fatalf("the hash put %v on shard 1 and %v elsewhere: pick other names", mine, others)
	}
	env := []string{"HERMES_S6_SHARD=1/3"}

	r := tr.RunEnv(t, env, "reconcile", "--dry-run")
	if r.Code != 0 || !strings.Contains(r.Stdout, "dry-run: selection: every profile, shard 1/3 (HERMES_S6_SHARD=1/3)") {
		t.Fatalf("dry-run should name the shard: %s", r)
	}
	for _, p := range others {
		if !strings.Contains(r.Stdout, "dry-run: profile="+p+" not here: shard ") {
			t.Errorf("dry-run should say %s is not here:\n%s", p, r.Stdout)
		}
	}
	if r := tr.RunEnv(t, env, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	r = tr.RunEnv(t, env, "list")
	if got := strings.Fields(r.Stdout); r.Code != 0 || !slices.Equal(got, mine) {
		t.Fatalf("list on shard 1/3: want %v, got %s", mine, r)
	}
	if !strings.Contains(r.Stderr, "this container supervises every profile, shard 1/3") {
		t.Errorf("list should say which shard this is: %s", r)
	}
	r = tr.RunEnv(t, env, "status", "--profile", others[0])
	if r.Code != 3 || !strings.Contains(r.Stderr, "is not supervised in this container: shard ") {
		t.Errorf("status of another shard's profile: want exit 3 saying why, got %s", r)
	}
	r = tr.RunEnv(t, env, "doctor")
	if !strings.Contains(r.Stdout, "this container supervises every profile, shard 1/3") || strings.Contains(r.Stdout, "has no slot") {
		t.Errorf("doctor should name the shard and not ask to register other shards' profiles:\n%s", r.Stdout)
	}
	for _, p := range mine {
		eventually(t, tr, p, p+" up", func(s status) bool { return s.Up })
	}
	if h := healthOf(t, tr, env...); !h.Healthy || h.Slots != len(mine)+1 {
		t.Fatalf("health on the shard: want healthy over its %d gateways and the dashboard slot, got %+v", len(mine), h)
	}

	for _, bad := range [][]string{{"HERMES_S6_SHARD=3/3"}, {"HERMES_S6_SHARDS=2"}, {"HERMES_S6_PROFILES=a["}} {
		before := s6tree.Snapshot(tr.Scandir, false)
		r := tr.RunEnv(t, bad, "reconcile")
		if r.Code != 2 || !strings.Contains(r.Stderr, strings.SplitN(bad[0], "=", 2)[0]) {
			t.Errorf("%s: want exit 2 naming the variable, got %s", bad[0], r)
		}
		if after := s6tree.Snapshot(tr.Scandir, false); len(after) != len(before) {
			t.Errorf("%s: a refused reconcile changed the scandir", bad[0])
		}
	}
}

// HERMES_S6_PROFILES picks profiles by name and glob.
func TestProfilesSelection(t *testing.T) {
	tr := s6tree.Start(t)
	for _, p := range []string{"coder", "team-a", "team-b", "ops"} {
		addProfile(t, tr, p)
	}
	if r := tr.RunEnv(t, []string{"HERMES_S6_PROFILES=team-*, coder"}, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	ents, err := os.ReadDir(tr.Scandir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gateway-") {
			got = append(got, strings.TrimPrefix(e.Name(), "gateway-"))
		}
	}
	if want := []string{"coder", "team-a", "team-b"}; !slices.Equal(got, want) {
		t.Fatalf("slots: want %v, got %v", want, got)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-ops")); err == nil {
		t.Fatal("ops is not selected")
	}
}

// In a shard that does not own the CMD's profile, `gateway run` starts
// nothing of its own: it says where the profile runs and holds the
// container for the slots this shard supervises.
func TestShimInAShardThatDoesNotOwnTheProfile(t *testing.T) {
	tr := s6tree.Start(t)
	other := 1 - shard.Owner("default", 2)
	env := append(s6Roots(t, "s6-svscan"), fmt.Sprintf("HERMES_S6_SHARD=%d/2", other))
	if r := tr.RunEnv(t, env, "reconcile"); r.Code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	sh := startBg(t, tr, env, "shim", "--", "gateway", "run")
	sh.await(t, tr, "the shim to hold the container", func() bool { return sh.cmdline() == "sleep\x00infinity\x00" })
	if !strings.Contains(sh.stderr.String(), "profile default is not supervised in this container (shard ") {
		t.Errorf("the shim should say where default runs:\n%s", sh.stderr)
	}
	if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-default")); err == nil {
		t.Fatal("gateway-default was installed in a shard that does not own it")
	}
}
