package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// slotFiles maps each file of a slot dir (relative path) to its mode and
// content, leaving out what s6-supervise owns (supervise/, event/) and what
// the slot's own scripts write as it runs (run-state: start and death
// times). The home path, which differs between the sides' labs, reads as
// $HOME.
func slotFiles(dir, home string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (d.Name() == "supervise" || d.Name() == "event") {
			return filepath.SkipDir
		}
		if d.IsDir() || rel == "run-state" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = fmt.Sprintf("%v\n%s", fi.Mode(), strings.ReplaceAll(string(b), home, "$HOME"))
		return nil
	})
	return out
}

// diffFiles names the files that differ between hermes-s6's slotFiles map
// and the baseline's, "" when they match (or when either is missing).
func diffFiles(hermes, baseline map[string]string) string {
	if hermes == nil || baseline == nil {
		return ""
	}
	diff := mapDiff(hermes, baseline, " (only hermes-s6's)", " (content or mode)", " (only the baseline's)")
	if len(diff) > 6 {
		diff = append(diff[:6], fmt.Sprintf("… %d more", len(diff)-6))
	}
	return strings.Join(diff, ", ")
}

// mapDiff lists, sorted, each key of before or after whose entry differs,
// suffixed with gone (only in before), differs, or added (only in after).
func mapDiff(before, after map[string]string, gone, differs, added string) []string {
	var out []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			out = append(out, k+gone)
		} else if v != w {
			out = append(out, k+differs)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+added)
		}
	}
	sort.Strings(out)
	return out
}

// treeFiles is slotFiles for every slot of a scandir, keyed slot/file.
func treeFiles(scandir, home string) map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(scandir)
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for k, v := range slotFiles(filepath.Join(scandir, e.Name()), home) {
			out[e.Name()+"/"+k] = v
		}
	}
	return out
}

// snapshot records what a write would change (inode, size, mode, mtime) of
// every file and directory under root, skipping directories skip names.
func snapshot(root string, skip ...string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, s := range skip {
			if d.IsDir() && d.Name() == s {
				return filepath.SkipDir
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		var ino uint64
		if st != nil {
			ino = st.Ino
		}
		out[p] = fmt.Sprintf("ino=%d size=%d mode=%v mtime=%d", ino, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	return out
}

// changed lists the paths whose snapshot entry differs between before and
// after, appeared or disappeared.
func changed(before, after map[string]string) []string {
	return mapDiff(before, after, " removed", " rewritten", " created")
}
