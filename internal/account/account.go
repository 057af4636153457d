// Package account is who hermes-s6 runs as and who the gateways run as.
//
// The identity is resolved once, at the CLI's edge (Resolve), and passed
// down as an Identity: no other package asks the kernel who it is, so every
// root and non-root branch can be tested by handing it another Identity.
// An Identity decides who will send s6 control commands to a slot (which
// fixes the owner of its supervise skeleton) and who owns files written on
// the volume.
package account

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Account is a resolved user.
type Account struct {
	Name     string
	UID, GID int
	// Groups are the group ids a login gives the account: its primary group
	// first, then its supplementary groups. Whoever becomes the account
	// (setgroups) uses exactly these.
	Groups []int
	// Home is its home directory ("" when unknown).
	Home string
}

// Lookup resolves name through the user database, groups included. An
// empty name means no service account: nothing drops privileges and
// nothing is chowned.
func Lookup(name string) (*Account, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("service account %q: %w", name, err)
	}
	return fromUser(u, name)
}

func fromUser(u *user.User, name string) (*Account, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("account %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("account %q: gid %q: %w", name, u.Gid, err)
	}
	return &Account{Name: name, UID: uid, GID: gid, Groups: groups(u, gid), Home: u.HomeDir}, nil
}

// groups is gid, then u's other groups.
func groups(u *user.User, gid int) []int {
	out := []int{gid}
	ids, err := u.GroupIds()
	if err != nil {
		return out
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil && g != gid {
			out = append(out, g)
		}
	}
	return out
}

// Identity is the calling process and the service account.
type Identity struct {
	// Self is this process: its effective uid and gid, the name the user
	// database has for the uid (else the number), and Groups as the
	// process has them.
	Self Account
	// Service is the resolved service account; nil when there is none.
	Service *Account
}

// Resolve is the one place hermes-s6 asks the kernel who it is.
func Resolve(service *Account) Identity {
	uid, gid := os.Geteuid(), os.Getegid()
	self := Account{Name: strconv.Itoa(uid), UID: uid, GID: gid, Groups: []int{gid}}
	if u, err := user.LookupId(self.Name); err == nil {
		self.Name = u.Username
	}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			if g != gid {
				self.Groups = append(self.Groups, g)
			}
		}
	}
	return Identity{Self: self, Service: service}
}

// Root reports whether the process runs as root.
func (id Identity) Root() bool { return id.Self.UID == 0 }

// GroupList is a's Groups, or its primary group alone when the user
// database gave none.
func (a *Account) GroupList() []int {
	if len(a.Groups) > 0 {
		return a.Groups
	}
	return []int{a.GID}
}

// DropsTo is the non-root service account root drops to for work it does
// on the service account's behalf (volume files, gateways); nil when the
// process is not root, or there is no such account.
func (id Identity) DropsTo() *Account {
	if id.Root() && id.Service != nil && id.Service.UID != 0 {
		return id.Service
	}
	return nil
}

// Controller is the non-root account that will send control commands to
// slots created now, or nil when only root will: the caller itself when it
// is not root, else the service account when it is a non-root user.
func (id Identity) Controller() *Account {
	if !id.Root() {
		self := id.Self
		return &self
	}
	return id.DropsTo()
}

// FileOwner is who should own files hermes-s6 writes on the volume: the
// service account when running as root (so the gateway can rewrite them),
// nil (keep the caller) otherwise.
func (id Identity) FileOwner() *Account { return id.DropsTo() }
