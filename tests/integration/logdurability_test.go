package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

const durabilityLines = 200000

// numbered extracts the N of every "line N" in text (after an optional
// s6-log timestamp), in order.
func numbered(text []byte) []int {
	var out []int
	for _, raw := range bytes.Split(text, []byte("\n")) {
		line := string(raw)
		if m := isoLine.FindStringSubmatch(line); m != nil {
			line = m[1]
		}
		if n, ok := strings.CutPrefix(line, "line "); ok {
			v, err := strconv.Atoi(n)
			if err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// readLog returns the lines of the log dir, archives oldest first then
// current, and the number of archives.
// A file rotated or pruned away between listing and reading is an error:
// callers polling a live log retry.
func readLog(dir string) ([]int, int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var archives []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "@") {
			archives = append(archives, e.Name())
		}
	}
	sort.Strings(archives)
	var all []int
	for _, a := range append(archives, "current") {
		b, err := os.ReadFile(filepath.Join(dir, a))
		if err != nil {
			return nil, 0, err
		}
		all = append(all, numbered(b)...)
	}
	return all, len(archives), nil
}

// checkSequence asserts got is exactly from..to, each once, in order.
func checkSequence(t *testing.T, where string, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Errorf("%s: %d numbered lines, want %d (%d..%d)", where, len(got), to-from+1, from, to)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("%s: position %d holds line %d, want %d (lost, repeated or reordered)", where, i, v, from+i)
		}
	}
}

// A gateway writing 200,000 lines as fast as it can while s6-log rotates
// every 64 KiB: every line lands exactly once, in order, in the rotated
// files and on the logger's stdout.
func TestLogDurability(t *testing.T) {
	for _, c := range []struct {
		name     string
		archives int
		keepAll  bool
	}{
		{"all-kept", 200, true},
		{"pruned", 3, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := s6tree.Start(t)
			tr.MustRun(t, "register", "--start", "--log-size", "65536", "--log-archives", strconv.Itoa(c.archives),
				"--env", "HERMES_STANDIN_LINES="+strconv.Itoa(durabilityLines))
			dir := filepath.Join(tr.Home, "logs", "gateways", "default")
			last := fmt.Sprintf("line %d\n", durabilityLines)
			// The last line may sit in current or, when it filled current
			// exactly, in the newest archive.
			tr.Eventually(t, 60*time.Second, "the last line in the log files and on stdout", func() bool {
				got, _, err := readLog(dir)
				return err == nil && len(got) > 0 && got[len(got)-1] == durabilityLines && strings.Contains(tr.Output(), last)
			})
			got, archives, err := readLog(dir)
			if err != nil {
				t.Fatal(err)
			}
			if archives > c.archives {
				t.Errorf("%d archives remain, want at most %d", archives, c.archives)
			}
			if c.keepAll {
				if archives < 10 {
					t.Errorf("only %d archives: the test did not make s6-log rotate much", archives)
				}
				checkSequence(t, "rotated files", got, 1, durabilityLines)
			} else if len(got) == 0 || got[len(got)-1] != durabilityLines {
				t.Fatalf("pruned log does not end with line %d", durabilityLines)
			} else {
				// Old archives were deleted: what remains is an unbroken tail.
				checkSequence(t, "rotated files (tail)", got, durabilityLines-len(got)+1, durabilityLines)
			}
			checkSequence(t, "logger stdout", numbered([]byte(tr.Output())), 1, durabilityLines)
			t.Logf("%d lines, %d archives kept", len(got), archives)
		})
	}
}
