package deploy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// project is one docker-compose project of a test: the deployment's files
// plus a test-only override, a data directory, and docker-compose run
// with the variables the deployment documents.
type project struct {
	t     *testing.T
	name  string
	files []string
	env   []string
	data  string
}

func newProject(t *testing.T, data string, env []string, files ...string) *project {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose is not on PATH: %v", err)
	}
	p := &project{t: t, name: name(t, ""), files: files, data: data}
	p.env = append([]string{
		"HERMES_IMAGE=" + cfg.image,
		"HERMES_DATA=" + data,
		"HERMES_S6_E2E_RUN_ID=" + cfg.runID,
	}, env...)
	t.Cleanup(p.down)
	if r := p.compose(time.Minute, "config", "-q"); !r.ok() {
		t.Fatalf("%s", r)
	}
	return p
}

func (p *project) compose(timeout time.Duration, args ...string) result {
	full := []string{"-p", p.name}
	for _, f := range p.files {
		full = append(full, "-f", f)
	}
	return run(timeout, p.env, nil, "docker-compose", append(full, args...)...)
}

func (p *project) mustCompose(timeout time.Duration, args ...string) result {
	p.t.Helper()
	r := p.compose(timeout, args...)
	if !r.ok() {
		p.t.Fatalf("%s", r)
	}
	return r
}

// down removes everything the project created, whatever state it is in.
func (p *project) down() {
	if p.t.Failed() {
		p.diagnose()
	}
	if r := p.compose(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "30"); !r.ok() {
		p.t.Logf("%s", r)
	}
	// What down could not remove (a failed up, a daemon hiccup).
	filter := "label=com.docker.compose.project=" + p.name
	for _, k := range []struct{ ls, rm []string }{
		{[]string{"ps", "-aq"}, []string{"rm", "-f", "-v"}},
		{[]string{"network", "ls", "-q"}, []string{"network", "rm"}},
		{[]string{"volume", "ls", "-q"}, []string{"volume", "rm", "-f"}},
	} {
		ls := docker(time.Minute, append(k.ls, "--filter", filter)...)
		if ids := strings.Fields(ls.stdout); len(ids) > 0 {
			p.t.Logf("removing what down left behind: docker %s %v", strings.Join(k.rm, " "), ids)
			if r := docker(time.Minute, append(k.rm, ids...)...); !r.ok() {
				p.t.Errorf("%s", r)
			}
		}
	}
}

func (p *project) diagnose() {
	r := p.compose(time.Minute, "ps")
	p.t.Logf("docker-compose ps:%s", tail(r.stdout, 20))
	r = p.compose(time.Minute, "logs", "--no-color", "--tail", "40")
	p.t.Logf("docker-compose logs:%s", tail(r.stdout, 200))
}

// id is the container of a service (of its only replica).
func (p *project) id(service string) string {
	p.t.Helper()
	ids := strings.Fields(p.mustCompose(time.Minute, "ps", "-q", service).stdout)
	if len(ids) != 1 {
		p.t.Fatalf("service %s has %d containers, want 1", service, len(ids))
	}
	return ids[0]
}

// ids are the containers of a service.
func (p *project) ids(service string) []string {
	p.t.Helper()
	return strings.Fields(p.mustCompose(time.Minute, "ps", "-q", service).stdout)
}

// waitHealthy waits until docker reports every container healthy.
func waitHealthy(t *testing.T, ids map[string]string) {
	t.Helper()
	took := eventually(t, cfg.timeout, fmt.Sprintf("%v healthy", sortedKeys(ids)), func() (bool, string) {
		var seen []string
		all := true
		for _, n := range sortedKeys(ids) {
			r := docker(time.Minute, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", ids[n])
			st := strings.TrimSpace(r.stdout)
			seen = append(seen, n+": "+st)
			if st != "running healthy" {
				all = false
			}
			if strings.HasPrefix(st, "exited") || strings.HasSuffix(st, "unhealthy") {
				t.Fatalf("%s is %s%s", n, st, healthLog(ids[n]))
			}
		}
		return all, strings.Join(seen, ", ")
	})
	t.Logf("%v healthy in %s", sortedKeys(ids), took.Round(time.Millisecond))
}

// healthLog is docker's record of a container's last healthchecks.
func healthLog(id string) string {
	r := docker(time.Minute, "inspect", "-f", "{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}\n{{end}}{{end}}", id)
	return tail(r.stdout, 10)
}

// readData reads a file of the data directory, through a container when the
// test may not read it itself.
func readData(t *testing.T, data, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, rel))
	if err == nil {
		return string(b)
	}
	r := docker(time.Minute, "run", "--rm", "--network", "none", "--label", runLabel+"="+cfg.runID, "-v", data+":/d:ro", "--entrypoint", "cat", cfg.image, "/d/"+rel)
	if !r.ok() {
		t.Fatalf("reading %s: %v; through a container: %s", rel, err, r)
	}
	return r.stdout
}

// compose.yaml under docker-compose: both services become healthy, the
// gateway container supervises the default profile's gateway and the
// dashboard container runs the dashboard (on the published loopback port)
// and no gateway; `down` drains the gateway, whose last line reaches
// docker logs and its rotated log file, within the stop grace period.
func TestComposeUpDown(t *testing.T) {
	needImage(t)
	data := dataDir(t, nil, 0)
	port := freePort(t)
	p := newProject(t, data, []string{"HERMES_DASHBOARD_PUBLISH=" + strconv.Itoa(port)}, composeFile, "testdata/compose.test.yaml")
	p.mustCompose(3*time.Minute, "up", "-d")
	ids := map[string]string{"gateway": p.id("gateway"), "dashboard": p.id("dashboard")}
	waitHealthy(t, ids)

	// The gateway container: gateway-default supervised, its gateway up.
	ps, err := procs(ids["gateway"])
	if err != nil {
		t.Fatal(err)
	}
	if !supervises(ps, "gateway-default") {
		t.Errorf("gateway container: no s6-supervise gateway-default:%s", procList(ps))
	}
	if g := gatewayProfiles(ps); !slices.Equal(g, []string{"default"}) {
		t.Errorf("gateway container: gateways %v, want [default]:%s", g, procList(ps))
	}
	if d := dashboards(ps); len(d) > 0 {
		t.Errorf("gateway container runs a dashboard:%s", procList(d))
	}

	// The dashboard container: the dashboard, no gateway, no gateway slot.
	ps, err = procs(ids["dashboard"])
	if err != nil {
		t.Fatal(err)
	}
	d := dashboards(ps)
	if len(d) != 1 || !strings.Contains(d[0].args, strings.Join(dashboardArgs, " ")) {
		t.Errorf("dashboard container: want one `hermes %s`:%s", strings.Join(dashboardArgs, " "), procList(ps))
	}
	if g := gatewayProfiles(ps); len(g) > 0 {
		t.Errorf("dashboard container runs gateways %v:%s", g, procList(ps))
	}
	for _, pr := range ps {
		if pr.comm == "s6-supervise" && strings.Contains(pr.args, "gateway-") {
			t.Errorf("dashboard container supervises a gateway slot: %s", pr)
		}
	}
	r := docker(time.Minute, "exec", ids["dashboard"], "ls", "-A", "/run/service")
	for _, slot := range strings.Fields(r.stdout) {
		if strings.HasPrefix(slot, "gateway-") {
			t.Errorf("dashboard container has slot %s", slot)
		}
	}

	// Published on the host's loopback.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	eventually(t, cfg.timeout, "the dashboard answers on "+url, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "dashboard"), fmt.Sprintf("%s: %q", resp.Status, body)
	})

	// down: the drain, within the grace period.
	gwLogs, dashLogs := follow(t, ids["gateway"]), follow(t, ids["dashboard"])
	svcs, err := Resolve(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	grace, _ := ComposeDuration(svcs["gateway"].StopGracePeriod)
	before := time.Now()
	down := p.mustCompose(grace+time.Minute, "down")
	t.Logf("docker-compose down took %s", down.took.Round(time.Millisecond))
	for n, id := range ids {
		if sigkilled(t, id, before) {
			t.Errorf("%s: the stop grace period (%s) ran out and docker sent SIGKILL", n, grace)
		}
	}
	logs := gwLogs.wait(t, 30*time.Second)
	for _, l := range []string{lastLine("default"), "hermes-s6: drain: everything down"} {
		if !strings.Contains(logs, l) {
			t.Errorf("%q is not in the gateway container's logs:%s", l, tail(logs, 30))
		}
	}
	if strings.Contains(logs, "killed:") {
		t.Errorf("the drain killed something:%s", tail(logs, 20))
	}
	if file := readData(t, data, "logs/gateways/default/current"); !strings.Contains(file, lastLine("default")) {
		t.Errorf("%q is not in logs/gateways/default/current on the data directory:%s", lastLine("default"), tail(file, 10))
	}
	if logs := dashLogs.wait(t, 30*time.Second); !strings.Contains(logs, "dashboard received terminated, shutting down") {
		t.Errorf("the dashboard did not stop on SIGTERM:%s", tail(logs, 20))
	}
}

// compose.shards.yaml under docker-compose: every container becomes
// healthy, each profile's gateway runs in exactly one shard and all of them
// run; `down` drains every gateway.
func TestComposeShardsUpDown(t *testing.T) {
	needImage(t)
	data := dataDir(t, allProfiles(), 0)
	p := newProject(t, data, []string{"HERMES_DASHBOARD_PUBLISH=" + strconv.Itoa(freePort(t))}, shardsFile, "testdata/compose.shards.test.yaml")
	p.mustCompose(3*time.Minute, "up", "-d")
	svcs, err := Resolve(shardsFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, gws := map[string]string{}, map[string]string{}
	for _, s := range sortedKeys(svcs) {
		ids[s] = p.id(s)
		if strings.HasPrefix(s, "gateway-") {
			gws[s] = ids[s]
		}
	}
	waitHealthy(t, ids)
	want := allProfiles()
	slices.Sort(want)
	sel, ok := checkShards(t, gws, want)
	if !ok {
		t.FailNow()
	}
	where := runShards(t, gws, sel, want)
	t.Logf("profiles by shard: %v", where)
	holds(t, 2*time.Second, "each profile in exactly one shard", func() (bool, string) {
		now := map[string][]string{}
		for n, id := range gws {
			ps, err := procs(id)
			if err != nil {
				return false, err.Error()
			}
			now[n] = gatewayProfiles(ps)
		}
		return fmt.Sprint(now) == fmt.Sprint(where), fmt.Sprintf("%v, was %v", now, where)
	})

	grace, _ := ComposeDuration(svcs["gateway-0"].StopGracePeriod)
	before := time.Now()
	down := p.mustCompose(grace+time.Minute, "down")
	t.Logf("docker-compose down took %s", down.took.Round(time.Millisecond))
	for n, id := range ids {
		if sigkilled(t, id, before) {
			t.Errorf("%s: the stop grace period (%s) ran out and docker sent SIGKILL", n, grace)
		}
	}
	for _, prof := range want {
		if file := readData(t, data, "logs/gateways/"+prof+"/current"); !strings.Contains(file, lastLine(prof)) {
			t.Errorf("%q is not in logs/gateways/%s/current: its drain was lost%s", lastLine(prof), prof, tail(file, 5))
		}
	}
}

// compose.yaml with `--scale gateway=2`: two containers that both want
// every profile; the lease lets each profile's gateway run in one of them
// only, and when that container stops, the other takes the profile over.
func TestComposeStandby(t *testing.T) {
	needImage(t)
	profiles := []string{"default", "alpha", "bravo"}
	data := dataDir(t, profiles, 0)
	p := newProject(t, data, []string{"HERMES_DASHBOARD_PUBLISH=" + strconv.Itoa(freePort(t))}, composeFile, "testdata/compose.test.yaml")
	p.mustCompose(3*time.Minute, "up", "-d", "--scale", "gateway=2", "gateway")
	list := p.ids("gateway")
	if len(list) != 2 {
		t.Fatalf("%d gateway containers, want 2", len(list))
	}
	ids := map[string]string{"gateway#1": list[0], "gateway#2": list[1]}
	want := slices.Clone(profiles)
	slices.Sort(want)
	// Both containers have booted: each supervises a slot for every
	// profile, running its gateway or waiting for the lease.
	for n, id := range ids {
		eventually(t, cfg.timeout, n+" supervises every profile's slot", func() (bool, string) {
			ps, err := procs(id)
			if err != nil {
				return false, err.Error()
			}
			for _, prof := range want {
				if !supervises(ps, "gateway-"+prof) {
					return false, "no s6-supervise gateway-" + prof + procList(ps)
				}
			}
			return true, ""
		})
	}
	where := partition(t, ids, want)
	t.Logf("profiles by container: %v", where)
	holds(t, 3*time.Second, "no profile runs in both containers", func() (bool, string) {
		var all []string
		for _, id := range ids {
			ps, err := procs(id)
			if err != nil {
				return false, err.Error()
			}
			all = append(all, gatewayProfiles(ps)...)
		}
		slices.Sort(all)
		return slices.Equal(all, want), fmt.Sprint(all)
	})

	holder := ownerOf(where, "default")
	other := "gateway#1"
	if holder == other {
		other = "gateway#2"
	}
	stop := docker(time.Minute, "stop", "-t", "30", ids[holder])
	if !stop.ok() {
		t.Fatalf("%s", stop)
	}
	took := eventually(t, cfg.timeout, other+" takes over every profile once "+holder+" stopped", func() (bool, string) {
		ps, err := procs(ids[other])
		if err != nil {
			return false, err.Error()
		}
		g := gatewayProfiles(ps)
		return slices.Equal(g, want), fmt.Sprint(g)
	})
	t.Logf("%s stopped in %s; %s ran every profile %s later", holder, stop.took.Round(time.Millisecond), other, took.Round(time.Millisecond))
}
