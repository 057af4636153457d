package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The StatefulSet's pods, emulated under Docker from the manifest as the
// kubelet would run them: what the manifest says (args, env, read-only
// root, capabilities, no privilege escalation, fsGroup) and what the
// kubelet adds (the pod name as hostname; emptyDirs that live as long as
// the pod, a memory one being a tmpfs the kubelet mounts with its default
// mode 1777, made 3777 root:fsGroup by fsGroup; the claim's root made
// root:fsGroup 2775). The pod's volumes are held by a sandbox container,
// as the pause container holds a pod's, so that a container restart keeps
// /run, as a liveness restart does. What only a cluster shows (scheduling,
// a real ReadWriteMany volume and its locks across nodes, kubelet probe
// timing, rolling updates, the PodDisruptionBudget) is not emulated.

// pod is one emulated pod.
type pod struct {
	t       *testing.T
	name    string // the pod's name and hostname: STATEFULSET-ORDINAL
	id      string // its container's name
	sandbox string
	spec    corev1.PodSpec
	c       corev1.Container
	run     []string // docker run arguments, without the image and args
	volumes []string // the docker volumes of its emptyDirs
}

// startPod starts the pod podName of workload w with data as its claim
// (the shared one, or the pod's own from a volumeClaimTemplate).
func startPod(t *testing.T, w workload, podName, data string) *pod {
	t.Helper()
	p := &pod{t: t, name: podName, spec: w.pod.Spec, c: w.pod.Spec.Containers[0]}
	p.id = name(t, p.name)
	p.sandbox = p.id + "-sandbox"
	label := runLabel + "=" + cfg.runID
	var fsGroup int64
	if sc := p.spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = *sc.FSGroup
	}

	// Volumes, by mount: a claim is data; each emptyDir a tmpfs docker
	// volume the sandbox keeps mounted.
	sandboxArgs := []string{"run", "-d", "--name", p.sandbox, "--label", label, "--network", "none", "--read-only", "--entrypoint", "sleep"}
	t.Cleanup(func() { p.remove() })
	for _, m := range p.c.VolumeMounts {
		var v *corev1.Volume
		for i := range p.spec.Volumes {
			if p.spec.Volumes[i].Name == m.Name {
				v = &p.spec.Volumes[i]
			}
		}
		switch {
		case v == nil && w.hasClaimTemplate(m.Name), v != nil && v.PersistentVolumeClaim != nil:
			p.run = append(p.run, "--mount", "type=bind,src="+data+",dst="+m.MountPath)
		case v != nil && v.EmptyDir != nil:
			mode := 0o777 // a directory the kubelet made 0777
			if v.EmptyDir.Medium == corev1.StorageMediumMemory {
				mode = 0o1777 // tmpfs's own default: the kubelet passes no mode
			}
			opts := []string{}
			if fsGroup != 0 {
				mode |= 0o2070
				opts = append(opts, "gid="+strconv.FormatInt(fsGroup, 10))
			}
			opts = append(opts, fmt.Sprintf("mode=%o", mode))
			if q := v.EmptyDir.SizeLimit; q != nil {
				opts = append(opts, "size="+strconv.FormatInt(q.Value(), 10))
			}
			vol := p.id + "-" + v.Name
			mustDocker(t, time.Minute, "volume", "create", "--label", label, "--driver", "local",
				"--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o="+strings.Join(opts, ","), vol)
			p.volumes = append(p.volumes, vol)
			sandboxArgs = append(sandboxArgs, "--mount", "type=volume,src="+vol+",dst=/pod/"+v.Name+",volume-nocopy")
			p.run = append(p.run, "--mount", "type=volume,src="+vol+",dst="+m.MountPath+",volume-nocopy")
		default:
			t.Fatalf("mount %s: only claims, claim templates and emptyDirs are emulated", m.Name)
		}
		if m.ReadOnly {
			t.Fatalf("mount %s: read-only mounts are not emulated", m.Name)
		}
	}
	mustDocker(t, time.Minute, append(sandboxArgs, cfg.image, "infinity")...)

	// The container.
	p.run = append(p.run, "--name", p.id, "--hostname", p.name, "--label", label)
	if g := p.spec.TerminationGracePeriodSeconds; g != nil {
		p.run = append(p.run, "--stop-timeout", strconv.FormatInt(*g, 10))
	}
	if fsGroup != 0 {
		p.run = append(p.run, "--group-add", strconv.FormatInt(fsGroup, 10))
	}
	if sc := p.c.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			p.run = append(p.run, "--read-only")
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			p.run = append(p.run, "--security-opt", "no-new-privileges")
		}
		if caps := sc.Capabilities; caps != nil {
			for _, c := range caps.Drop {
				p.run = append(p.run, "--cap-drop", string(c))
			}
			for _, c := range caps.Add {
				p.run = append(p.run, "--cap-add", string(c))
			}
		}
		if sc.RunAsUser != nil {
			p.run = append(p.run, "--user", strconv.FormatInt(*sc.RunAsUser, 10))
		}
	}
	for k, v := range env(t, p.c) {
		p.run = append(p.run, "-e", k+"="+v)
	}
	args := slices.Clone(p.c.Args)
	if len(p.c.Command) > 0 {
		p.run = append(p.run, "--entrypoint", p.c.Command[0])
		args = append(slices.Clone(p.c.Command[1:]), args...)
	}
	mustDocker(t, 2*time.Minute, append(append(append([]string{"run", "-d"}, p.run...), cfg.image), args...)...)
	t.Logf("%s: docker run -d %s %s %s", p.name, strings.Join(p.run, " "), cfg.image, strings.Join(args, " "))
	return p
}

// workloadOf is the workload called name in objs.
func workloadOf(t *testing.T, objs []Object, name string) workload {
	t.Helper()
	for _, w := range workloads(objs) {
		if w.meta.Name == name {
			return w
		}
	}
	t.Fatalf("no workload %s", name)
	return workload{}
}

func (p *pod) remove() {
	if p.t.Failed() {
		p.diagnose()
	}
	docker(time.Minute, "rm", "-f", "-v", p.id)
	docker(time.Minute, "rm", "-f", "-v", p.sandbox)
	for _, v := range p.volumes {
		if r := docker(time.Minute, "volume", "rm", v); !r.ok() {
			p.t.Logf("removing volume %s: %s", v, r)
		}
	}
}

func (p *pod) diagnose() {
	r := docker(time.Minute, "logs", "--tail", "60", p.id)
	p.t.Logf("pod %s: docker logs (last 60 lines):%s%s", p.name, tail(r.stdout, 60), tail(r.stderr, 60))
	if ps, err := procs(p.id); err == nil {
		p.t.Logf("pod %s: processes:%s", p.name, procList(ps))
	}
	if r := docker(time.Minute, "exec", p.id, "hermes-s6", "status"); r.code >= 0 {
		p.t.Logf("pod %s: hermes-s6 status: exit %d%s%s", p.name, r.code, tail(r.stdout, 30), tail(r.stderr, 10))
	}
}

// probe runs a probe's exec command as the kubelet does (in the container,
// as its user, with its environment), bounded by the probe's timeout.
func (p *pod) probe(pr *corev1.Probe) result {
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	return docker(timeout+5*time.Second, append([]string{"exec", p.id}, pr.Exec.Command...)...)
}

// probeOK is one probe run the kubelet counts as a success: exit 0 within
// the probe's timeout.
func (p *pod) probeOK(pr *corev1.Probe) (bool, result) {
	r := p.probe(pr)
	return r.ok() && r.took <= time.Duration(max(pr.TimeoutSeconds, 1))*time.Second, r
}

// waitStarted polls the startup probe until it passes, within the time the
// manifest gives it (initial delay + period × failure threshold).
func (p *pod) waitStarted() time.Duration {
	p.t.Helper()
	sp := p.c.StartupProbe
	budget := time.Duration(sp.InitialDelaySeconds)*time.Second + time.Duration(max(sp.PeriodSeconds, 10))*time.Second*time.Duration(max(sp.FailureThreshold, 3))
	took := eventually(p.t, budget, p.name+": startup probe passes within the manifest's budget", func() (bool, string) {
		ok, r := p.probeOK(sp)
		return ok, r.String()
	})
	p.t.Logf("%s: started in %s", p.name, took.Round(time.Millisecond))
	return took
}

func (p *pod) exec(user string, stdin []byte, argv ...string) result {
	args := []string{"exec"}
	if stdin != nil {
		args = append(args, "-i")
	}
	if user != "" {
		args = append(args, "-u", user)
	}
	return run(time.Minute, nil, stdin, "docker", append(append(args, p.id), argv...)...)
}

func (p *pod) mustExec(user string, stdin []byte, argv ...string) string {
	p.t.Helper()
	r := p.exec(user, stdin, argv...)
	if !r.ok() {
		p.t.Fatalf("%s", r)
	}
	return r.stdout
}

// The StatefulSet of kubernetes/gateway.yaml, every pod of it under Docker on
// one shared volume: each starts within its startup probe's budget on a
// read-only root with a /run that is not writable by the service account,
// the pods split the profiles between them by ordinal, every probe passes;
// a gateway parked by finish (exit 78) fails the probes with exit 1; a
// liveness restart of that container, with /run kept, brings it back; a pod
// deletion drains every gateway within the grace period.
func TestStatefulSetUnderDocker(t *testing.T) {
	needImage(t)
	objs := manifests(t, kubeDir)
	sts := statefulSets(objs)[0]
	spec := sts.Spec.Template.Spec
	c := spec.Containers[0]
	var fsGroup int64
	if sc := spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = *sc.FSGroup
	}
	data := dataDir(t, allProfiles(), fsGroup)

	n := int(replicas(sts.Spec.Replicas))
	pods := map[string]*pod{}
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		p := startPod(t, workloadOf(t, objs, sts.Name), fmt.Sprintf("%s-%d", sts.Name, i), data)
		pods[p.name], ids[p.name] = p, p.id
	}
	for _, pn := range sortedKeys(pods) {
		pods[pn].started()
	}

	// The ordinals split the profiles: each pod's hermes-s6 names its
	// shard's, supervises those and runs their gateways, each profile in
	// one pod.
	want := allProfiles()
	slices.Sort(want)
	sel, ok := checkShards(t, ids, want)
	if !ok {
		t.FailNow()
	}
	where := runShards(t, ids, sel, want)
	t.Logf("profiles by pod: %v", where)

	// A gateway parked by its finish script (exit 78, a configuration
	// error) makes the pod unhealthy.
	const parked = "default"
	owner := pods[ownerOf(sel, parked)]
	owner.mustExec("hermes", []byte("78\n"), "tee", dataPath+"/standin/"+parked+".exit")
	r := owner.exec("hermes", nil, "hermes-s6", "restart", "--profile", parked)
	t.Logf("%s: hermes-s6 restart --profile %s: exit %d%s", owner.name, parked, r.code, tail(r.stderr, 5))
	var last result
	eventually(t, cfg.timeout, owner.name+": the liveness probe fails once "+parked+" is parked", func() (bool, string) {
		last = owner.probe(c.LivenessProbe)
		return last.code != 0, last.String()
	})
	t.Logf("%s: the probe with %s parked: exit %d in %s%s", owner.name, parked, last.code, last.took.Round(time.Millisecond), tail(last.stdout+last.stderr, 5))
	if last.code != 1 {
		t.Errorf("%s: probe with a parked gateway: exit %d, want 1 (unhealthy)\n%s", owner.name, last.code, last)
	}
	if out := last.stdout + last.stderr; !strings.Contains(out, parked) {
		t.Errorf("%s: the unhealthy probe does not name the parked profile %s:%s", owner.name, parked, tail(out, 10))
	}
	if ok, r := owner.probeOK(c.ReadinessProbe); ok {
		t.Errorf("%s: readiness passes with a parked gateway: %s", owner.name, r)
	}
	for _, pn := range sortedKeys(pods) {
		if pn == owner.name {
			continue
		}
		if ok, r := pods[pn].probeOK(c.LivenessProbe); !ok {
			t.Errorf("%s: unhealthy because of another pod's gateway: %s", pn, r)
		}
	}

	// The kubelet restarts the container (same pod: /run stays); with the
	// configuration fixed, the gateway comes back and the pod is healthy.
	owner.mustExec("hermes", nil, "rm", dataPath+"/standin/"+parked+".exit")
	grace := derefInt64(spec.TerminationGracePeriodSeconds, 30)
	mustDocker(t, time.Duration(grace)*time.Second+time.Minute, "restart", "-t", strconv.Itoa(int(grace)), owner.id)
	owner.waitStarted()
	eventually(t, cfg.timeout, owner.name+": "+parked+"'s gateway runs again after the restart", func() (bool, string) {
		ps, err := procs(owner.id)
		if err != nil {
			return false, err.Error()
		}
		g := gatewayProfiles(ps)
		return slices.Equal(g, sel[owner.name]), fmt.Sprintf("running %v, want its shard %v", g, sel[owner.name])
	})

	// Pod deletion: SIGTERM, the drain, within the grace period.
	for _, pn := range sortedKeys(pods) {
		pods[pn].deleteAndCheck()
	}
}

// deleteAndCheck stops the pod as a deletion does (SIGTERM, SIGKILL after
// the grace period) and checks the drain: every gateway that ran wrote its
// last line (a dashboard its own), the drain killed nothing, the runtime
// sent no SIGKILL, the container exited 0.
func (p *pod) deleteAndCheck() {
	t := p.t
	t.Helper()
	grace := derefInt64(p.spec.TerminationGracePeriodSeconds, 30)
	ps, err := procs(p.id)
	if err != nil {
		t.Fatal(err)
	}
	running := gatewayProfiles(ps)
	f := follow(t, p.id)
	before := time.Now()
	r := docker(time.Duration(grace)*time.Second+time.Minute, "stop", "-t", strconv.Itoa(int(grace)), p.id)
	if !r.ok() {
		t.Fatalf("%s: %s", p.name, r)
	}
	logs := f.wait(t, 30*time.Second)
	t.Logf("%s: stopped in %s", p.name, r.took.Round(time.Millisecond))
	if sigkilled(t, p.id, before) {
		t.Errorf("%s: the grace period (%d s) ran out and the runtime sent SIGKILL", p.name, grace)
	}
	for _, prof := range running {
		if !strings.Contains(logs, lastLine(prof)) {
			t.Errorf("%s: %q is not in its logs: the drain lost it%s", p.name, lastLine(prof), tail(logs, 30))
		}
	}
	if len(dashboards(ps)) > 0 && !strings.Contains(logs, "dashboard received terminated, shutting down") {
		t.Errorf("%s: the dashboard did not stop on SIGTERM:%s", p.name, tail(logs, 20))
	}
	if strings.Contains(logs, "killed:") {
		t.Errorf("%s: the drain killed something:%s", p.name, tail(logs, 20))
	}
	if st := docker(time.Minute, "inspect", "-f", "{{.State.ExitCode}}", p.id); strings.TrimSpace(st.stdout) != "0" {
		t.Errorf("%s: exit code %s after the stop, want 0", p.name, strings.TrimSpace(st.stdout))
	}
}

// started checks a pod the way a started pod is checked: its startup probe
// passes within the manifest's budget, then readiness and liveness; root
// cannot write /; /run is root's and nobody else's.
func (p *pod) started() {
	t := p.t
	t.Helper()
	p.waitStarted()
	for what, pr := range map[string]*corev1.Probe{"readiness": p.c.ReadinessProbe, "liveness": p.c.LivenessProbe} {
		if ok, r := p.probeOK(pr); !ok {
			t.Errorf("%s: %s probe fails on a started pod: %s", p.name, what, r)
		} else {
			t.Logf("%s: %s probe passes in %s", p.name, what, r.took.Round(time.Millisecond))
		}
	}
	if r := p.exec("", nil, "touch", "/hermes-s6-deploy-rw-test"); r.ok() {
		t.Errorf("%s: root could write / : the root filesystem is not read-only", p.name)
	}
	st := strings.Fields(p.mustExec("", nil, "stat", "-c", "%a %U %G", "/run"))
	if mode, err := strconv.ParseUint(st[0], 8, 32); err != nil || mode&0o022 != 0 || st[1] != "root" {
		t.Errorf("%s: /run is %v after boot: want root's, writable by nobody else (the service account could replace what root runs)", p.name, st)
	}
}

// The dashboard Deployment of kubernetes/dashboard.yaml under Docker, on the
// volume the gateways use: its probes pass (a dashboard container's health
// asks the dashboard over HTTP), it runs the dashboard and no gateway
// although the volume holds running profiles, and it stops cleanly.
func TestDashboardDeploymentUnderDocker(t *testing.T) {
	needImage(t)
	objs := manifests(t, kubeDir)
	w := workloadOf(t, objs, "hermes-dashboard")
	var fsGroup int64
	if sc := w.pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = *sc.FSGroup
	}
	data := dataDir(t, []string{"default", "alpha"}, fsGroup)
	p := startPod(t, w, w.meta.Name+"-5d8c7b9f4-x2x7q", data)
	p.started()
	ps, err := procs(p.id)
	if err != nil {
		t.Fatal(err)
	}
	if d := dashboards(ps); len(d) != 1 || !strings.Contains(d[0].args, strings.Join(dashboardArgs, " ")) {
		t.Errorf("want one `hermes %s`:%s", strings.Join(dashboardArgs, " "), procList(ps))
	}
	if g := gatewayProfiles(ps); len(g) > 0 {
		t.Errorf("the dashboard pod runs gateways %v", g)
	}
	if slots := gatewaySlots(t, p.id); len(slots) > 0 {
		t.Errorf("the dashboard pod has gateway slots %v", slots)
	}
	r := p.exec("hermes", nil, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/", dashboardPort))
	if !r.ok() || r.stdout != "200" {
		t.Errorf("the dashboard does not answer on its port: %s", r)
	}
	p.deleteAndCheck()
}

// The per-pod-volume variant under Docker: pod hermes-gateway-1 with a
// volume of its own supervises and runs every profile on it (its ordinal
// alone shards nothing), passes its probes and drains on deletion.
func TestPerPodVolumeUnderDocker(t *testing.T) {
	needImage(t)
	objs := manifests(t, variantsDir)
	sts := statefulSets(objs)[0]
	w := workloadOf(t, objs, sts.Name)
	var fsGroup int64
	if sc := w.pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = *sc.FSGroup
	}
	profiles := []string{"default", "alpha", "bravo", "charlie"}
	data := dataDir(t, profiles, fsGroup)
	p := startPod(t, w, sts.Name+"-1", data)
	p.started()
	want := slices.Sorted(slices.Values(profiles))
	if here, elsewhere := selection(t, p.id); !slices.Equal(here, want) || len(elsewhere) > 0 {
		t.Errorf("selection: here %v, elsewhere %v; want every profile %v here", here, elsewhere, want)
	}
	if slots := gatewaySlots(t, p.id); !slices.Equal(slots, want) {
		t.Errorf("gateway slots %v, want %v", slots, want)
	}
	partition(t, map[string]string{p.name: p.id}, want)
	p.deleteAndCheck()
}
