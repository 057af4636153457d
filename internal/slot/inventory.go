package slot

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/render"
)

// Inventory is a scandir as hermes-s6 sees it: its gateway slots and the
// dashboard slot, the work directories a crash may leave, and how many
// services s6-svscan has to supervise there. Everything else (s6-overlay's
// own services, foreign services) is none of its business but counts
// against s6-svscan's limit. It is the one place that lists a scandir.
type Inventory struct {
	// Profiles have a gateway slot: default first, then sorted.
	Profiles []string
	// Dashboard is whether the dashboard slot is there.
	Dashboard bool
	// Leftovers are staging and removal directories (names), left by a
	// register or unregister that is at work or was killed.
	Leftovers []string
	// Strays are gateway-* entries that are no slot hermes-s6 can manage:
	// an invalid profile name, or not a real directory (a symlink is not
	// a slot hermes-s6 made).
	Strays []string
	// Services are every entry s6-svscan supervises (no dot-name).
	Services []string
}

// Take reads scandir's entries once.
func Take(scandir string) (Inventory, error) {
	ents, err := os.ReadDir(scandir)
	if err != nil {
		return Inventory{}, err
	}
	var inv Inventory
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, StagingPrefix) || strings.HasPrefix(n, RemovingPrefix) {
			inv.Leftovers = append(inv.Leftovers, n)
			continue
		}
		if strings.HasPrefix(n, ".") {
			continue
		}
		inv.Services = append(inv.Services, n)
		if n == render.DashboardSlot && e.IsDir() {
			inv.Dashboard = true
			continue
		}
		p, ok := strings.CutPrefix(n, profile.SlotPrefix)
		if !ok {
			continue
		}
		if !e.IsDir() || profile.Validate(p) != nil {
			inv.Strays = append(inv.Strays, n)
			continue
		}
		inv.Profiles = append(inv.Profiles, p)
	}
	sort.Slice(inv.Profiles, func(i, j int) bool {
		a, b := inv.Profiles[i], inv.Profiles[j]
		if (a == profile.Default) != (b == profile.Default) {
			return a == profile.Default
		}
		return a < b
	})
	return inv, nil
}

// Dirs are the slot directories of the inventory in scandir: the gateways
// in inventory order, then the dashboard.
func (inv Inventory) Dirs(scandir string) []string {
	out := make([]string, 0, len(inv.Profiles)+1)
	for _, p := range inv.Profiles {
		out = append(out, filepath.Join(scandir, profile.SlotName(p)))
	}
	if inv.Dashboard {
		out = append(out, filepath.Join(scandir, render.DashboardSlot))
	}
	return out
}
