package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ProbeTimeout bounds one HTTP probe.
const ProbeTimeout = 2 * time.Second

// HTTP checks that addr (host:port) answers HTTP: any status counts, since
// the question is whether the server serves, not what it thinks of "/".
// It reads at most a few bytes of the body and follows no redirect.
func HTTP(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "hermes-s6-probe")
	c := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil, ResponseHeaderTimeout: ProbeTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("no HTTP answer: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 512)
	return resp.Body.Close()
}
