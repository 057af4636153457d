package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nousresearch/hermes-s6/tests/s6tree"
)

// Past its limit s6-svscan supervises no new service at all, so reconcile
// installs only the slots that fit — the default profile and the ones
// wanted running first, then by name — and names every profile it left
// out, on stdout, in the boot log and in its error. Here s6-svscan runs
// with -c 8 (s6 2.11: eight service directories): seven gateways and the
// dashboard.
func TestReconcileNeverPastSvscanLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reconcile reads s6-svscan's command line in /proc: run as root (CI does)")
	}
	tr := s6tree.New(t)
	tr.StartScan(t, "-c", "8")
	for i := 1; i <= 11; i++ {
		addProfile(t, tr, fmt.Sprintf("p%02d", i))
	}
	// Two late names wanted running: they come before the stopped ones.
	setState(t, tr, "p10", `{"desired_state":"running"}`)
	setState(t, tr, "p11", `{"desired_state":"running"}`)

	r := tr.Run(t, "reconcile")
	if r.Code != 1 {
		t.Fatalf("reconcile with profiles left out: want exit 1, got %s", r)
	}
	wantIn := []string{"default", "p10", "p11", "p01", "p02", "p03", "p04"}
	wantOut := []string{"p05", "p06", "p07", "p08", "p09"}
	for _, p := range wantOut {
		if _, err := os.Stat(filepath.Join(tr.Scandir, "gateway-"+p)); !os.IsNotExist(err) {
			t.Errorf("gateway-%s was installed past the limit: %v", p, err)
		}
		line := "profile=" + p + " prior_state=none action=left-out"
		if !strings.Contains(r.Stdout, line) {
			t.Errorf("stdout does not name %s as left out:\n%s", p, r.Stdout)
		}
	}
	if !strings.Contains(r.Stderr, "5 profiles left out ("+strings.Join(wantOut, ", ")+")") || !strings.Contains(r.Stderr, "hint: spread the profiles over more containers") {
		t.Errorf("the error does not name the left-out profiles with the fix:\n%s", r.Stderr)
	}
	bootLog, err := os.ReadFile(filepath.Join(tr.Home, "logs", "container-boot.log"))
	if err != nil || !strings.Contains(string(bootLog), "profile=p09 prior_state=none action=left-out") {
		t.Errorf("the boot log does not name the left-out profiles (%v):\n%s", err, bootLog)
	}
	// Everything installed is supervised: the limit was not crossed.
	for _, p := range wantIn {
		st := eventually(t, tr, p, p+" supervised", func(s status) bool { return s.Supervised })
		if (p == "p10" || p == "p11") && !st.WantUp {
			t.Errorf("%s is wanted running but not up: %+v", p, st)
		}
	}
	tr.Eventually(t, wait, "the dashboard supervised", func() bool {
		_, err := os.Stat(filepath.Join(tr.Scandir, "dashboard", "supervise", "status"))
		return err == nil
	})
	if d := tr.Run(t, "doctor"); d.Code != 1 || !strings.Contains(d.Stdout, "left out, with no slot: "+strings.Join(wantOut, ", ")) {
		t.Errorf("doctor: want exit 1 and a FAIL naming the left-out profiles, got %s", d)
	}
	if got := tr.MustRun(t, "list").Stdout; len(strings.Fields(got)) != len(wantIn) || !slices.Contains(strings.Fields(got), "p11") {
		t.Errorf("list: %q, want the %d installed profiles", got, len(wantIn))
	}
}
