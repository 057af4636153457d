package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// Object is one document of a manifest file, decoded into the k8s.io/api
// type of its kind.
type Object struct {
	File  string // the file, as given to LoadManifests
	Index int    // the document's position in the file, from 0
	Kind  string // apiVersion and kind, e.g. "apps/v1 StatefulSet"
	Name  string // metadata.name
	Obj   any    // *appsv1.StatefulSet, *corev1.Service, …
}

func (o Object) String() string {
	return fmt.Sprintf("%s %s (%s, document %d)", o.Kind, o.Name, filepath.Base(o.File), o.Index+1)
}

// kinds are the API types a manifest here may hold. Another kind is an
// error: a new kind gets a type here and rules in the tests.
var kinds = map[string]func() any{
	"v1 Service":                    func() any { return new(corev1.Service) },
	"v1 PersistentVolumeClaim":      func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1 StatefulSet":           func() any { return new(appsv1.StatefulSet) },
	"apps/v1 Deployment":            func() any { return new(appsv1.Deployment) },
	"policy/v1 PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// LoadManifests reads every document of every file into its API type,
// strictly (see DecodeStrict).
func LoadManifests(paths ...string) ([]Object, error) {
	var objs []Object
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for i, doc := range SplitDocuments(data) {
			o, err := decodeObject(doc)
			if err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", p, i+1, err)
			}
			o.File, o.Index = p, i
			objs = append(objs, o)
		}
	}
	return objs, nil
}

func decodeObject(doc []byte) (Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return Object{}, err
	}
	kind := head.APIVersion + " " + head.Kind
	newObj, ok := kinds[kind]
	if !ok {
		return Object{}, fmt.Errorf("kind %q is not one the tests know (%s)", kind, strings.Join(knownKinds(), ", "))
	}
	obj := newObj()
	if err := DecodeStrict(doc, obj); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", kind, head.Metadata.Name, err)
	}
	return Object{Kind: kind, Name: head.Metadata.Name, Obj: obj}, nil
}

func knownKinds() []string {
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// docSeparator is a YAML document marker line: "---", optionally followed
// by spaces or a comment.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// SplitDocuments splits a multi-document YAML file on its "---" lines and
// drops the documents that hold nothing but comments and blank lines.
func SplitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		if hasContent(d) {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func hasContent(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// DecodeStrict decodes one YAML document into out, refusing what a lenient
// decoder lets through: duplicate keys and unknown fields
// (sigs.k8s.io/yaml's UnmarshalStrict), and — because encoding/json
// matches field names case-insensitively — any key that is not spelled as
// the type spells it. The last check re-encodes the result and requires
// every key and value of the document to be there unchanged.
func DecodeStrict(doc []byte, out any) error {
	if err := yaml.UnmarshalStrict(doc, out); err != nil {
		return err
	}
	orig, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	re, err := json.Marshal(out)
	if err != nil {
		return err
	}
	var a, b any
	if err := json.Unmarshal(orig, &a); err != nil {
		return err
	}
	if err := json.Unmarshal(re, &b); err != nil {
		return err
	}
	return subset(a, b, "")
}

// subset reports the first key or value of want that got lost or changed in
// got.
func subset(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: decoded as %T, not an object", orRoot(path), got)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				if isEmpty(w[k]) {
					continue // an empty value the type omits
				}
				return fmt.Errorf("%s: not a field of the type (or not spelled as the API spells it)", path+"."+k)
			}
			if err := subset(w[k], gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: the list did not survive decoding", orRoot(path))
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: %v decoded as %v", orRoot(path), want, got)
		}
		return nil
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == "" // omitempty drops these three
	case bool:
		return !x
	case float64:
		return x == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func orRoot(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// Kustomization is the part of a kustomization.yaml the deployments use.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// LoadKustomization reads a kustomization.yaml strictly.
func LoadKustomization(path string) (*Kustomization, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k Kustomization
	if err := DecodeStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("%s: %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", path, k.APIVersion, k.Kind)
	}
	return &k, nil
}

// YAMLFiles lists the *.yaml files directly in dir, sorted.
func YAMLFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
