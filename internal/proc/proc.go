// Package proc reads what hermes-s6 needs of /proc/PID/stat: a process's
// state and its start time, which together tell a live process from a
// zombie or from another process that got its pid.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat reads pid's state (field 3 of /proc/PID/stat: R, S, Z, …) and
// start time (field 22: clock ticks after the host booted).
func Stat(pid int) (state, start string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", err
	}
	state, start, ok := fields(b)
	if !ok {
		return "", "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return state, start, nil
}

// StartTime is pid's start time, as Stat reads it.
func StartTime(pid int) (string, error) {
	_, start, err := Stat(pid)
	return start, err
}

// fields picks the state (field 3) and start time (field 22) out of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func fields(b []byte) (state, start string, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true
}
