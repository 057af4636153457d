package health

import (
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/slot"
	"github.com/nousresearch/hermes-s6/s6"
)

func TestJudge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	up := s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 7, ExitCode: -1, Seconds: 120}
	row := func(st s6.Status, mod ...func(*control.SlotStatus)) control.SlotStatus {
		r := control.SlotStatus{Name: "gateway-coder", Profile: "coder", Status: st, Ran: true}
		for _, m := range mod {
			m(&r)
		}
		return r
	}
	down := func(code int, sig string, want bool) s6.Status {
		return s6.Status{Supervised: true, WantUp: want, NormallyUp: true, PID: -1, ExitCode: code, Signal: sig, Seconds: 3}
	}
	backoff := func(deaths int, delay time.Duration) func(*control.SlotStatus) {
		return func(r *control.SlotStatus) {
			r.Run = slot.RunState{Started: now.Add(-5 * time.Second), Died: now.Add(-time.Second), Deaths: deaths, Delay: delay}
		}
	}
	notifies := func(r *control.SlotStatus) { r.Notifies = true }
	young := up
	young.Seconds = 5
	for _, c := range []struct {
		name string
		row  control.SlotStatus
		want string // "" for healthy
	}{
		{"up", row(up), ""},
		{"up, no readiness declared", row(young), ""},
		{"exit 78", row(down(78, "", false)), "parked by finish after exit 78 (configuration error)"},
		{"exit 0", row(down(0, "", false)), "parked by finish after exit 0 (it stopped itself cleanly)"},
		{"crash limit", row(down(1, "", false)), "s6 will not restart it"},
		{"restarting", row(down(1, "", true)), "down, restarting"},
		{"one crash, backing off", row(young, backoff(1, time.Second)), ""},
		{"crash loop", row(young, backoff(3, 4*time.Second)), "crash-looping: died 3 times in a row, each within a minute of starting; backing off, next try in 3s"},
		{"crash loop, between tries", row(down(1, "", true), backoff(4, 8*time.Second)), "crash-looping: died 4 times"},
		{"old crashes, up since", row(up, func(r *control.SlotStatus) { r.Run.Deaths = 5 }), ""},
		{"not ready in grace", row(young, notifies), ""},
		{"not ready past grace", row(up, notifies), "up 120s but not ready (the start grace is 1m0s)"},
		{"ready", row(func() s6.Status { s := up; s.Ready = true; return s }(), notifies), ""},
		{"unsupervised", row(s6.Status{PID: -1, ExitCode: -1}), "no s6-supervise runs for it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, bad := judge(c.row, DefaultGrace, now)
			if c.want == "" {
				if bad {
					t.Fatalf("want healthy, got %+v", p)
				}
				return
			}
			if !bad || !strings.Contains(p.Problem, c.want) || p.Fix == "" || p.Slot != "gateway-coder" {
				t.Fatalf("want a problem with %q and a fix, got bad=%v %+v", c.want, bad, p)
			}
		})
	}
}

func TestDashboardAddr(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "127.0.0.1:9119"},
		{[]string{"--host", "0.0.0.0", "--port", "8080"}, nil, "127.0.0.1:8080"},
		{[]string{"--host=::", "--port=81"}, nil, "[::1]:81"},
		{[]string{"--no-open"}, map[string]string{"HERMES_DASHBOARD_HOST": "10.0.0.5", "HERMES_DASHBOARD_PORT": "9000"}, "10.0.0.5:9000"},
	} {
		if got := dashboardAddr(c.args, env(c.env)); got != c.want {
			t.Errorf("dashboardAddr(%q, %v) = %s, want %s", c.args, c.env, got, c.want)
		}
	}
}
