package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nousresearch/hermes-s6/internal/hint"
	"github.com/nousresearch/hermes-s6/internal/profile"
	"github.com/nousresearch/hermes-s6/internal/shim"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// RequiredTools are the s6 tools hermes-s6 and its slots run.
var RequiredTools = []string{"s6-svc", "s6-svstat", "s6-svscanctl", "s6-svwait", "s6-log", "s6-setuidgid"}

// OptionalTool is an s6 tool only some features run, what goes without
// it, and how to get it.
type OptionalTool struct{ Name, Without, Fix string }

// OptionalTools: a missing one is a warning.
var OptionalTools = []OptionalTool{
	{"s6-permafailon", "slots with --crash-limit would fail to start", "apt-get install s6  # Debian; or leave --crash-limit off"},
	{"s6-svdt", "doctor cannot read a slot's death tally to spot a crash loop", "apt-get install s6  # Debian; s6 2.11 or later has it"},
	{"s6-notifyoncheck", "the dashboard slot cannot start: its readiness check runs under it", "apt-get install s6  # Debian; or leave HERMES_DASHBOARD off"},
}

// AllTools is RequiredTools and the optional ones, by name.
func AllTools() []string {
	all := append([]string(nil), RequiredTools...)
	for _, o := range OptionalTools {
		all = append(all, o.Name)
	}
	return all
}

// tool is the resolved path of an s6 tool for a fix line, or its bare name.
func (e *Env) tool(name string) string {
	if p, err := e.Tools.Path(name); err == nil {
		return p
	}
	return name
}

func checkTools(_ context.Context, e *Env) []Finding {
	r := report{check: CheckTools}
	where := "on PATH"
	if e.Tools.Dir != "" {
		where = "in " + e.Tools.Dir
	}
	var missing, found []string
	for _, t := range RequiredTools {
		p, err := e.Tools.Path(t)
		if err != nil {
			missing = append(missing, t)
			continue
		}
		found = append(found, p)
	}
	if len(missing) > 0 {
		fix := "apt-get install s6 execline  # Debian; else point HERMES_S6_BIN (--s6-bin) at the s6 tools"
		if e.Tools.Dir != "" {
			if onPath, err := (s6.Tools{}).Path(missing[0]); err == nil {
				fix = "export HERMES_S6_BIN=  # use the s6 tools on PATH (" + filepath.Dir(onPath) + ")"
			} else {
				fix = note("point HERMES_S6_BIN (--s6-bin) at the directory of the s6 tools of the running tree")
			}
		}
		r.fail(fmt.Sprintf("%s not found %s", strings.Join(missing, ", "), where), fix)
	}
	for _, o := range OptionalTools {
		if _, err := e.Tools.Path(o.Name); err != nil {
			r.warn(fmt.Sprintf("%s not found %s: %s", o.Name, where, o.Without), o.Fix)
		}
	}
	if s6.DefaultBin() == s6.OverlayBin && filepath.Clean(e.Tools.Dir) != s6.OverlayBin && len(found) > 0 {
		r.warn(fmt.Sprintf("s6-overlay's tools are in %s but hermes-s6 runs %s: tools of another s6 version may misread the tree's status files",
			s6.OverlayBin, filepath.Dir(found[0])), "export HERMES_S6_BIN="+s6.OverlayBin)
	}
	ok := fmt.Sprintf("%s resolve %s", strings.Join(RequiredTools, ", "), where)
	if e.Tools.Dir == "" {
		ok += fmt.Sprintf(" (%s; no %s, which is fine)", filepath.Dir(firstOr(found, "")), s6.OverlayBin)
	}
	return r.done(ok)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func checkDetect(_ context.Context, e *Env) []Finding {
	r := report{check: CheckDetect}
	ok, why := shim.DetectS6(e.ProcRoot, e.Basedir)
	if !ok {
		r.warn(why+": `gateway run` as the container CMD runs in the foreground, unsupervised (expected outside a container)",
			note("in a container, start it through the image's entrypoint so s6-overlay's /init is PID 1 (no docker run --init, no --entrypoint)"))
	}
	return r.done(fmt.Sprintf("s6-svscan is PID 1 (%s) and %s exists: `gateway run` is supervised",
		filepath.Join(e.ProcRoot, "1", "comm"), e.Basedir))
}

// readOnly reports whether dir is on a filesystem mounted read-only.
func readOnly(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Flags&stRdonly != 0
}

// stRdonly is ST_RDONLY, statfs's flag of a read-only mount.
const stRdonly = 0x1

func checkScandir(_ context.Context, e *Env) []Finding {
	r := report{check: CheckScandir}
	dir := e.Layout.Scandir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.fail(dir+" does not exist", "mkdir -p "+q(dir)+"  # then start s6-svscan on it; or point HERMES_S6_SCANDIR (--scandir) at s6's scan directory (s6-overlay: /run/service)")
		return r.found
	case err != nil:
		r.fail(err.Error(), asRoot)
		return r.found
	case !fi.IsDir():
		r.fail(dir+" is not a directory", note("point HERMES_S6_SCANDIR (--scandir) at s6's scan directory (s6-overlay: /run/service)"))
		return r.found
	}
	if readOnly(dir) {
		r.fail(dir+" is on a read-only filesystem: no slot, slot lock or down file can be written, not even by root",
			note("s6-overlay needs /run writable: docker run --tmpfs /run (with --read-only, also -e S6_READ_ONLY_ROOT=1); in Kubernetes an emptyDir (medium: Memory) on /run"))
		return r.found
	}
	if u, _ := ownerOf(fi); u == 0 {
		// The image's model: the scandir is root's, and nobody else may
		// write it: a slot there is run by root's s6-svscan.
		if fi.Mode().Perm()&0o022 != 0 {
			r.fail(fmt.Sprintf("%s (%s): others than root can create slots in it, which root's s6-svscan runs", dir, describe(fi)),
				fmt.Sprintf("chmod go-w %s", q(dir)))
			return r.found
		}
		return r.done(dir + " is root's; the service account registers slots through the broker")
	}
	if svc := e.service(); svc != nil {
		if u, _ := ownerOf(fi); u == svc.uid {
			r.fail(fmt.Sprintf("%s (%s) is the service account's: it could put a slot there that root's s6-svscan runs", dir, describe(fi)),
				fmt.Sprintf("chown 0:0 %s && chmod 0755 %s  # or restart the container: the boot reconcile keeps it root's", q(dir), q(dir)))
			return r.found
		}
	}
	if c := e.controller(); c != nil && !can(fi, c, wBit|xBit) {
		r.fail(fmt.Sprintf("%s (%s): %s cannot create slots or slot locks in it", dir, describe(fi), c),
			fmt.Sprintf("chown %s %s", c.owner(), q(dir)))
	}
	return r.done(dir + " is a directory")
}

func checkSvscan(_ context.Context, e *Env) []Finding {
	r := report{check: CheckSvscan}
	scandir := e.Layout.Scandir
	if err := e.treeErr(); err != nil {
		fix := note("start s6-svscan on " + scandir)
		if hs := hint.Of(err); len(hs) > 0 {
			fix = note(hs[0])
		}
		r.fail(err.Error(), fix)
		return r.found
	}
	// s6-svscan is root's: its control FIFO would let the service account
	// rescan a scandir, halt the container, or (had it a slot to write)
	// run anything as root.
	svc := e.service()
	if svc == nil || !e.Identity.Root() && !e.rootTree() {
		// No service account, or a tree a non-root user runs for itself.
		return r.done("s6-svscan listens on " + scandir)
	}
	p := filepath.Join(scandir, ".s6-svscan", "control")
	if fi, err := os.Lstat(p); err == nil && can(fi, svc, wBit) {
		r.fail(fmt.Sprintf("%s (%s): the service account %s can send s6-svscan commands", p, describe(fi), svc),
			fmt.Sprintf("chown 0:0 %s && chmod 0600 %s  # or restart the container: the boot reconcile keeps it root's", q(p), q(p)))
		return r.found
	}
	return r.done(fmt.Sprintf("s6-svscan listens on %s; only root controls it", scandir))
}

// rootTree reports whether the scandir is root's: the image's model, where
// the service account controls its slots through their skeleton and
// registers new ones through the broker.
func (e *Env) rootTree() bool {
	fi, err := os.Stat(e.Layout.Scandir)
	if err != nil {
		return false
	}
	u, _ := ownerOf(fi)
	return u == 0
}

func checkLeftovers(_ context.Context, e *Env) []Finding {
	r := report{check: CheckLeftovers}
	inv, err := slot.Take(e.Layout.Scandir)
	if err != nil {
		return r.done("no scandir to look in")
	}
	for _, n := range inv.Leftovers {
		removing := strings.HasPrefix(n, slot.RemovingPrefix)
		p := filepath.Join(e.Layout.Scandir, n)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		age := e.Now().Sub(fi.ModTime())
		if age < LeftoverAge {
			continue // a register or unregister may be at work on it
		}
		fix := "rm -rf -- " + q(p)
		if removing {
			fix = fmt.Sprintf("%s -an %s && %s", e.tool("s6-svscanctl"), q(e.Layout.Scandir), fix)
		}
		r.warn(fmt.Sprintf("%s is left over from a hermes-s6 command that died %s ago (s6-svscan ignores it)", p, age.Round(1e9)), fix)
	}
	return r.done("no leftover staging or removal directories")
}

// slotRef is a slot hermes-s6 manages.
type slotRef struct {
	Name    string // directory name in the scandir
	Profile string // "" for the dashboard
	Dir     string
}

// logDir is where the slot's s6-log writes.
func (s slotRef) logDir(l profile.Layout) string {
	if s.Profile == "" {
		return filepath.Join(l.Home, "logs", "dashboard") // render: LogSubdir of the dashboard
	}
	return l.LogDir(s.Profile)
}

// slots lists the gateway slots with valid names (default first, then
// sorted) and the dashboard, when present as directories.
func (e *Env) slots() []slotRef {
	inv, err := slot.Take(e.Layout.Scandir)
	if err != nil {
		return nil
	}
	var out []slotRef
	for _, p := range inv.Profiles {
		n := profile.SlotName(p)
		out = append(out, slotRef{Name: n, Profile: p, Dir: filepath.Join(e.Layout.Scandir, n)})
	}
	if inv.Dashboard {
		out = append(out, slotRef{Name: render.DashboardSlot, Dir: filepath.Join(e.Layout.Scandir, render.DashboardSlot)})
	}
	return out
}

// skeletonPart is one path of the supervise skeleton (docs/slot.md).
type skeletonPart struct {
	rel  string
	dir  bool // else a FIFO
	mode uint32
	need uint32 // access the controller needs
	what string // what it cannot do without it
}

var skeletonParts = []skeletonPart{
	{"", true, 0o755, wBit | xBit, "keep the down file in step"},
	{"supervise", true, 0o755, xBit, "reach supervise/control"},
	{"supervise/control", false, 0o660, wBit, "send s6-svc commands"},
	{"event", true, 0o3730, wBit | xBit, "wait for state changes (s6-svwait, s6-svc -w)"},
}

// rootSkeletonParts is the skeleton of a root-owned slot (the image's
// model): root's, with the controller's group allowed what s6-svperms -G
// and -E allow.
var rootSkeletonParts = []skeletonPart{
	{"supervise", true, 0o710, xBit, "reach supervise/control"},
	{"supervise/control", false, 0o620, wBit, "send s6-svc commands"},
	{"event", true, 0o3730, wBit | xBit, "wait for state changes (s6-svwait, s6-svc -w)"},
}

func checkSupervise(_ context.Context, e *Env) []Finding {
	r := report{check: CheckSupervise}
	c := e.controller()
	if c == nil {
		return r.done("only root controls the slots: no ownership to check")
	}
	n := 0
	for _, s := range e.slots() {
		for _, d := range []string{s.Dir, filepath.Join(s.Dir, "log")} {
			if d != s.Dir {
				if _, err := os.Stat(d); err != nil {
					continue
				}
			}
			n++
			skeletonFindings(&r, d, c)
		}
	}
	return r.done(fmt.Sprintf("%s the supervise skeleton for %s", count(n, "slot or logger directory has", "slot and logger directories have"), c))
}

// skeletonFindings checks one service directory's skeleton for c and adds
// at most one finding with a fix that repairs every part that is off.
func skeletonFindings(r *report, dir string, c *ident) {
	var problems, fix []string
	sev := OK
	worse := func(s Severity) {
		if s == Fail || sev == OK {
			sev = s
		}
	}
	parts, owner, wantUID := skeletonParts, c.owner(), c.uid
	if fi, err := os.Lstat(dir); err == nil {
		if u, _ := ownerOf(fi); u == 0 {
			// Root's slot: nobody else may write what s6 runs from it.
			if fi.Mode().Perm()&0o022 != 0 {
				worse(Fail)
				problems = append(problems, fmt.Sprintf("%s (%s): others than root can write the slot root's s6 runs", filepath.Base(dir), describe(fi)))
				fix = append(fix, fmt.Sprintf("chmod go-w %s", q(dir)))
			}
			parts, owner, wantUID = rootSkeletonParts, fmt.Sprintf("0:%d", c.gid), 0
		}
	}
	for _, part := range parts {
		p := filepath.Join(dir, filepath.FromSlash(part.rel))
		name := filepath.Join(filepath.Base(dir), filepath.FromSlash(part.rel))
		if filepath.Base(dir) == "log" {
			name = filepath.Join(filepath.Base(filepath.Dir(dir)), name)
		}
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			worse(Fail)
			problems = append(problems, name+" is missing (s6-supervise would create it for root only)")
			if part.dir {
				fix = append(fix, fmt.Sprintf("mkdir %s", q(p)))
			} else {
				fix = append(fix, fmt.Sprintf("mkfifo %s", q(p)))
			}
			fix = append(fix, fmt.Sprintf("chown %s %s", owner, q(p)), fmt.Sprintf("chmod %04o %s", part.mode, q(p)))
			continue
		case err != nil:
			worse(Fail)
			problems = append(problems, err.Error())
			continue
		case part.dir && !fi.IsDir(), !part.dir && fi.Mode()&fs.ModeNamedPipe == 0:
			worse(Fail)
			problems = append(problems, fmt.Sprintf("%s is a %s, not a %s", name, typeWord(fi), map[bool]string{true: "directory", false: "FIFO"}[part.dir]))
			continue
		}
		// Usable and the controller's: fine, whatever the exact mode.
		u, _ := ownerOf(fi)
		switch {
		case !can(fi, c, part.need):
			worse(Fail)
			problems = append(problems, fmt.Sprintf("%s (%s): %s cannot %s", name, describe(fi), c, part.what))
		case u != wantUID:
			worse(Warn)
			problems = append(problems, fmt.Sprintf("%s is %s, not %s as the skeleton makes it (%04o)", name, describe(fi), owner, part.mode))
		default:
			continue
		}
		fix = append(fix, fmt.Sprintf("chown %s %s", owner, q(p)), fmt.Sprintf("chmod %04o %s", part.mode, q(p)))
	}
	if sev == OK {
		return
	}
	r.add(sev, strings.Join(problems, "; "), strings.Join(fix, " && "))
}

func typeWord(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t.IsDir():
		return "directory"
	case t.IsRegular():
		return "regular file"
	default:
		return t.String()
	}
}
