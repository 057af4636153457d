package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// env is the environment both sides run with against a tree: Debian's s6
// tools, no service account, plain sh, the stand-in gateway (as
// tests/s6tree's Env does).
func (b *bench) env(scandir, home string, extra ...string) []string {
	return append(append(cleanEnv(),
		"PATH="+b.cfg.s6bin+":/usr/sbin:/usr/bin:/sbin:/bin",
		"HERMES_S6_SCANDIR="+scandir,
		"HERMES_HOME="+home,
		"HERMES_S6_BIN="+b.cfg.s6bin,
		"HERMES_S6_ACCOUNT=",
		"HERMES_S6_GATEWAY_BIN="+b.cfg.standin,
		"HERMES_S6_SHEBANG=#!/bin/sh",
	), extra...)
}

// cleanEnv is the harness's environment without PATH and the HERMES_
// settings, which every process it starts gets from it instead: a
// HERMES_HOME left in the caller's shell would otherwise send the gateways
// of its trees to the wrong volume.
func cleanEnv() []string {
	var e []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HERMES_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		e = append(e, kv)
	}
	return e
}

// proc is one command to time.
type proc struct {
	argv []string
	env  []string
}

// runError is a command that failed, with what it said.
type runError struct {
	argv   []string
	err    error
	stderr string
}

func (e *runError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.argv, " "), e.err)
	if s := strings.TrimSpace(e.stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// start forks and execs p; wait returns its stdout.
func (p proc) start(ctx context.Context) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, error) {
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, &runError{argv: p.argv, err: err}
	}
	return cmd, &stdout, &stderr, nil
}

// timed runs p to completion and returns its wall time, fork+exec to exit
// (both sides are measured by this one function).
func (p proc) timed(ctx context.Context) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	cmd, stdout, stderr, err := p.start(ctx)
	if err != nil {
		return 0, "", err
	}
	err = cmd.Wait()
	d := time.Since(t0)
	if err != nil {
		return d, stdout.String(), &runError{argv: p.argv, err: err, stderr: stderr.String()}
	}
	return d, stdout.String(), nil
}

// must runs p untimed (set-up and clean-up between measured runs).
func (p proc) must(ctx context.Context) error {
	_, _, err := p.timed(ctx)
	return err
}

// sample is one side's measurement of one iteration; extra keeps named
// sub-measurements (e.g. start and stop of a cycle).
type sample struct {
	d     time.Duration
	extra map[string]time.Duration
}

// interleave measures a and b n times each, after warm discarded runs of
// each, alternating which goes first (A B, B A, …) so drift hits both.
func interleave(ctx context.Context, n, warm int, a, b func() (sample, error)) (as, bs []sample, err error) {
	for i := 0; i < warm; i++ {
		if _, err := a(); err != nil {
			return nil, nil, fmt.Errorf("warm-up: %w", err)
		}
		if _, err := b(); err != nil {
			return nil, nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return as, bs, err
		}
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		s1, err := first()
		if err != nil {
			return as, bs, err
		}
		s2, err := second()
		if err != nil {
			return as, bs, err
		}
		if i%2 == 1 {
			s1, s2 = s2, s1
		}
		as, bs = append(as, s1), append(bs, s2)
	}
	return as, bs, nil
}

func durations(ss []sample, key string) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		if key == "" {
			out[i] = s.d
		} else {
			out[i] = s.extra[key]
		}
	}
	return out
}

func hermesVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "hermes-s6 (version unknown)"
	}
	return strings.TrimSpace(string(out))
}

func s6Version() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "s6").Output()
	if err != nil || len(out) == 0 {
		return "(version unknown)"
	}
	return string(out)
}

// hasCommand reports whether `hermes-s6 help` lists cmd.
func hasCommand(bin, cmd string) bool {
	out, _ := exec.Command(bin, "help").Output()
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.ReplaceAll(l, ",", " "))
		if len(f) > 0 && f[0] == cmd {
			return true
		}
	}
	return false
}

// makeProfile creates HERMES_HOME/profiles/p with a SOUL.md and, when
// desired is not "", a gateway_state.json saying so.
func makeProfile(home, p, desired string) error {
	dir := filepath.Join(home, "profiles", p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "SOUL.md"), []byte("# "+p+"\n"), 0o644); err != nil {
		return err
	}
	if desired == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "gateway_state.json"), []byte(`{"desired_state":"`+desired+`"}`+"\n"), 0o644)
}

// starts counts the stand-in gateway's recorded starts under home.
func starts(home string) int {
	b, _ := os.ReadFile(filepath.Join(home, "standin", "starts.log"))
	return bytes.Count(b, []byte("\n"))
}
