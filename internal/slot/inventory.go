package slot

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/render"
)

// Inventory is what hermes-s6 owns in a scandir: its gateway slots and the
// dashboard slot. Everything else there (s6-overlay's own services, dot-named
// work directories, foreign services) is none of its business.
type Inventory struct {
	// Profiles have a gateway slot: default first, then sorted.
	Profiles []string
	// Dashboard is whether the dashboard slot is there.
	Dashboard bool
}

// Take reads scandir's entries once. Only real directories count: a symlink
// in the scandir is not a slot hermes-s6 made.
func Take(scandir string) (Inventory, error) {
	ents, err := os.ReadDir(scandir)
	if err != nil {
		return Inventory{}, err
	}
	var inv Inventory
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if e.Name() == render.DashboardSlot {
			inv.Dashboard = true
			continue
		}
		p, ok := strings.CutPrefix(e.Name(), profile.SlotPrefix)
		if !ok || profile.Validate(p) != nil {
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
