package s6

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	ctx := context.Background()
	n := 0
	if err := Until(ctx, time.Now().Add(10*time.Second), "n to reach 3", func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("Until: %v after %d calls; want nil after 3", err, n)
	}

	err := Until(ctx, time.Now().Add(50*time.Millisecond), "the impossible", func() (bool, error) { return false, nil })
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "the impossible") {
		t.Fatalf("past the deadline: %v; want ErrTimeout naming what was awaited", err)
	}

	boom := errors.New("boom")
	if err := Until(ctx, time.Now().Add(10*time.Second), "x", func() (bool, error) { return false, boom }); err != boom {
		t.Fatalf("a failing condition: %v; want its error", err)
	}

	stop := errors.New("interrupted by SIGTERM")
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(stop)
	if err := Until(cctx, time.Now().Add(10*time.Second), "x", func() (bool, error) { return false, nil }); !errors.Is(err, stop) {
		t.Fatalf("a cancelled wait: %v; want the context's cause", err)
	}
}

func TestRemaining(t *testing.T) {
	if d := Remaining(time.Now().Add(-time.Hour)); d != time.Millisecond {
		t.Fatalf("past deadline: %s; want 1ms (0 would mean forever to s6)", d)
	}
	if d := Remaining(time.Now().Add(time.Hour)); d < 59*time.Minute {
		t.Fatalf("an hour ahead: %s", d)
	}
}
