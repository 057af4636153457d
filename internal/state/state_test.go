package state

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nousresearch/hermes-s6/internal/account"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway_state.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	for _, c := range []struct {
		content string
		want    Desired
	}{
		{`{"desired_state":"running"}`, Running},
		{`{"desired_state":"stopped"}`, Stopped},
		{"\xef\xbb\xbf" + `{"desired_state":"running"}`, Running},
		{`{"desired_state":"stopped","gateway_state":"running"}`, Stopped},
		{`{"desired_state":"running","gateway_state":"stopped"}`, Running},
		{`{"gateway_state":"running"}`, Running},
		{`{"gateway_state":"draining"}`, Running},
		{`{"gateway_state":"degraded"}`, Running},
		{`{"gateway_state":"starting"}`, Stopped},
		{`{"gateway_state":"startup_failed"}`, Stopped},
		{`{"gateway_state":"stopped"}`, Stopped},
		{`{"pid":12}`, None},
		{`{`, Corrupt},
		{`[]`, Corrupt},
		{`null`, Corrupt},
		{``, Corrupt},
		{`{"desired_state":"banana"}`, Corrupt},
		{`{"desired_state":1}`, Corrupt},
	} {
		f, err := readPath(write(t, c.content))
		if err != nil {
			t.Fatalf("%q: %v", c.content, err)
		}
		if f.Desired != c.want {
			t.Errorf("%q: got %s, want %s", c.content, f.Desired, c.want)
		}
		if (f.Desired == Corrupt) != (f.Problem != nil) {
			t.Errorf("%q: Problem %v with state %s", c.content, f.Problem, f.Desired)
		}
	}
	f, err := readPath(filepath.Join(t.TempDir(), "missing.json"))
	if err != nil || f.Desired != None {
		t.Fatalf("missing file: %v %v", f, err)
	}
}

func TestWritePreservesKeys(t *testing.T) {
	p := write(t, "\xef\xbb\xbf"+`{"gateway_state":"running","pid":42,"nested":{"a":[1,2]}}`)
	now := time.Unix(1700000000, 0)
	note, err := writePath(p, Stopped, map[string]any{"migrated_from": "legacy-container-cmd"}, nil, now)
	if err != nil || note != "" {
		t.Fatalf("Write: %q %v", note, err)
	}
	var got map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"gateway_state": "running", "pid": float64(42), "nested": map[string]any{"a": []any{float64(1), float64(2)}},
		"desired_state": "stopped", "updated_at": float64(1700000000), "migrated_from": "legacy-container-cmd",
	}
	if len(got) != len(want) {
		t.Fatalf("keys: got %v want %v", got, want)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("lost key %s: %s", k, b)
		}
	}
	if f, _ := readPath(p); f.Desired != Stopped {
		t.Errorf("read back %s", f.Desired)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestWriteMovesCorruptAside(t *testing.T) {
	p := write(t, `{not json`)
	now := time.Unix(1700000001, 0)
	note, err := writePath(p, Running, nil, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	aside := p + ".corrupt-1700000001"
	if !strings.Contains(note, aside) {
		t.Errorf("note should name %s: %q", aside, note)
	}
	if b, err := os.ReadFile(aside); err != nil || string(b) != `{not json` {
		t.Errorf("corrupt file not kept verbatim: %q %v", b, err)
	}
	if f, _ := readPath(p); f.Desired != Running {
		t.Errorf("fresh file: %s", f.Desired)
	}
}

func TestWriteRejects(t *testing.T) {
	if _, err := writePath(filepath.Join(t.TempDir(), "s.json"), None, nil, nil, time.Now()); err == nil {
		t.Fatal("writePath(None) accepted")
	}
	if _, err := writePath(filepath.Join(t.TempDir(), "missing-dir", "s.json"), Running, nil, nil, time.Now()); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}

// readPath and writePath take one path: its directory as the volume's root.
func readPath(p string) (*File, error) { return Read(filepath.Dir(p), filepath.Base(p)) }

func writePath(p string, d Desired, extra map[string]any, owner *account.Account, now time.Time) (string, error) {
	return Write(filepath.Dir(p), filepath.Base(p), d, extra, owner, now)
}
