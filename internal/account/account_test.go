package account

import (
	"os"
	"testing"
)

// Who controls slots and owns volume files, for each kind of caller. None
// of it needs the test to run as root.
func TestIdentity(t *testing.T) {
	svc := &Account{Name: "hermes", UID: 10000, GID: 10000}
	rootSvc := &Account{Name: "root"}
	for _, tc := range []struct {
		name       string
		id         Identity
		root       bool
		drops      *Account
		controller string // "" for nil
	}{
		{"root with a service account", Identity{Self: Account{Name: "root"}, Service: svc}, true, svc, "hermes"},
		{"root without one", Identity{Self: Account{Name: "root"}}, true, nil, ""},
		{"root whose service account is root", Identity{Self: Account{Name: "root"}, Service: rootSvc}, true, nil, ""},
		{"the service account itself", Identity{Self: *svc, Service: svc}, false, nil, "hermes"},
		{"another user", Identity{Self: Account{Name: "ops", UID: 1000, GID: 1000}, Service: svc}, false, nil, "ops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.id.Root() != tc.root {
				t.Errorf("Root() = %t", tc.id.Root())
			}
			if got := tc.id.DropsTo(); got != tc.drops {
				t.Errorf("DropsTo() = %v, want %v", got, tc.drops)
			}
			if got := tc.id.FileOwner(); got != tc.drops {
				t.Errorf("FileOwner() = %v, want %v", got, tc.drops)
			}
			got := ""
			if c := tc.id.Controller(); c != nil {
				got = c.Name
			}
			if got != tc.controller {
				t.Errorf("Controller() = %q, want %q", got, tc.controller)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	id := Resolve(nil)
	if id.Self.UID != os.Geteuid() || id.Self.GID != os.Getegid() || id.Self.Name == "" {
		t.Fatalf("Resolve: %+v", id.Self)
	}
	if len(id.Self.Groups) == 0 || id.Self.Groups[0] != os.Getegid() {
		t.Fatalf("Resolve: groups %v, want the effective gid first", id.Self.Groups)
	}
}

func TestLookup(t *testing.T) {
	if a, err := Lookup(""); a != nil || err != nil {
		t.Fatalf(`Lookup(""): %v %v; want no account, no error`, a, err)
	}
	if _, err := Lookup("no-such-user-hermes-s6"); err == nil {
		t.Fatal("an unknown user resolved")
	}
	a, err := Lookup("root")
	if err != nil {
		t.Skipf("no root in the user database: %v", err)
	}
	if a.UID != 0 || len(a.GroupList()) == 0 || a.GroupList()[0] != a.GID {
		t.Fatalf("Lookup(root): %+v", a)
	}
	if (&Account{GID: 7}).GroupList()[0] != 7 {
		t.Fatal("GroupList without groups is not the primary group")
	}
}
