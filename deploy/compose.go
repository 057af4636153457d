package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Compose is the part of a compose file the deployments may use. Decoding
// is strict: a key outside these (a typo, or a feature the tests do not
// check) is an error, except top-level extension fields (x-…), whose
// anchors YAML has already expanded where they are used.
type Compose struct {
	Version  string                     `json:"version,omitempty"`
	Services map[string]*ComposeService `json:"services"`
}

// ComposeService is one service. Environment and labels must be written
// as mappings, not lists.
type ComposeService struct {
	Image           string            `json:"image,omitempty"`
	Command         []string          `json:"command,omitempty"`
	Entrypoint      []string          `json:"entrypoint,omitempty"`
	Environment     map[string]string `json:"environment,omitempty"`
	Volumes         []string          `json:"volumes,omitempty"`
	Ports           Ports             `json:"ports,omitempty"`
	Restart         string            `json:"restart,omitempty"`
	StopGracePeriod string            `json:"stop_grace_period,omitempty"`
	Healthcheck     *Healthcheck      `json:"healthcheck,omitempty"`
	Extends         *Extends          `json:"extends,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Hostname        string            `json:"hostname,omitempty"`
	User            string            `json:"user,omitempty"`
	Init            *bool             `json:"init,omitempty"`
}

// Ports are published ports in the short syntax,
// [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]. `docker-compose config`
// writes some in the long syntax; they are read back as short ones.
type Ports []string

// UnmarshalJSON reads short-syntax strings and long-syntax objects.
func (p *Ports) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = nil
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			*p = append(*p, s)
			continue
		}
		var long struct {
			HostIP    string `json:"host_ip"`
			Published any    `json:"published"`
			Target    any    `json:"target"`
			Protocol  string `json:"protocol"`
		}
		if err := json.Unmarshal(r, &long); err != nil {
			return fmt.Errorf("port %s: %w", r, err)
		}
		s = fmt.Sprintf("%v:%v", long.Published, long.Target)
		if long.HostIP != "" {
			s = long.HostIP + ":" + s
		}
		if long.Protocol != "" {
			s += "/" + long.Protocol
		}
		*p = append(*p, s)
	}
	return nil
}

// Healthcheck is a service's healthcheck; durations as compose writes them.
type Healthcheck struct {
	Test        []string `json:"test,omitempty"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	StartPeriod string   `json:"start_period,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	Disable     bool     `json:"disable,omitempty"`
}

// Extends names the service a service is based on.
type Extends struct {
	File    string `json:"file,omitempty"`
	Service string `json:"service"`
}

// LoadCompose reads a compose file strictly (see Compose).
func LoadCompose(path string) (*Compose, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var c Compose
	if err := DecodeStrict(rest, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Services) == 0 {
		return nil, fmt.Errorf("%s: no services", path)
	}
	return &c, nil
}

// Resolve returns the services of the compose file at path with every
// `extends` applied, the way compose does for what these files use: the
// extending service's scalars and lists win (volumes are merged by
// container path, ports appended), environment and labels are merged, a
// healthcheck replaces the base's whole.
func Resolve(path string) (map[string]*ComposeService, error) {
	return resolveFile(path, map[string]bool{})
}

func resolveFile(path string, seen map[string]bool) (map[string]*ComposeService, error) {
	c, err := LoadCompose(path)
	if err != nil {
		return nil, err
	}
	out := map[string]*ComposeService{}
	for name := range c.Services {
		s, err := resolveService(path, c, name, seen)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

func resolveService(path string, c *Compose, name string, seen map[string]bool) (*ComposeService, error) {
	key := path + "#" + name
	if seen[key] {
		return nil, fmt.Errorf("%s: service %s extends itself", path, name)
	}
	s, ok := c.Services[name]
	if !ok {
		return nil, fmt.Errorf("%s: no service %s", path, name)
	}
	if s.Extends == nil {
		cp := *s
		return &cp, nil
	}
	seen[key] = true
	defer delete(seen, key)
	var base *ComposeService
	var err error
	if s.Extends.File == "" {
		base, err = resolveService(path, c, s.Extends.Service, seen)
	} else {
		bpath := filepath.Join(filepath.Dir(path), s.Extends.File)
		var bc *Compose
		if bc, err = LoadCompose(bpath); err == nil {
			base, err = resolveService(bpath, bc, s.Extends.Service, seen)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: service %s extends %s: %w", path, name, s.Extends.Service, err)
	}
	return merge(base, s), nil
}

func merge(base, over *ComposeService) *ComposeService {
	m := *base
	m.Extends = nil
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	str(&m.Image, over.Image)
	str(&m.Restart, over.Restart)
	str(&m.StopGracePeriod, over.StopGracePeriod)
	str(&m.Hostname, over.Hostname)
	str(&m.User, over.User)
	if over.Command != nil {
		m.Command = over.Command
	}
	if over.Entrypoint != nil {
		m.Entrypoint = over.Entrypoint
	}
	if over.Init != nil {
		m.Init = over.Init
	}
	if over.Healthcheck != nil {
		m.Healthcheck = over.Healthcheck
	}
	m.Environment = mergeMap(base.Environment, over.Environment)
	m.Labels = mergeMap(base.Labels, over.Labels)
	m.Ports = append(append([]string(nil), base.Ports...), over.Ports...)
	m.Volumes = mergeVolumes(base.Volumes, over.Volumes)
	return &m
}

func mergeMap(a, b map[string]string) map[string]string {
	if a == nil && b == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func mergeVolumes(base, over []string) []string {
	byTarget := map[string]int{}
	out := append([]string(nil), base...)
	for i, v := range out {
		byTarget[VolumeTarget(v)] = i
	}
	for _, v := range over {
		if i, ok := byTarget[VolumeTarget(v)]; ok {
			out[i] = v
			continue
		}
		byTarget[VolumeTarget(v)] = len(out)
		out = append(out, v)
	}
	return out
}

// VolumeTarget is the container path of a short-syntax volume
// (SOURCE:TARGET[:MODE]); interpolations in SOURCE may hold colons.
func VolumeTarget(v string) string {
	parts := splitOutsideBraces(v)
	switch len(parts) {
	case 1:
		return parts[0]
	default:
		return parts[1]
	}
}

// VolumeSource is the host side of a short-syntax volume ("" for an
// anonymous volume).
func VolumeSource(v string) string {
	parts := splitOutsideBraces(v)
	if len(parts) == 1 {
		return ""
	}
	return parts[0]
}

// splitOutsideBraces splits s on the colons that are not inside ${…}.
func splitOutsideBraces(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// interpolation is ${VAR}, ${VAR:-default}, ${VAR-default} or $VAR.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Interpolate expands compose's ${VAR:-default} forms in s from env, as
// docker-compose does ("$$" is a literal "$").
func Interpolate(s string, env map[string]string) string {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	s = interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if g[4] != "" {
			return env[g[4]]
		}
		v, set := env[g[1]]
		switch g[2] {
		case ":-":
			if v == "" {
				return g[3]
			}
		case "-":
			if !set {
				return g[3]
			}
		}
		return v
	})
	return strings.ReplaceAll(s, dollar, "$")
}

// Variables lists the variables s interpolates, sorted.
func Variables(s string) []string {
	set := map[string]bool{}
	for _, g := range interpolation.FindAllStringSubmatch(strings.ReplaceAll(s, "$$", ""), -1) {
		set[g[1]+g[4]] = true
	}
	var out []string
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// ComposeDuration parses a compose duration ("30s", "1m30s", "1m"); empty
// is zero.
func ComposeDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
