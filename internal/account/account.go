// Package account resolves the service account (the image's `hermes`) and
// decides who will send s6 control commands, which fixes the owner of a
// slot's supervise skeleton and of files written on the volume.
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
}

// Lookup resolves name through the user database. An empty name means no
// service account: nothing drops privileges and nothing is chowned.
func Lookup(name string) (*Account, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("service account %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("service account %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("service account %q: gid %q: %w", name, u.Gid, err)
	}
	return &Account{Name: name, UID: uid, GID: gid}, nil
}

// Current is the calling process's own identity.
func Current() *Account {
	name := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return &Account{Name: name, UID: os.Geteuid(), GID: os.Getegid()}
}

// Controller is the non-root account that will send control commands to
// slots created now, or nil when only root will: the caller itself when it
// is not root, else the service account when it is a non-root user.
func Controller(service *Account) *Account {
	if os.Geteuid() != 0 {
		return Current()
	}
	if service != nil && service.UID != 0 {
		return service
	}
	return nil
}

// FileOwner is who should own files hermes-s6 writes on the volume: the
// service account when running as root (so the gateway can rewrite them),
// nil (keep the caller) otherwise.
func FileOwner(service *Account) *Account {
	if os.Geteuid() == 0 && service != nil && service.UID != 0 {
		return service
	}
	return nil
}
