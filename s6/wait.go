package s6

import (
	"context"
	"fmt"
	"time"
)

// PollEvery is how often Until looks again.
const PollEvery = 20 * time.Millisecond

// Until is the one way hermes-s6 waits for what no s6 tool can wait on (a
// supervisor to appear or exit, a pipe to empty, a pid to end): it calls
// cond every PollEvery until cond reports true or fails, ctx ends (the
// first SIGINT/SIGTERM of an interruptible command), or deadline passes.
// A deadline passed wraps ErrTimeout and names what was awaited; a
// cancelled ctx returns its cause.
func Until(ctx context.Context, deadline time.Time, what string, cond func() (bool, error)) error {
	t := time.NewTicker(PollEvery)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w waiting for %s", ErrTimeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Remaining is the time left until deadline, as an s6 tool's -t timeout:
// at least a millisecond, because 0 means "wait forever" to s6.
func Remaining(deadline time.Time) time.Duration {
	return max(time.Until(deadline), time.Millisecond)
}
