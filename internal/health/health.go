// Package health answers "is this container doing what it was asked to
// do" (docs/health.md): the image's HEALTHCHECK and Kubernetes' probes run
// `hermes-s6 health`, every few seconds, so it costs one s6-svstat per slot
// and a few small reads, nothing more.
//
// What is checked depends on the container's role, read from its CMD:
//
//   - every container: s6-svscan answers on the scandir (else s6.ErrNoTree);
//     every gateway slot whose desired state is running, and the dashboard
//     slot while HERMES_DASHBOARD is truthy, is up — not parked by finish
//     (exit 0 or 78), not crash-looping, not down — and ready within the
//     start grace; no profile that should run was left out at boot;
//   - a dashboard container (CMD `dashboard …`): the dashboard answers HTTP;
//   - a foreground container (`gateway run --no-supervise`): the recorded
//     foreground gateway still runs.
//
// A slot the operator stopped is healthy: health judges what was asked.
package health

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nousresearch/hermes-s6/internal/cmdline"
	"github.com/nousresearch/hermes-s6/internal/config"
	"github.com/nousresearch/hermes-s6/internal/control"
	"github.com/nousresearch/hermes-s6/internal/state"
	"github.com/nousresearch/hermes-s6/render"
	"github.com/nousresearch/hermes-s6/s6"
)

// DefaultGrace is how long a slot may be up and not ready before health
// counts it (HERMES_S6_START_GRACE).
const DefaultGrace = 60 * time.Second

// CrashLoopDeaths is the run of quick deaths (each within a minute of its
// start) from which a slot counts as crash-looping. One or two are a
// restart doing its job; the backoff is 4 s by the third.
const CrashLoopDeaths = 3

// Roles a container can have.
const (
	RoleSupervisor = "supervisor" // s6 supervises the gateways (the default CMD)
	RoleDashboard  = "dashboard"  // the CMD is the dashboard
	RoleForeground = "foreground" // the CMD is an unsupervised gateway
	RoleOther      = "other"      // another CMD (serve, gui, a shell…): slots only
)

// Options is what Check needs.
type Options struct {
	config.Env
	// Cmd is the container's CMD; nil when unknown (a host, not a
	// container): slots only.
	Cmd []string
	// Foreground reports on the foreground gateway record (drain.Foreground).
	Foreground func() (recorded bool, pid int, err error)
	// LeftOut lists the profiles boot reconcile had to leave without a
	// slot (reconcile.ReadLeftOut).
	LeftOut func() []string
	// Boot reports whether this container's boot reconcile has run, and
	// its error when it failed (reconcile.ReadBoot). Asked only in a
	// container (Cmd known): until the hook has run there are no slots,
	// and nothing to find wrong is not the same as healthy.
	Boot func() (done bool, failed string, err error)
	// Probe checks that addr answers HTTP.
	Probe func(ctx context.Context, addr string) error
	// Grace is the start grace (DefaultGrace when 0).
	Grace time.Duration
}

// Problem is one reason the container is unhealthy, with what to do.
type Problem struct {
	Slot    string `json:"slot"`
	Profile string `json:"profile,omitempty"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

// Report is health's answer.
type Report struct {
	Healthy  bool      `json:"healthy"`
	Role     string    `json:"role"`
	Slots    int       `json:"slots"`
	Problems []Problem `json:"problems"`
	// Standby are the slots that wait for their profile's lease, held by
	// another container: healthy (docs/health.md).
	Standby []Standby `json:"standby"`
}

// Standby is a slot waiting for its lease.
type Standby struct {
	Slot   string `json:"slot"`
	Holder string `json:"holder"`
}

// Check looks at the container and returns the report. The error is for
// what leaves nothing to check: no s6 tree (s6.ErrNoTree), an unreadable
// scandir.
func Check(ctx context.Context, o Options) (*Report, error) {
	m := control.New(o.Env)
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	r := &Report{Role: RoleOther, Problems: []Problem{}, Standby: []Standby{}}
	skip := ""       // the profile the CMD runs in the foreground: its slot stays down
	gateways := true // reconcile installed this container's gateway slots
	switch args := cmdline.HermesArgs(o.Cmd); {
	case o.Cmd == nil:
		r.Role = RoleSupervisor
	case cmdline.IsDashboard(o.Cmd):
		r.Role, gateways = RoleDashboard, false
	case cmdline.Role(o.Cmd) != "":
		gateways = false // serve, gui, desktop: no gateway here
	default:
		if gr, ok := cmdline.ParseGatewayRun(args); ok {
			r.Role, skip = RoleSupervisor, ""
			if recorded, _, _ := o.foreground(); recorded {
				r.Role, skip = RoleForeground, gr.Profile
			}
		}
	}
	if err := s6.TreeRunning(m.Layout.Scandir); err != nil {
		return r, err
	}
	if o.Cmd != nil && o.Boot != nil {
		done, failed, err := o.Boot()
		switch {
		case err != nil:
			r.add(Problem{Slot: "boot", Problem: "cannot tell whether boot reconcile has run: " + err.Error(),
				Fix: "check HERMES_S6_RUNTIME_DIR (root's, on /run)"})
			return r, nil
		case !done:
			// The slots are not all there yet: judging them would call a
			// half-built container healthy, or a slot s6-svscan has not
			// picked up yet broken.
			r.add(Problem{Slot: "boot", Problem: "still booting: the boot reconcile (/etc/cont-init.d/50-hermes-s6) has not finished",
				Fix: "wait; if it lasts, docker logs shows where the boot stopped"})
			return r, nil
		case failed != "":
			r.add(Problem{Slot: "boot", Problem: "the boot reconcile failed: " + failed,
				Fix: "docker logs shows the whole error; fix it, then hermes-s6 reconcile (or restart the container)"})
		}
	}
	switch r.Role {
	case RoleDashboard:
		addr := dashboardAddr(cmdline.HermesArgs(o.Cmd)[1:], o.Getenv)
		if err := o.probe(ctx, addr); err != nil {
			r.add(Problem{Slot: "dashboard (CMD)", Problem: "the dashboard does not answer HTTP on " + addr + ": " + err.Error(),
				Fix: "docker logs shows why; check --host/--port of the CMD"})
		}
	case RoleForeground:
		_, pid, err := o.foreground()
		switch {
		case err != nil:
			r.add(Problem{Slot: "gateway (CMD)", Profile: skip, Problem: err.Error(), Fix: "restart the container"})
		case pid == 0:
			r.add(Problem{Slot: "gateway (CMD)", Profile: skip, Problem: "the foreground gateway has exited",
				Fix: "docker logs shows why; restart the container"})
		}
	}
	dashboard := cmdline.Truthy(o.Getenv("HERMES_DASHBOARD"))
	judged := func(row control.SlotStatus) bool { return row.Profile == "" || (row.Profile != skip && gateways) }
	wanted := func(row control.SlotStatus) bool {
		if row.Profile == "" {
			return dashboard
		}
		return row.Desired == state.Running
	}
	// Only the slots that should be up are judged, so only they cost an
	// s6-svstat: a stopped slot is healthy whatever s6 says of it.
	rows, err := m.StatusSome(ctx, func(row control.SlotStatus) bool { return judged(row) && wanted(row) })
	if err != nil {
		return r, err
	}
	now := m.Now()
	for _, row := range rows {
		if !judged(row) {
			continue
		}
		r.Slots++
		if row.Profile != "" && row.Desired == state.Corrupt {
			r.add(Problem{Slot: row.Name, Profile: row.Profile, Problem: "its desired state cannot be read: " + errText(row.Problem),
				Fix: fmt.Sprintf("say what you want: hermes-s6 start --profile %s (or stop)", row.Profile)})
			continue
		}
		if row.Waiting {
			h := "another container"
			if row.Holder != nil {
				h = row.Holder.String()
			}
			r.Standby = append(r.Standby, Standby{Slot: row.Name, Holder: h})
		}
		if row.Asked {
			if p, bad := judge(row, o.Grace, now); bad {
				r.add(p)
			}
		}
	}
	if o.LeftOut != nil && gateways {
		for _, p := range o.LeftOut() {
			if p == skip {
				continue
			}
			r.add(Problem{Slot: "gateway-" + p, Profile: p, Problem: "left out at boot: s6-svscan's slot limit has no room for it",
				Fix: "raise the limit or run fewer profiles per container (hermes-s6 doctor says how)"})
		}
	}
	r.Healthy = len(r.Problems) == 0
	return r, nil
}

func (r *Report) add(p Problem) { r.Problems = append(r.Problems, p) }

// judge returns the problem of a slot that should be up, if it has one.
func judge(row control.SlotStatus, grace time.Duration, now time.Time) (Problem, bool) {
	p := Problem{Slot: row.Name, Profile: row.Profile}
	logs, start := "docker logs", "hermes-s6 start --profile "+row.Profile
	if row.Profile != "" {
		logs = "hermes-s6 logs --profile " + row.Profile
	} else {
		start = "hermes-s6 reconcile"
	}
	quick := row.Run.Waiting() || (row.Up && row.Seconds < 60) || (!row.Up && row.WantUp)
	switch {
	case row.Waiting:
		// A standby: another container runs this profile, and this slot
		// takes over when it stops. That is the deployment working.
		return p, false
	case !row.Supervised:
		p.Problem, p.Fix = "no s6-supervise runs for it", "hermes-s6 doctor"
	case row.Run.Deaths >= CrashLoopDeaths && quick:
		p.Problem = fmt.Sprintf("crash-looping: died %d times in a row, each within a minute of starting", row.Run.Deaths)
		if row.BackingOff() {
			p.Problem += fmt.Sprintf("; backing off, next try in %ds", int(row.Run.NextTry(now)/time.Second))
		}
		p.Fix = logs + " shows why; fix it, then hermes-s6 restart --profile " + row.Profile
	case row.Up && row.Notifies && !row.Ready && row.Seconds >= int(grace/time.Second):
		p.Problem = fmt.Sprintf("up %ds but not ready (the start grace is %s)", row.Seconds, grace)
		if row.Profile == "" {
			p.Problem = fmt.Sprintf("up %ds but does not answer HTTP yet (the start grace is %s)", row.Seconds, grace)
		}
		p.Fix = logs + " shows why"
	case row.Up:
		return p, false
	case !row.WantUp && (row.ExitCode == 0 || row.ExitCode == 78) && row.Signal == "":
		p.Problem = "parked by finish after exit " + strconv.Itoa(row.ExitCode)
		if row.ExitCode == 78 {
			p.Problem += " (configuration error)"
		} else {
			p.Problem += " (it stopped itself cleanly)"
		}
		p.Fix = logs + " shows why; fix it, then " + start
	case !row.WantUp:
		p.Problem = "down, and s6 will not restart it (the crash limit parked it, or something sent s6-svc -d)"
		p.Fix = logs + " shows why; then " + start
	default:
		p.Problem = "down, restarting"
		if row.BackingOff() {
			p.Problem += fmt.Sprintf(": backing off, next try in %ds", int(row.Run.NextTry(now)/time.Second))
		}
		p.Fix = logs + " shows why it died"
	}
	return p, true
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

func (o Options) foreground() (bool, int, error) {
	if o.Foreground == nil {
		return false, 0, nil
	}
	return o.Foreground()
}

func (o Options) probe(ctx context.Context, addr string) error {
	if o.Probe == nil {
		return fmt.Errorf("no probe")
	}
	return o.Probe(ctx, addr)
}

// dashboardAddr is where a dashboard CMD listens: its --host/--port, else
// HERMES_DASHBOARD_HOST/PORT, else 127.0.0.1:9119, probed on loopback when
// it listens on every address.
func dashboardAddr(args []string, getenv func(string) string) string {
	host, port := strings.TrimSpace(getenv("HERMES_DASHBOARD_HOST")), 9119
	if host == "" {
		host = "127.0.0.1"
	}
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("HERMES_DASHBOARD_PORT"))); err == nil {
		port = n
	}
	for i := 0; i < len(args); i++ {
		k, v, eq := strings.Cut(args[i], "=")
		if !eq && i+1 < len(args) {
			v = args[i+1]
		}
		switch k {
		case "--host":
			host = v
		case "--port":
			if n, err := strconv.Atoi(v); err == nil {
				port = n
			}
		default:
			continue
		}
		if !eq {
			i++
		}
	}
	return render.ProbeAddr(host, port)
}
