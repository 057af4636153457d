package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPAnyStatusCounts(t *testing.T) {
	for _, code := range []int{200, 302, 404, 500} {
		var got *http.Request
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			if code == 302 {
				http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", code)
				return
			}
			w.WriteHeader(code)
			w.Write([]byte(strings.Repeat("x", 4096)))
		}))
		addr := strings.TrimPrefix(srv.URL, "http://")
		if err := HTTP(context.Background(), addr); err != nil {
			t.Errorf("status %d: %v, want nil (any status counts)", code, err)
		}
		srv.Close()
		if got == nil || got.Method != http.MethodGet || got.URL.Path != "/" || got.Host != addr || got.UserAgent() != "hermes-s6-probe" {
			t.Errorf("status %d: request %+v, want GET / with Host %s and User-Agent hermes-s6-probe", code, got, addr)
		}
	}
}

// serve answers every connection on a fresh loopback listener with fn.
func serve(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fn(c) }()
		}
	}()
	return ln.Addr().String()
}

func TestHTTPRefusesWhatIsNotHTTP(t *testing.T) {
	for name, answer := range map[string]string{
		"not HTTP":       "SSH-2.0-OpenSSH_9.6\r\n",
		"closes at once": "",
		"bad status":     "HTTP/1.1 2x0 OK\r\n",
		"no status line": strings.Repeat("y", 1000),
	} {
		addr := serve(t, func(c net.Conn) {
			c.Read(make([]byte, 512))
			c.Write([]byte(answer))
		})
		err := HTTP(context.Background(), addr)
		if err == nil || !strings.Contains(err.Error(), "no HTTP answer") {
			t.Errorf("%s: %v, want a no HTTP answer error", name, err)
		}
	}
}

func TestHTTPNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := HTTP(context.Background(), addr); err == nil {
		t.Error("a closed port answered")
	}
}

func TestHTTPSilentServerTimesOut(t *testing.T) {
	// The server reads nothing and says nothing until the test is over.
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	addr := serve(t, func(c net.Conn) { <-hang })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := HTTP(ctx, addr)
	if err == nil {
		t.Fatal("a silent server answered")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %s, want the caller's 200ms deadline to end it", d)
	}
}

func TestStatusLine(t *testing.T) {
	for line, want := range map[string]bool{
		"HTTP/1.1 200 OK\r\n":  true,
		"HTTP/1.0 404\r\n":     true,
		"HTTP/1.1 302\n":       true,
		"HTTP/2 200\r\n":       false,
		"HTTP/1.1 20\r\n":      false,
		"HTTP/1.1 2000 OK\r\n": false,
		"http/1.1 200 OK\r\n":  false,
		"SSH-2.0-OpenSSH\r\n":  false,
		"HTTP/1.1  200 OK\r\n": false,
		"HTTP/1.10 200 OK\r\n": false,
	} {
		if got := statusLine(line); got != want {
			t.Errorf("statusLine(%q) = %v, want %v", line, got, want)
		}
	}
}
