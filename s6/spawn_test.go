package s6

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// sh runs a shell snippet through spawn.
func sh(ctx context.Context, script string) (stdout, stderr string, code int, err error) {
	o, e, code, err := spawn(ctx, "/bin/sh", []string{"sh", "-c", script})
	return string(o), string(e), code, err
}

func TestSpawnSeparatesStreamsAndReportsExitCode(t *testing.T) {
	t.Setenv("SPAWN_TEST_VALUE", "from the parent")
	out, errOut, code, err := sh(context.Background(), `echo "out: $SPAWN_TEST_VALUE"; echo err >&2; read -r x || echo "stdin: eof"; exit 7`)
	if err != nil {
		t.Fatal(err)
	}
	if out != "out: from the parent\nstdin: eof\n" || errOut != "err\n" || code != 7 {
		t.Fatalf("got stdout %q stderr %q code %d", out, errOut, code)
	}
}

func TestSpawnKilledBySignalIsMinusOne(t *testing.T) {
	_, _, code, err := sh(context.Background(), `kill -9 $$`)
	if err != nil || code != -1 {
		t.Fatalf("got code %d err %v, want -1 and no error", code, err)
	}
}

// Both pipes are drained at once: a tool that fills stderr before it
// writes stdout must not deadlock.
func TestSpawnLargeStderr(t *testing.T) {
	out, errOut, code, err := sh(context.Background(), `head -c 300000 /dev/zero | tr '\0' x >&2; echo done`)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v", code, err)
	}
	if out != "done\n" || len(errOut) != 300000 || strings.Trim(errOut, "x") != "" {
		t.Fatalf("stdout %q, stderr %d bytes", out, len(errOut))
	}
}

func TestSpawnContextKillsTheTool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	// exec: the shell itself becomes sleep, so no grandchild keeps the
	// pipes open after the kill.
	_, _, code, err := sh(ctx, `echo started; exec sleep 60`)
	if err != nil || code != -1 {
		t.Fatalf("got code %d err %v, want -1 (killed)", code, err)
	}
	if ctx.Err() == nil {
		t.Fatal("spawn returned before the context ended")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the kill took %s", d)
	}
}

func TestSpawnMissingProgram(t *testing.T) {
	_, _, code, err := spawn(context.Background(), "/nonexistent/s6-svc", []string{"s6-svc"})
	if err == nil || code != -1 || !strings.Contains(err.Error(), "/nonexistent/s6-svc") {
		t.Fatalf("got code %d err %v", code, err)
	}
}

// spawn leaves no descriptor behind, whatever the outcome.
func TestSpawnLeaksNoDescriptors(t *testing.T) {
	count := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(es)
	}
	before := count()
	for range 20 {
		sh(context.Background(), `echo a; echo b >&2; exit 3`)
		spawn(context.Background(), "/nonexistent", []string{"x"})
	}
	if after := count(); after != before {
		t.Fatalf("descriptors: %d before, %d after", before, after)
	}
}
