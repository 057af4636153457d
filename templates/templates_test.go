package templates

import (
	"os/exec"
	"strings"
	"testing"
)

// Every quoted word must expand back to exactly the input in a real sh.
func TestQuoteRoundTrip(t *testing.T) {
	in := []string{"plain", "", " ", "a b", "it's", `"dq"`, "$HOME", "${x:-y}", "`id`", "$(id)", "a\nb", "\t", "*", "?", "[a]", "~", "#c", "a;b", "a|b", "a&b", "<>", "\\", "'", "''", "é ü", "-n", "--", "=", "x=y"}
	var script strings.Builder
	for _, s := range in {
		script.WriteString("printf '%s\\0' " + Quote(s) + "\n")
	}
	out, err := exec.Command("/bin/sh", "-c", script.String()).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script.String())
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(in) {
		t.Fatalf("got %d words, want %d: %q", len(got), len(in), got)
	}
	for i := range in {
		if got[i] != in[i] {
			t.Errorf("Quote(%q) = %s expanded to %q", in[i], Quote(in[i]), got[i])
		}
	}
}

func TestQuoteLeavesSafeWordsBare(t *testing.T) {
	for _, s := range []string{"hermes", "/opt/data", "gateway-default", "a_b", "--replace", "k=v"} {
		if Quote(s) != s {
			t.Errorf("Quote(%q) = %s, want it bare", s, Quote(s))
		}
	}
}

func TestMissingKeyIsAnError(t *testing.T) {
	if _, err := Execute("run.tmpl", map[string]any{}); err == nil {
		t.Fatal("executing with missing keys succeeded")
	}
}
