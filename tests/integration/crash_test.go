package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// crashTrials is how many commands are SIGKILLed at a random point.
// HERMES_S6_CRASH_TRIALS raises it; HERMES_S6_CRASH_SEED reproduces a run.
const crashTrials = 200

// slotFiles must all exist, complete, in every visible slot: each ends with
// the line only a complete rendering has, so any truncation shows.
var slotFiles = map[string]func(string) bool{
	"type": func(s string) bool { return s == "longrun\n" },
	"run": func(s string) bool {
		return strings.HasSuffix(s, "gateway run --replace\n") || strings.HasSuffix(s, " --no-open\n") // gateway or dashboard
	},
	"finish":  func(s string) bool { return strings.HasSuffix(s, "exit 0\n") },
	"log/run": func(s string) bool { return strings.HasSuffix(s, ` "$log_dir/lease" sh ./run leased`+"\n") },
}

// checkScandir asserts no visible slot is missing a file or holds a
// truncated one. With clean, it also asserts no staging or removal dir.
func checkScandir(t *testing.T, tr *s6tree.Tree, clean bool, trial string) {
	t.Helper()
	ents, err := os.ReadDir(tr.Scandir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			if clean && (strings.HasPrefix(name, ".hermes-s6-staging.") || strings.HasPrefix(name, ".hermes-s6-removing.")) {
				t.Fatalf("%s: leftover %s after a clean run", trial, name)
			}
			continue
		}
		for f, complete := range slotFiles {
			b, err := os.ReadFile(filepath.Join(tr.Scandir, name, f))
			if err != nil {
				t.Fatalf("%s: visible slot %s lacks %s: %v", trial, name, f, err)
			}
			if !complete(string(b)) {
				t.Fatalf("%s: %s/%s is truncated or foreign:\n%s", trial, name, f, b)
			}
		}
	}
}

// SIGKILL register, unregister and reconcile at random points while a real
// s6-svscan watches the scandir: no visible slot is ever half-written, and
// the next run repairs everything and leaves no staging directory.
func TestCrashSafety(t *testing.T) {
	trials := crashTrials
	if v, err := strconv.Atoi(os.Getenv("HERMES_S6_CRASH_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("HERMES_S6_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (HERMES_S6_CRASH_SEED=%d reproduces), %d trials", seed, seed, trials)
	rng := rand.New(rand.NewSource(seed))

	tr := s6tree.Start(t)
	profiles := []string{"default", "p0", "p1", "p2", "p3"}
	for _, p := range profiles[1:] {
		addProfile(t, tr, p)
	}
	bin, _ := s6tree.Binaries(t)
	killed := 0
	for i := 0; i < trials; i++ {
		p := profiles[rng.Intn(len(profiles))]
		var args []string
		switch k := rng.Intn(10); {
		case k < 5: // create or update, with content that changes per trial
			args = []string{"register", "--profile", p, "--env", "TRIAL=" + strconv.Itoa(i)}
		case k < 7:
			args = []string{"unregister", "--profile", p}
		default:
			args = []string{"reconcile", "--env", "TRIAL=" + strconv.Itoa(i)}
		}
		trial := fmt.Sprintf("trial %d (%s)", i, strings.Join(args, " "))
		cmd := exec.Command(bin, args...)
		cmd.Env = tr.Env(t)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The kill point is what is under test: anywhere in the first 15ms,
		// about as long as a register or reconcile takes here.
		timer := time.AfterFunc(time.Duration(rng.Int63n(int64(15*time.Millisecond))), func() {
			cmd.Process.Signal(syscall.SIGKILL)
		})
		err := cmd.Wait()
		timer.Stop()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err != nil && !strings.HasPrefix(args[0], "unregister") {
			// A command that finished on its own must have succeeded (an
			// unregister of a slot a previous trial removed exits 3).
			t.Fatalf("%s: %v", trial, err)
		}
		checkScandir(t, tr, false, trial)
		// The next, uninterrupted run repairs everything.
		if r := tr.Run(t, "reconcile"); r.Code != 0 {
			t.Fatalf("%s: repair reconcile: %s", trial, r)
		}
		checkScandir(t, tr, true, trial+", then reconcile")
		for _, p := range profiles {
			if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-"+p)); err != nil {
				t.Fatalf("%s: reconcile did not bring back gateway-%s: %v", trial, p, err)
			}
		}
	}
	t.Logf("%d of %d commands were killed mid-run", killed, trials)
	if killed < trials/4 {
		t.Errorf("only %d of %d commands were killed: the kill window misses the work", killed, trials)
	}
}
