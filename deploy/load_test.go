package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What the deployments and the image agree on (README: The container image;
// docs/deploy.md).
const (
	// defaultImage is the image the deployments name unless told
	// otherwise: what `make image` tags.
	defaultImage = "hermes-agent:latest"
	// dataPath is HERMES_HOME, the data volume.
	dataPath = "/opt/data"
	// drainMargin is how far a runtime's grace must stay above
	// HERMES_S6_DRAIN_TIMEOUT: the kill at the deadline, the logger wait
	// (up to 1 s), s6-overlay's stage 3 and its kill grace (docs/stop.md
	// asks for about 2 s; this leaves room on a loaded node).
	drainMargin = 5 * time.Second
	// minProbeTimeout: an exec probe's timeout (Kubernetes' default is
	// 1 s) must survive a loaded node; the image's HEALTHCHECK allows 10 s.
	minProbeTimeout = 5 * time.Second
	// minStartBudget is how long a container may take to become healthy
	// before it is counted as failing: the image's HEALTHCHECK start
	// period (60 s) unless the Dockerfile says otherwise.
	minStartBudget = 60 * time.Second
	// serviceUID is the service account's uid and gid (hermes).
	serviceUID = 10000
)

var (
	gatewayArgs   = []string{"gateway", "run"}
	dashboardArgs = []string{"dashboard", "--host", "0.0.0.0", "--port", "9119"}
	// dashboardPort is the port of dashboardArgs.
	dashboardPort = 9119
)

const (
	kubeDir       = "kubernetes"
	variantsDir   = "kubernetes/variants"
	composeFile   = "compose.yaml"
	shardsFile    = "compose.shards.yaml"
	dockerfile    = "../Dockerfile"
	environmentMD = "../docs/environment.md"
)

// manifests loads every manifest under dir (not kustomization.yaml).
func manifests(t *testing.T, dir string) []Object {
	t.Helper()
	files, err := YAMLFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			paths = append(paths, f)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	objs, err := LoadManifests(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// manifestSets are the deployments that are applied as a whole: the
// kustomization's resources, and each variant file on its own.
func manifestSets(t *testing.T) map[string][]Object {
	t.Helper()
	sets := map[string][]Object{"kubernetes": manifests(t, kubeDir)}
	files, err := YAMLFiles(variantsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		objs, err := LoadManifests(f)
		if err != nil {
			t.Fatal(err)
		}
		sets[strings.TrimSuffix(filepath.ToSlash(f), ".yaml")] = objs
	}
	return sets
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// workload is a pod template and what owns it.
type workload struct {
	obj      Object
	meta     metav1.ObjectMeta
	replicas int32
	selector *metav1.LabelSelector
	pod      corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim // a StatefulSet's volumeClaimTemplates
}

func (w workload) String() string { return w.obj.String() }

func workloads(objs []Object) []workload {
	var ws []workload
	for _, o := range objs {
		switch x := o.Obj.(type) {
		case *appsv1.StatefulSet:
			ws = append(ws, workload{o, x.ObjectMeta, replicas(x.Spec.Replicas), x.Spec.Selector, x.Spec.Template, x.Spec.VolumeClaimTemplates})
		case *appsv1.Deployment:
			ws = append(ws, workload{o, x.ObjectMeta, replicas(x.Spec.Replicas), x.Spec.Selector, x.Spec.Template, nil})
		}
	}
	return ws
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func statefulSets(objs []Object) []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, o := range objs {
		if s, ok := o.Obj.(*appsv1.StatefulSet); ok {
			out = append(out, s)
		}
	}
	return out
}

func services(objs []Object) []*corev1.Service {
	var out []*corev1.Service
	for _, o := range objs {
		if s, ok := o.Obj.(*corev1.Service); ok {
			out = append(out, s)
		}
	}
	return out
}

func pdbs(objs []Object) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		if p, ok := o.Obj.(*policyv1.PodDisruptionBudget); ok {
			out = append(out, p)
		}
	}
	return out
}

func claims(objs []Object) map[string]*corev1.PersistentVolumeClaim {
	out := map[string]*corev1.PersistentVolumeClaim{}
	for _, o := range objs {
		if c, ok := o.Obj.(*corev1.PersistentVolumeClaim); ok {
			out[c.Name] = c
		}
	}
	return out
}

// selects reports whether sel selects a pod labelled lbls.
func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	if sel == nil {
		return false, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	if s.Empty() {
		return false, fmt.Errorf("an empty selector selects every pod")
	}
	return s.Matches(labels.Set(lbls)), nil
}

// env is a container's environment as literal values; valueFrom is not
// something the deployments (or their Docker emulation) use.
func env(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("container %s: env %s uses valueFrom: the deployments set literal values", c.Name, e.Name)
			continue
		}
		if _, dup := m[e.Name]; dup {
			t.Errorf("container %s: env %s is set twice", c.Name, e.Name)
		}
		m[e.Name] = e.Value
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("container %s: envFrom hides what the rules check; set env values", c.Name)
	}
	return m
}

// volumeAt is the volume mounted at path in c, and its mount.
func volumeAt(pod corev1.PodSpec, c corev1.Container, path string) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if m.MountPath != path {
			continue
		}
		for j := range pod.Volumes {
			if pod.Volumes[j].Name == m.Name {
				return &pod.Volumes[j], m
			}
		}
		return nil, m
	}
	return nil, nil
}

// theImage is the Dockerfile the deployments run.
func theImage(t *testing.T) *Image {
	t.Helper()
	img, err := LoadDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Entrypoint) == 0 || filepath.Base(img.Entrypoint[0]) != "hermes-s6" {
		t.Fatalf("%s: ENTRYPOINT %q is not hermes-s6's", dockerfile, img.Entrypoint)
	}
	return img
}

// healthArgv is the probe every deployment runs: the entrypoint's
// hermes-s6, `health`.
func healthArgv(t *testing.T) []string {
	return []string{theImage(t).Entrypoint[0], "health"}
}

// imageDrain is the image's default HERMES_S6_DRAIN_TIMEOUT.
func imageDrain(t *testing.T) time.Duration {
	t.Helper()
	v, ok := theImage(t).Env["HERMES_S6_DRAIN_TIMEOUT"]
	if !ok {
		t.Fatalf("%s sets no HERMES_S6_DRAIN_TIMEOUT", dockerfile)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: HERMES_S6_DRAIN_TIMEOUT=%s: %v", dockerfile, v, err)
	}
	return d
}

// drainOf is the drain a container gets: its env, else the image's.
func drainOf(t *testing.T, e map[string]string) time.Duration {
	t.Helper()
	v, ok := e["HERMES_S6_DRAIN_TIMEOUT"]
	if !ok {
		return imageDrain(t)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Errorf("HERMES_S6_DRAIN_TIMEOUT=%q is not a positive Go duration", v)
		return imageDrain(t)
	}
	return d
}

// imageVariables are the environment variables the image reads, from the
// generated table in docs/environment.md.
func imageVariables(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(environmentMD)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)` \\|").FindAllStringSubmatch(string(data), -1) {
		vars[m[1]] = true
	}
	if !vars["HERMES_HOME"] || len(vars) < 10 {
		t.Fatalf("%s: found only %d variables in its table", environmentMD, len(vars))
	}
	return vars
}

// serviceLinkVars are the variables the kubelet puts in every pod of the
// namespace for svc unless enableServiceLinks is false (Docker-links
// style; headless Services get none).
func serviceLinkVars(svc *corev1.Service) []string {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	p := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
	vars := []string{p + "_SERVICE_HOST", p + "_SERVICE_PORT"}
	for i, port := range svc.Spec.Ports {
		proto := string(port.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		if port.Name != "" {
			vars = append(vars, p+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(port.Name, "-", "_")))
		}
		if i == 0 {
			vars = append(vars, p+"_PORT")
		}
		pp := p + "_PORT_" + strconv.Itoa(int(port.Port)) + "_" + proto
		vars = append(vars, pp, pp+"_PROTO", pp+"_PORT", pp+"_ADDR")
	}
	return vars
}
