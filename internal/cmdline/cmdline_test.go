package cmdline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestTruthy(t *testing.T) {
	for _, s := range []string{"1", "true", "TRUE", "True", "yes", "YES", "Yes", " yes\n"} {
		if !Truthy(s) {
			t.Errorf("Truthy(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "0", "false", "no", "on", "y", "2", "truee", "enable"} {
		if Truthy(s) {
			t.Errorf("Truthy(%q) = true, want false", s)
		}
	}
}

func TestParseGatewayRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want GatewayRun
		ok   bool
	}{
		{[]string{"gateway", "run"}, GatewayRun{Profile: "default"}, true},
		{[]string{"gateway", "run", "--replace"}, GatewayRun{Profile: "default"}, true},
		{[]string{"-p", "coder", "gateway", "run"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"--profile", "coder", "gateway", "run"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"--profile=coder", "gateway", "run"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"gateway", "run", "-p", "coder"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"gateway", "run", "--profile", "coder", "--replace"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"gateway", "run", "--profile=coder"}, GatewayRun{Profile: "coder"}, true},
		{[]string{"-p", "a", "gateway", "run", "-p", "b"}, GatewayRun{Profile: "b"}, true},
		{[]string{"gateway", "run", "--no-supervise"}, GatewayRun{Profile: "default", NoSupervise: true}, true},
		{[]string{"--no-supervise", "gateway", "run"}, GatewayRun{Profile: "default", NoSupervise: true}, true},
		{[]string{"gateway", "run", "--verbose", "--replace", "x"}, GatewayRun{Profile: "default", Extra: []string{"--verbose", "x"}}, true},
		{[]string{"gateway", "run", "--", "-p"}, GatewayRun{}, false},
		{[]string{"gateway", "run", "-p"}, GatewayRun{}, false},
		{[]string{"gateway", "run", "--profile="}, GatewayRun{}, false},
		{[]string{"-p", "gateway", "run"}, GatewayRun{}, false},
		{[]string{"--verbose", "gateway", "run"}, GatewayRun{}, false},
		{[]string{"gateway", "start"}, GatewayRun{}, false},
		{[]string{"gateway"}, GatewayRun{}, false},
		{[]string{"dashboard"}, GatewayRun{}, false},
		{[]string{"hermes", "gateway", "run"}, GatewayRun{}, false},
		{nil, GatewayRun{}, false},
	} {
		got, ok := ParseGatewayRun(tc.args)
		if ok != tc.ok {
			t.Errorf("ParseGatewayRun(%q): ok = %v, want %v", tc.args, ok, tc.ok)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ParseGatewayRun(%q) (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestHermesArgsAndIsDashboard(t *testing.T) {
	for _, tc := range []struct {
		cmd       []string
		args      []string
		dashboard bool
	}{
		{[]string{"gateway", "run"}, []string{"gateway", "run"}, false},
		{[]string{"hermes", "gateway", "run"}, []string{"gateway", "run"}, false},
		{[]string{"/usr/local/bin/hermes", "dashboard", "--port", "1"}, []string{"dashboard", "--port", "1"}, true},
		{[]string{"dashboard"}, []string{"dashboard"}, true},
		{[]string{"bash"}, []string{"bash"}, false},
		{[]string{"hermes"}, []string{}, false},
		{nil, nil, false},
	} {
		if diff := cmp.Diff(tc.args, HermesArgs(tc.cmd), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("HermesArgs(%q) (-want +got):\n%s", tc.cmd, diff)
		}
		if got := IsDashboard(tc.cmd); got != tc.dashboard {
			t.Errorf("IsDashboard(%q) = %v, want %v", tc.cmd, got, tc.dashboard)
		}
	}
}

func TestOptedOut(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == NoSuperviseEnv {
				return v
			}
			return ""
		}
	}
	g, _ := ParseGatewayRun([]string{"gateway", "run"})
	for v, want := range map[string]bool{"": false, "0": false, "1": true, "Yes": true, "true": true, "no": false} {
		if got := g.OptedOut(env(v)); got != want {
			t.Errorf("%s=%q: OptedOut = %v, want %v", NoSuperviseEnv, v, got, want)
		}
	}
	g, _ = ParseGatewayRun([]string{"gateway", "run", "--no-supervise"})
	if !g.OptedOut(env("")) {
		t.Error("--no-supervise: OptedOut = false, want true")
	}
}
