package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The decoder is the first rule: each of these must be refused, or the
// rules below could be checking a field Kubernetes would never see.
func TestDecodeStrictRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, selectr: {a: b}}\n",
		"mis-cased field":   "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {Replicas: 2}\n",
		"duplicate key":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None}\nspec: {}\n",
		"wrong type":        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: two}\n",
		"unknown kind":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"unknown container": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, readOnlyRootFileSystem: true}]}}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if o, err := decodeObject([]byte(doc)); err == nil {
				t.Errorf("decoded without error: %s", o)
			}
		})
	}
	t.Run("compose typo", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "compose.yaml")
		doc := "x-a: &a {image: i}\nservices:\n  s:\n    <<: *a\n    stop_grace_periods: 30s\n"
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCompose(p); err == nil {
			t.Error("stop_grace_periods decoded without error")
		}
	})
}

func TestSplitDocuments(t *testing.T) {
	docs := SplitDocuments([]byte("# head\n---\na: 1\n--- # two\nb: 2\n---\n# only a comment\n---\nc: |\n  ---x\n"))
	var got []string
	for _, d := range docs {
		got = append(got, strings.TrimSpace(string(d)))
	}
	want := []string{"a: 1", "b: 2", "c: |\n  ---x"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Every manifest decodes; the kustomization applies every manifest in
// its directory and sets the image the manifests name.
func TestKustomization(t *testing.T) {
	k, err := LoadKustomization(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := YAMLFiles(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %q, want every manifest of %s: %q", got, kubeDir, want)
	}
	name, _, _ := strings.Cut(defaultImage, ":")
	found := false
	for _, img := range k.Images {
		found = found || img.Name == name
	}
	if !found {
		t.Errorf("kustomization images has no entry for %s, the image the manifests name", name)
	}
	for set, objs := range manifestSets(t) {
		for _, w := range workloads(objs) {
			for _, c := range w.pod.Spec.Containers {
				if c.Image != defaultImage {
					t.Errorf("%s: %s: container %s runs %s, want %s (set it with kustomize images)", set, w, c.Name, c.Image, defaultImage)
				}
			}
		}
	}
}

// The rules every pod template follows (docs/deploy.md).
func TestPodTemplates(t *testing.T) {
	health := healthArgv(t)
	sets := manifestSets(t)
	for _, set := range sortedKeys(sets) {
		objs := sets[set]
		for _, w := range workloads(objs) {
			t.Run(set+"/"+w.obj.Kind+"/"+w.meta.Name, func(t *testing.T) {
				checkPod(t, w, objs, health)
			})
		}
	}
}

func checkPod(t *testing.T, w workload, objs []Object, health []string) {
	pod := w.pod.Spec
	if ok, err := selects(w.selector, w.pod.Labels); err != nil || !ok {
		t.Errorf("selector %v does not select the template's labels %v (%v)", w.selector, w.pod.Labels, err)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	e := env(t, c)

	// One image, its entrypoint, the command of the role.
	if len(c.Command) > 0 {
		t.Errorf("command %q replaces the image's ENTRYPOINT (hermes-s6 entrypoint, then s6-overlay's /init as PID 1): set args only", c.Command)
	}
	role := w.pod.Labels["app.kubernetes.io/component"]
	switch role {
	case "gateway":
		if !slices.Equal(c.Args, gatewayArgs) {
			t.Errorf("args %q, want %q", c.Args, gatewayArgs)
		}
	case "dashboard":
		if !slices.Equal(c.Args, dashboardArgs) {
			t.Errorf("args %q, want %q", c.Args, dashboardArgs)
		}
		found := false
		for _, p := range c.Ports {
			found = found || int(p.ContainerPort) == dashboardPort
		}
		if !found {
			t.Errorf("ports %v do not include the dashboard's %d", c.Ports, dashboardPort)
		}
	default:
		t.Errorf("label app.kubernetes.io/component %q, want gateway or dashboard", role)
	}

	// Probes: hermes-s6 health, with room to answer and to boot.
	probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe}
	for _, name := range sortedKeys(probes) {
		p := probes[name]
		if p == nil {
			t.Errorf("no %s", name)
			continue
		}
		if p.Exec == nil || !slices.Equal(p.Exec.Command, health) {
			t.Errorf("%s does not exec %q: %+v", name, health, p.ProbeHandler)
		}
		if got := seconds(p.TimeoutSeconds, 1); got < minProbeTimeout {
			t.Errorf("%s timeoutSeconds %s < %s", name, got, minProbeTimeout)
		}
	}
	if p := c.StartupProbe; p != nil {
		budget := seconds(p.InitialDelaySeconds, 0) + seconds(p.PeriodSeconds, 10)*time.Duration(max(p.FailureThreshold, 3))
		if budget < minStartBudget {
			t.Errorf("startupProbe allows %s to boot, want at least %s", budget, minStartBudget)
		}
	}

	// The grace covers the drain.
	drain := drainOf(t, e)
	if grace := seconds(derefInt64(pod.TerminationGracePeriodSeconds, 30), 0); grace < drain+drainMargin {
		t.Errorf("terminationGracePeriodSeconds %s < HERMES_S6_DRAIN_TIMEOUT %s + %s: SIGKILL would come mid-drain", grace, drain, drainMargin)
	}

	// Root boots s6-overlay, PID 1 is /init, the root filesystem is read-only.
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("securityContext.readOnlyRootFilesystem is not true")
	}
	if sc != nil {
		if sc.RunAsUser != nil && *sc.RunAsUser != 0 || sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
			t.Errorf("the container must start as root (s6-overlay's /init); the gateways drop to the service account")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("privileged is not needed")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("allowPrivilegeEscalation is not false")
		}
		if caps := sc.Capabilities; caps != nil && slices.Contains(caps.Drop, "ALL") {
			for _, need := range []corev1.Capability{"SETUID", "SETGID", "KILL"} {
				if !slices.Contains(caps.Add, need) {
					t.Errorf("capabilities drop ALL but do not add %s (dropping to the service account, signalling its gateways)", need)
				}
			}
		}
	}
	if ps := pod.SecurityContext; ps != nil && (ps.RunAsUser != nil && *ps.RunAsUser != 0 || ps.RunAsNonRoot != nil && *ps.RunAsNonRoot) {
		t.Errorf("pod securityContext runs as non-root: s6-overlay's /init needs root")
	}
	if pod.ShareProcessNamespace != nil && *pod.ShareProcessNamespace || pod.HostPID {
		t.Errorf("a shared or host PID namespace takes PID 1 from s6-overlay's /init")
	}
	for _, k := range []string{"HERMES_UID", "HERMES_GID", "PUID", "PGID"} {
		if _, ok := e[k]; ok {
			t.Errorf("env %s remaps the service account by editing /etc/passwd, which a read-only root filesystem forbids", k)
		}
	}
	if _, ok := e["HERMES_GATEWAY_NO_SUPERVISE"]; ok {
		t.Errorf("HERMES_GATEWAY_NO_SUPERVISE: the deployments supervise their gateways")
	}

	// /run: a memory emptyDir, and s6-overlay told the root is read-only.
	if v, m := volumeAt(pod, c, "/run"); v == nil || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || m.ReadOnly {
		t.Errorf("/run is not a writable emptyDir with medium Memory: %s", describeVolume(v))
	}
	if e["S6_READ_ONLY_ROOT"] != "1" {
		t.Errorf("S6_READ_ONLY_ROOT=%q, want 1 with a read-only root filesystem", e["S6_READ_ONLY_ROOT"])
	}
	if v, m := volumeAt(pod, c, "/tmp"); v == nil || v.EmptyDir == nil || m.ReadOnly {
		t.Errorf("/tmp is not a writable emptyDir: the gateway program needs a temporary directory on a read-only root")
	}

	// The data volume: the shared ReadWriteMany claim, or the pod's own.
	v, m := volumeAt(pod, c, dataPath)
	switch {
	case m == nil:
		t.Errorf("nothing mounted at %s (HERMES_HOME)", dataPath)
	case m.ReadOnly:
		t.Errorf("%s is mounted read-only", dataPath)
	case v != nil && v.PersistentVolumeClaim != nil:
		claim, ok := claims(objs)[v.PersistentVolumeClaim.ClaimName]
		if !ok {
			t.Errorf("claim %s is not in the manifests", v.PersistentVolumeClaim.ClaimName)
		} else if !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("claim %s is not ReadWriteMany: the pods share it", claim.Name)
		}
	case v == nil && w.hasClaimTemplate(m.Name):
	default:
		t.Errorf("%s is neither a claim nor a volumeClaimTemplate: %s", dataPath, describeVolume(v))
	}
	if fs := pod.SecurityContext; fs == nil || fs.FSGroup == nil || *fs.FSGroup != serviceUID {
		t.Errorf("pod securityContext.fsGroup is not %d: the service account could not write the volume's root", serviceUID)
	}

	// Every volume mounted, every mount backed.
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = true
		if !w.hasVolume(m.Name) {
			t.Errorf("mount %s at %s has no volume", m.Name, m.MountPath)
		}
	}
	for _, v := range pod.Volumes {
		if !mounted[v.Name] {
			t.Errorf("volume %s is never mounted", v.Name)
		}
	}

	// Service links.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		if bad := linkCollisions(t, objs); len(bad) > 0 {
			t.Errorf("enableServiceLinks is not false: the kubelet would set %v, which the image reads", bad)
		}
	}
}

func describeVolume(v *corev1.Volume) string {
	switch {
	case v == nil:
		return "no volume"
	case v.EmptyDir != nil:
		return fmt.Sprintf("volume %s: emptyDir medium %q", v.Name, v.EmptyDir.Medium)
	case v.PersistentVolumeClaim != nil:
		return fmt.Sprintf("volume %s: claim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
	}
	return fmt.Sprintf("volume %s: another kind", v.Name)
}

func (w workload) hasClaimTemplate(name string) bool {
	for _, c := range w.claims {
		if c.Name == name {
			return true
		}
	}
	return false
}

func (w workload) hasVolume(name string) bool {
	for _, v := range w.pod.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return w.hasClaimTemplate(name)
}

func seconds(v int32, def int32) time.Duration {
	if v == 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

func derefInt64(p *int64, def int64) int32 {
	if p == nil {
		return int32(def)
	}
	return int32(*p)
}

// linkCollisions are the service-link variables of the manifests' Services
// that the image reads.
func linkCollisions(t *testing.T, objs []Object) []string {
	vars := imageVariables(t)
	var bad []string
	for _, s := range services(objs) {
		for _, v := range serviceLinkVars(s) {
			if vars[v] {
				bad = append(bad, v)
			}
		}
	}
	return bad
}

// The service-link rule is not vacuous: the dashboard's Service would set
// HERMES_DASHBOARD_PORT=tcp://… in every pod.
func TestServiceLinksWouldCollide(t *testing.T) {
	bad := linkCollisions(t, manifests(t, kubeDir))
	if !slices.Contains(bad, "HERMES_DASHBOARD_PORT") {
		t.Errorf("collisions %v: want HERMES_DASHBOARD_PORT from Service hermes-dashboard", bad)
	}
}

// A StatefulSet is sharded by ordinal over a shared volume (HERMES_S6_SHARDS
// equal to replicas), or every pod has its own volume and no shards; its
// headless Service names the pods; one PodDisruptionBudget covers it.
func TestStatefulSets(t *testing.T) {
	for set, objs := range manifestSets(t) {
		sets := statefulSets(objs)
		if len(sets) != 1 {
			t.Errorf("%s: %d StatefulSets, want 1", set, len(sets))
			continue
		}
		s := sets[0]
		t.Run(set, func(t *testing.T) {
			c := s.Spec.Template.Spec.Containers[0]
			e := env(t, c)
			if _, ok := e["HERMES_S6_SHARD"]; ok {
				t.Errorf("HERMES_S6_SHARD would put every pod on the same shard: use HERMES_S6_SHARDS and the ordinal")
			}
			n := replicas(s.Spec.Replicas)
			shared := len(s.Spec.VolumeClaimTemplates) == 0
			if shared {
				if got := e["HERMES_S6_SHARDS"]; got != strconv.Itoa(int(n)) {
					t.Errorf("HERMES_S6_SHARDS=%q with %d replicas: want them equal, or profiles of the missing shards run nowhere", got, n)
				}
				if n < 2 {
					t.Errorf("%d replicas: the manifest is the sharded example, keep at least 2", n)
				}
			} else {
				if _, ok := e["HERMES_S6_SHARDS"]; ok {
					t.Errorf("HERMES_S6_SHARDS with a volume per pod: a pod would skip profiles on its own volume")
				}
				for _, ct := range s.Spec.VolumeClaimTemplates {
					if !slices.Contains(ct.Spec.AccessModes, corev1.ReadWriteOnce) {
						t.Errorf("volumeClaimTemplate %s: want ReadWriteOnce (one pod each)", ct.Name)
					}
				}
				if p := s.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
					t.Errorf("persistentVolumeClaimRetentionPolicy must retain the claims: they hold the profiles")
				}
			}

			var headless *corev1.Service
			for _, svc := range services(objs) {
				if svc.Name == s.Spec.ServiceName {
					headless = svc
				}
			}
			switch {
			case headless == nil:
				t.Errorf("serviceName %q is not a Service in the manifests", s.Spec.ServiceName)
			case headless.Spec.ClusterIP != corev1.ClusterIPNone:
				t.Errorf("Service %s is not headless", headless.Name)
			default:
				if ok, err := selects(mapSelector(headless.Spec.Selector), s.Spec.Template.Labels); !ok || err != nil {
					t.Errorf("Service %s does not select the StatefulSet's pods (%v)", headless.Name, err)
				}
			}

			// One budget covers these pods and no others.
			var covering int
			for _, p := range pdbs(objs) {
				ok, err := selects(p.Spec.Selector, s.Spec.Template.Labels)
				if err != nil {
					t.Errorf("PodDisruptionBudget %s: %v", p.Name, err)
				}
				if !ok {
					continue
				}
				covering++
				switch {
				case p.Spec.MaxUnavailable != nil:
					if v := p.Spec.MaxUnavailable; v.Type != intstr.Int || v.IntVal < 1 {
						t.Errorf("PodDisruptionBudget %s maxUnavailable %s: want a count of at least 1, or no node drain can proceed", p.Name, v.String())
					}
				case p.Spec.MinAvailable != nil:
					if v := p.Spec.MinAvailable; v.Type != intstr.Int || v.IntVal >= n {
						t.Errorf("PodDisruptionBudget %s minAvailable %s with %d replicas blocks every eviction", p.Name, v.String(), n)
					}
				default:
					t.Errorf("PodDisruptionBudget %s sets neither maxUnavailable nor minAvailable", p.Name)
				}
				for _, other := range workloads(objs) {
					if other.meta.Name == s.Name {
						continue
					}
					if ok, _ := selects(p.Spec.Selector, other.pod.Labels); ok {
						t.Errorf("PodDisruptionBudget %s also selects %s's pods", p.Name, other)
					}
				}
			}
			if covering != 1 {
				t.Errorf("%d PodDisruptionBudgets select the StatefulSet's pods, want 1", covering)
			}
		})
	}
}

// mapSelector is a Service's selector as a LabelSelector.
func mapSelector(m map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: m}
}

// The per-pod-volume variant is gateway.yaml's StatefulSet but for the
// data volume and the shard count: the two cannot drift apart.
func TestVariantsInStep(t *testing.T) {
	sets := manifestSets(t)
	main := statefulSets(sets["kubernetes"])
	if len(main) != 1 {
		t.Fatalf("kubernetes/: %d StatefulSets", len(main))
	}
	for name, objs := range sets {
		if name == "kubernetes" {
			continue
		}
		for _, v := range statefulSets(objs) {
			a, b := main[0].DeepCopy(), v.DeepCopy()
			for _, s := range []*appsv1.StatefulSet{a, b} {
				s.Spec.VolumeClaimTemplates = nil
				s.Spec.PersistentVolumeClaimRetentionPolicy = nil
				spec := &s.Spec.Template.Spec
				spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "data" })
				c := &spec.Containers[0]
				c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HERMES_S6_SHARDS" })
			}
			ja, err1 := json.MarshalIndent(a, "", " ")
			jb, err2 := json.MarshalIndent(b, "", " ")
			if err := firstErr(err1, err2); err != nil {
				t.Fatal(err)
			}
			if string(ja) != string(jb) {
				t.Errorf("%s: its StatefulSet differs from kubernetes/gateway.yaml's beyond the data volume and HERMES_S6_SHARDS:\n%s", name, lineDiff(string(ja), string(jb)))
			}
		}
	}
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if mb[l] == 0 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if ma[l] == 0 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// Services select pods that exist and reach a port they declare.
func TestServices(t *testing.T) {
	for set, objs := range manifestSets(t) {
		for _, svc := range services(objs) {
			var target *workload
			for _, w := range workloads(objs) {
				if ok, _ := selects(mapSelector(svc.Spec.Selector), w.pod.Labels); ok {
					if target != nil {
						t.Errorf("%s: Service %s selects the pods of %s and %s", set, svc.Name, target, w)
					}
					w := w
					target = &w
				}
			}
			if target == nil {
				t.Errorf("%s: Service %s selects no pods of the manifests", set, svc.Name)
				continue
			}
			for _, p := range svc.Spec.Ports {
				if !declares(target.pod.Spec.Containers[0], p.TargetPort, p.Port) {
					t.Errorf("%s: Service %s port %d targets %s, which %s's container does not declare", set, svc.Name, p.Port, p.TargetPort.String(), target)
				}
			}
		}
	}
}

func declares(c corev1.Container, target intstr.IntOrString, port int32) bool {
	for _, cp := range c.Ports {
		switch {
		case target.Type == intstr.String && target.StrVal != "" && cp.Name == target.StrVal:
			return true
		case target.Type == intstr.Int && target.IntVal != 0 && cp.ContainerPort == target.IntVal:
			return true
		case target.Type == intstr.Int && target.IntVal == 0 && cp.ContainerPort == port:
			return true
		}
	}
	return false
}

// The claims are used, and the shared one is ReadWriteMany with a size.
func TestClaims(t *testing.T) {
	for set, objs := range manifestSets(t) {
		for name, c := range claims(objs) {
			used := false
			for _, w := range workloads(objs) {
				for _, v := range w.pod.Spec.Volumes {
					used = used || v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name
				}
			}
			if !used {
				t.Errorf("%s: claim %s is mounted by no pod", set, name)
			}
			if !slices.Contains(c.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("%s: claim %s is not ReadWriteMany", set, name)
			}
			if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
				t.Errorf("%s: claim %s requests no storage", set, name)
			}
		}
	}
}

// The image declares what the deployments assume.
func TestDockerfileContract(t *testing.T) {
	img := theImage(t)
	if !slices.Equal(img.Cmd, gatewayArgs) {
		t.Errorf("Dockerfile CMD %q, want %q (the gateway deployments set it anyway)", img.Cmd, gatewayArgs)
	}
	if len(img.Entrypoint) < 2 || img.Entrypoint[1] != "entrypoint" {
		t.Errorf("Dockerfile ENTRYPOINT %q is not hermes-s6 entrypoint", img.Entrypoint)
	}
	if d := imageDrain(t); d <= 0 {
		t.Errorf("image drain %s", d)
	}
	if img.Healthcheck == nil {
		t.Errorf("the Dockerfile declares no HEALTHCHECK (SPEC §11): want CMD %q", healthArgv(t))
	} else if !slices.Equal(img.Healthcheck, healthArgv(t)) {
		t.Errorf("Dockerfile HEALTHCHECK CMD %q, want %q as in the deployments", img.Healthcheck, healthArgv(t))
	}
}

// compose.yaml: a gateway and a dashboard container on one data directory.
func TestCompose(t *testing.T) {
	svcs, err := Resolve(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedKeys(svcs); !slices.Equal(got, []string{"dashboard", "gateway"}) {
		t.Fatalf("services %v, want dashboard and gateway", got)
	}
	for _, name := range sortedKeys(svcs) {
		t.Run(name, func(t *testing.T) { checkComposeService(t, name, svcs[name]) })
	}
	if !slices.Equal(svcs["gateway"].Command, gatewayArgs) {
		t.Errorf("gateway command %q, want %q", svcs["gateway"].Command, gatewayArgs)
	}
	if len(svcs["gateway"].Ports) > 0 {
		t.Errorf("gateway publishes %v: the gateways serve nothing", svcs["gateway"].Ports)
	}
}

// compose.shards.yaml: gateway-0 … gateway-(N-1), each compose.yaml's
// gateway with HERMES_S6_SHARD=I/N, and the dashboard.
func TestComposeShards(t *testing.T) {
	raw, err := LoadCompose(shardsFile)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := Resolve(shardsFile)
	if err != nil {
		t.Fatal(err)
	}
	var gws []string
	for _, name := range sortedKeys(svcs) {
		if strings.HasPrefix(name, "gateway") {
			gws = append(gws, name)
		} else if name != "dashboard" {
			t.Errorf("service %s: want only gateway-I and dashboard", name)
		}
	}
	n := len(gws)
	if n < 2 {
		t.Fatalf("%d gateway services, want at least 2", n)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("gateway-%d", i)
		s, ok := svcs[name]
		if !ok {
			t.Errorf("no service %s among %v: shards are gateway-0 … gateway-%d", name, gws, n-1)
			continue
		}
		if x := raw.Services[name].Extends; x == nil || x.File != composeFile || x.Service != "gateway" {
			t.Errorf("%s does not extend %s's gateway: %+v", name, composeFile, x)
		}
		if got, want := s.Environment["HERMES_S6_SHARD"], fmt.Sprintf("%d/%d", i, n); got != want {
			t.Errorf("%s: HERMES_S6_SHARD=%q, want %q", name, got, want)
		}
		if _, ok := s.Environment["HERMES_S6_SHARDS"]; ok {
			t.Errorf("%s: HERMES_S6_SHARDS: a compose container has no ordinal; use HERMES_S6_SHARD=I/N", name)
		}
		if !slices.Equal(s.Command, gatewayArgs) {
			t.Errorf("%s: command %q, want %q", name, s.Command, gatewayArgs)
		}
		t.Run(name, func(t *testing.T) { checkComposeService(t, name, s) })
	}
	if d, ok := svcs["dashboard"]; !ok {
		t.Errorf("no dashboard service")
	} else {
		if x := raw.Services["dashboard"].Extends; x == nil || x.File != composeFile || x.Service != "dashboard" {
			t.Errorf("dashboard does not extend %s's dashboard", composeFile)
		}
		t.Run("dashboard", func(t *testing.T) { checkComposeService(t, "dashboard", d) })
	}
}

var publishedLoopback = regexp.MustCompile(`^127\.0\.0\.1:[^:]+:(\d+)$`)

func checkComposeService(t *testing.T, name string, s *ComposeService) {
	defaults := map[string]string{}
	if got := Interpolate(s.Image, defaults); got != defaultImage || !slices.Contains(Variables(s.Image), "HERMES_IMAGE") {
		t.Errorf("image %q: want ${HERMES_IMAGE:-%s}", s.Image, defaultImage)
	}
	data := false
	for _, v := range s.Volumes {
		if VolumeTarget(v) == dataPath {
			data = slices.Contains(Variables(VolumeSource(v)), "HERMES_DATA") && Interpolate(VolumeSource(v), defaults) == "./data"
		}
	}
	if !data {
		t.Errorf("volumes %q: want ${HERMES_DATA:-./data}:%s", s.Volumes, dataPath)
	}
	if s.User != "" {
		t.Errorf("user %q: the container must start as root (s6-overlay); the gateways drop to the service account", s.User)
	}
	if s.Init != nil && *s.Init {
		t.Errorf("init: true takes PID 1 from s6-overlay's /init")
	}
	if len(s.Entrypoint) > 0 {
		t.Errorf("entrypoint %q replaces hermes-s6 entrypoint", s.Entrypoint)
	}
	if s.Restart == "" || s.Restart == "no" {
		t.Errorf("restart %q: want the container back after a crash or reboot", s.Restart)
	}
	drain := imageDrain(t)
	if v, ok := s.Environment["HERMES_S6_DRAIN_TIMEOUT"]; ok {
		d, err := time.ParseDuration(Interpolate(v, defaults))
		if err != nil {
			t.Errorf("HERMES_S6_DRAIN_TIMEOUT=%q: %v", v, err)
		} else {
			drain = d
		}
	}
	grace, err := ComposeDuration(s.StopGracePeriod)
	if err != nil {
		t.Errorf("stop_grace_period: %v", err)
	}
	if s.StopGracePeriod == "" {
		grace = 10 * time.Second // compose's default
	}
	if grace < drain+drainMargin {
		t.Errorf("stop_grace_period %s < HERMES_S6_DRAIN_TIMEOUT %s + %s", grace, drain, drainMargin)
	}
	h := s.Healthcheck
	if h == nil || h.Disable {
		t.Fatalf("no healthcheck")
	}
	if want := append([]string{"CMD"}, healthArgv(t)...); !slices.Equal(h.Test, want) {
		t.Errorf("healthcheck test %q, want %q", h.Test, want)
	}
	interval, err1 := ComposeDuration(h.Interval)
	timeout, err2 := ComposeDuration(h.Timeout)
	start, err3 := ComposeDuration(h.StartPeriod)
	if err := firstErr(err1, err2, err3); err != nil {
		t.Errorf("healthcheck: %v", err)
	}
	if timeout < minProbeTimeout || (interval > 0 && timeout > interval) {
		t.Errorf("healthcheck timeout %s: want at least %s and at most the interval %s", timeout, minProbeTimeout, interval)
	}
	if start < minStartBudget {
		t.Errorf("healthcheck start_period %s < %s", start, minStartBudget)
	}
	if name == "dashboard" {
		if !slices.Equal(s.Command, dashboardArgs) {
			t.Errorf("command %q, want %q", s.Command, dashboardArgs)
		}
		if len(s.Ports) == 0 {
			t.Errorf("the dashboard is not published")
		}
		for _, p := range s.Ports {
			m := publishedLoopback.FindStringSubmatch(Interpolate(p, defaults))
			if m == nil {
				t.Errorf("port %q is not published on 127.0.0.1 only: the dashboard holds API keys", p)
			} else if m[1] != strconv.Itoa(dashboardPort) {
				t.Errorf("port %q does not reach the dashboard's %d", p, dashboardPort)
			}
		}
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// docker-compose itself accepts each file, and reads it as Resolve does.
func TestComposeConfig(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not on PATH: `docker-compose config` not checked")
	}
	for _, f := range []string{composeFile, shardsFile} {
		t.Run(f, func(t *testing.T) {
			got := composeConfig(t, bin, "hermes-s6-deploy-static", nil, f)
			want, err := Resolve(f)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := sortedKeys(got), sortedKeys(want); !slices.Equal(g, w) {
				t.Fatalf("docker-compose config services %v, Resolve %v", g, w)
			}
			abs, err := filepath.Abs(".")
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, name := range sortedKeys(want) {
				g, w := got[name], want[name]
				if img := Interpolate(w.Image, env); g.Image != img {
					t.Errorf("%s: image %q, want %q", name, g.Image, img)
				}
				if !slices.Equal(g.Command, w.Command) {
					t.Errorf("%s: command %q, want %q", name, g.Command, w.Command)
				}
				if fmt.Sprint(g.Environment) != fmt.Sprint(w.Environment) {
					t.Errorf("%s: environment %v, want %v", name, g.Environment, w.Environment)
				}
				gd, _ := ComposeDuration(g.StopGracePeriod)
				wd, _ := ComposeDuration(w.StopGracePeriod)
				if gd != wd {
					t.Errorf("%s: stop_grace_period %s, want %s", name, gd, wd)
				}
				if !slices.Equal(g.Healthcheck.Test, w.Healthcheck.Test) {
					t.Errorf("%s: healthcheck %q, want %q", name, g.Healthcheck.Test, w.Healthcheck.Test)
				}
				var gv, wv []string
				for _, v := range g.Volumes {
					gv = append(gv, strings.TrimSuffix(v, ":rw"))
				}
				for _, v := range w.Volumes {
					src := Interpolate(VolumeSource(v), env)
					if strings.HasPrefix(src, ".") {
						src = filepath.Join(abs, src)
					}
					wv = append(wv, src+":"+VolumeTarget(v))
				}
				if !slices.Equal(gv, wv) {
					t.Errorf("%s: volumes %q, want %q", name, gv, wv)
				}
				var gp, wp []string
				for _, p := range g.Ports {
					gp = append(gp, strings.TrimSuffix(p, "/tcp"))
				}
				for _, p := range w.Ports {
					wp = append(wp, Interpolate(p, env))
				}
				if !slices.Equal(gp, wp) {
					t.Errorf("%s: ports %q, want %q", name, gp, wp)
				}
			}
		})
	}
}

// composeConfig runs `docker-compose -p project -f files… config` with env
// (only) and decodes its output.
func composeConfig(t *testing.T, bin, project string, env []string, files ...string) map[string]*ComposeService {
	t.Helper()
	args := []string{"-p", project}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command(bin, append(args, "config")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("docker-compose %s config: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	// docker-compose's own rendering: read, not judged.
	var c Compose
	if err := yaml.Unmarshal(out, &c); err != nil {
		t.Fatalf("docker-compose config output: %v\n%s", err, out)
	}
	return c.Services
}
