package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ProbeTimeout bounds one HTTP probe.
const ProbeTimeout = 2 * time.Second

// HTTP checks that addr (host:port) answers HTTP: any status counts, since
// the question is whether the server serves, not what it thinks of "/".
// It sends one GET / and reads the status line, nothing more, and follows
// no redirect.
//
// It speaks the few bytes of HTTP/1.1 it needs over a plain TCP connection
// instead of using net/http: net/http links crypto/tls, x509 and HTTP/2
// into hermes-s6, and their package initialisation runs in every hermes-s6
// process, a few tenths of its start-up (make bench, rows 1 and 5).
func HTTP(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("no HTTP answer: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// Closing the connection ends a read or write the context outlives.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: hermes-s6-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return fmt.Errorf("no HTTP answer: %w", probeErr(ctx, err))
	}
	line, err := bufio.NewReaderSize(c, 256).ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("no HTTP answer: status line too long: %q", line[:min(len(line), 40)])
		}
		return fmt.Errorf("no HTTP answer: %w", probeErr(ctx, err))
	}
	if !statusLine(string(line)) {
		return fmt.Errorf("no HTTP answer: not an HTTP status line: %q", strings.TrimSpace(string(line[:min(len(line), 80)])))
	}
	return nil
}

// statusLine reports whether line is an HTTP/1.x status line: "HTTP/1.x",
// a space and three digits.
func statusLine(line string) bool {
	v, rest, ok := strings.Cut(line, " ")
	if !ok || len(v) != len("HTTP/1.1") || !strings.HasPrefix(v, "HTTP/1.") || len(rest) < 3 {
		return false
	}
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(rest) == 3 || rest[3] == ' ' || rest[3] == '\r' || rest[3] == '\n'
}

// probeErr is the context's error when it ended the probe, else err.
func probeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
