package s6

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus("true true false false 6091 -1 NA 12\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Up: true, WantUp: true, PID: 6091, ExitCode: -1, Seconds: 12}
	if st != want {
		t.Errorf("got %+v want %+v", st, want)
	}
	st, err = ParseStatus("false false true false -1 -1 SIGTERM 3")
	if err != nil || st.Signal != "SIGTERM" || !st.NormallyUp || st.PID != -1 {
		t.Errorf("got %+v %v", st, err)
	}
	for _, bad := range []string{"", "up (pid 12) 3 seconds", "true true false false 1 2 NA", "yes true false false 1 2 NA 3", "true true false false x 2 NA 3"} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) accepted", bad)
		}
	}
}

func TestListening(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "control")
	if ok, err := Listening(fifo); ok || err != nil {
		t.Fatalf("missing fifo: %v %v", ok, err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := Listening(fifo); ok || err != nil {
		t.Fatalf("fifo without reader: %v %v", ok, err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if ok, err := Listening(fifo); !ok || err != nil {
		t.Fatalf("fifo with reader: %v %v", ok, err)
	}
	if err := TreeRunning(dir); !errors.Is(err, ErrNoTree) {
		t.Fatalf("TreeRunning without .s6-svscan: %v", err)
	}
}

func TestToolsPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := (Tools{Dir: dir}).Path("s6-svc"); !errors.Is(err, ErrToolMissing) {
		t.Fatalf("missing tool: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "s6-svc"), []byte("#!/bin/sh\n"), 0o755)
	if p, err := (Tools{Dir: dir}).Path("s6-svc"); err != nil || p != filepath.Join(dir, "s6-svc") {
		t.Fatalf("present tool: %s %v", p, err)
	}
	t.Setenv("PATH", dir)
	if _, err := (Tools{}).Path("s6-svstat"); !errors.Is(err, ErrToolMissing) {
		t.Fatalf("PATH lookup of a missing tool: %v", err)
	}
}

func TestExitErrorQuotesArgv(t *testing.T) {
	e := &ExitError{Argv: []string{"/usr/bin/s6-svc", "-u", "/run/service/a b"}, Code: 111, Stderr: "s6-svc: fatal: boom\n"}
	want := "/usr/bin/s6-svc -u '/run/service/a b': exit 111: s6-svc: fatal: boom"
	if e.Error() != want {
		t.Errorf("got %q want %q", e.Error(), want)
	}
	if strings.Contains(e.Error(), "\n") {
		t.Error("newline in error")
	}
}

func TestParseDeaths(t *testing.T) {
	ds, err := ParseDeaths("@400000006b0945ef04dcb509 exitcode 0\n@400000006b0945f1082b6d68 signal SIGKILL\n")
	if err != nil || len(ds) != 2 {
		t.Fatalf("got %+v %v", ds, err)
	}
	if ds[0].Code != 0 || ds[0].Signal != "" || ds[1].Code != -1 || ds[1].Signal != "SIGKILL" {
		t.Fatalf("codes and signals: %+v", ds)
	}
	if gap := ds[1].TAI.Sub(ds[0].TAI); gap < 2*time.Second || gap > 3*time.Second {
		t.Fatalf("want the two deaths about 2.05 s apart, got %s", gap)
	}
	if ds, err := ParseDeaths(""); err != nil || len(ds) != 0 {
		t.Fatalf("empty tally: %+v %v", ds, err)
	}
	for _, bad := range []string{"@400000006b0945ef04dcb509 exitcode x", "400000006b0945ef04dcb509a exitcode 0", "@400000006b0945ef04dcb509 died 0", "@zz0000006b0945ef04dcb509 exitcode 0", "@000000006b0945ef04dcb509 exitcode 0"} {
		if _, err := ParseDeaths(bad); err == nil {
			t.Errorf("ParseDeaths(%q) accepted", bad)
		}
	}
}
