package proc

import (
	"os"
	"strconv"
	"testing"
)

func TestFields(t *testing.T) {
	line := []byte("4242 (a ) (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615")
	state, start, ok := fields(line)
	if !ok || state != "S" || start != "987654" {
		t.Fatalf("fields: %q %q %t; want S 987654 true", state, start, ok)
	}
	if _, _, ok := fields([]byte("4242 (x) S 1")); ok {
		t.Fatal("a short stat line must not parse")
	}
}

func TestStatOfThisProcess(t *testing.T) {
	state, start, err := Stat(os.Getpid())
	if err != nil || state != "R" {
		t.Fatalf("Stat(self): %q %q %v; want running", state, start, err)
	}
	if _, err := strconv.ParseUint(start, 10, 64); err != nil {
		t.Fatalf("start time %q: want a number", start)
	}
	if again, _ := StartTime(os.Getpid()); again != start {
		t.Fatalf("StartTime %q, Stat said %q", again, start)
	}
	if _, err := StartTime(-1); err == nil {
		t.Fatal("no /proc/-1/stat: want an error")
	}
}
