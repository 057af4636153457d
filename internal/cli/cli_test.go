package cli

import (
	"bytes"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(append([]string{"hermes-s6"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"no-such-command"},
		{"render", "--no-such-flag"},
		{"render", "--log-size", "10"},
		{"render", "--crash-limit", "five"},
		{"render", "--env", "1BAD=x"},
		{"render", "--profile", "../x"},
		{"status", "extra"},
		{"completion", "fish"},
		{"logs", "-n", "-1"},
	} {
		code, stdout, stderr := run(args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: stdout must stay empty, got %q", args, stdout)
		}
		if strings.Count(stderr, "hermes-s6: error: ") != 1 {
			t.Errorf("%q: want the error exactly once on stderr, got:\n%s", args, stderr)
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	code, stdout, _ := run("version")
	if code != 0 || !strings.HasPrefix(stdout, "hermes-s6 ") {
		t.Fatalf("version: %d %q", code, stdout)
	}
	for _, sh := range []string{"bash", "zsh"} {
		code, stdout, _ := run("completion", sh)
		if code != 0 || !strings.Contains(stdout, "--generate-bash-completion") || !strings.Contains(stdout, "hermes-s6") {
			t.Fatalf("completion %s: %d\n%s", sh, code, stdout)
		}
	}
	// What the scripts call, --generate-bash-completion, reads os.Args
	// (urfave/cli v2), so it is tested on the real binary:
	// tests/integration TestBashCompletionListsCommands.
}

func TestRenderPrintsTheSlot(t *testing.T) {
	t.Setenv("HERMES_S6_SHEBANG", "#!/bin/sh")
	code, stdout, stderr := run("--account", "", "render", "--profile", "coder")
	if code != 0 {
		t.Fatalf("render: %d\n%s", code, stderr)
	}
	for _, want := range []string{"==> gateway-coder/run (0755) <==", "==> gateway-coder/log/run (0755) <==", "==> gateway-coder/type (0644) <==", "-p coder gateway run --replace"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("render output lacks %q:\n%s", want, stdout)
		}
	}
}
