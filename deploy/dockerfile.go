package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Image is what the deployments rely on from the image's Dockerfile: the
// last ENTRYPOINT, CMD and HEALTHCHECK (exec form), and the ENV defaults.
type Image struct {
	Entrypoint  []string
	Cmd         []string
	Healthcheck []string          // the HEALTHCHECK's CMD; nil when the Dockerfile has none
	HealthFlags map[string]string // its options: interval, timeout, start-period, retries
	Env         map[string]string
}

// LoadDockerfile reads the instructions the deployments depend on. Later
// stages extend earlier ones (runtime, then e2e or hermes), so the last
// occurrence of each wins.
func LoadDockerfile(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img := &Image{Env: map[string]string{}, HealthFlags: map[string]string{}}
	for _, ins := range instructions(string(data)) {
		word, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "ENTRYPOINT":
			if img.Entrypoint, err = execForm(rest); err != nil {
				return nil, fmt.Errorf("%s: ENTRYPOINT: %w", path, err)
			}
		case "CMD":
			if img.Cmd, err = execForm(rest); err != nil {
				return nil, fmt.Errorf("%s: CMD: %w", path, err)
			}
		case "HEALTHCHECK":
			if err := img.healthcheck(rest); err != nil {
				return nil, fmt.Errorf("%s: HEALTHCHECK: %w", path, err)
			}
		case "ENV":
			for _, kv := range envPair.FindAllStringSubmatch(rest, -1) {
				img.Env[kv[1]] = strings.Trim(kv[2], `"`)
			}
		}
	}
	return img, nil
}

var envPair = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)`)

func (img *Image) healthcheck(rest string) error {
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		img.HealthFlags[k] = v
		rest = strings.TrimSpace(after)
	}
	if strings.ToUpper(rest) == "NONE" {
		img.Healthcheck = nil
		return nil
	}
	word, argv, _ := strings.Cut(rest, " ")
	if strings.ToUpper(word) != "CMD" {
		return fmt.Errorf("want CMD, got %q", rest)
	}
	var err error
	img.Healthcheck, err = execForm(strings.TrimSpace(argv))
	return err
}

func execForm(s string) ([]string, error) {
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return nil, fmt.Errorf("not in exec (JSON) form: %s", s)
	}
	return argv, nil
}

// instructions joins continuation lines and drops comments and blank lines.
func instructions(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(t)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
