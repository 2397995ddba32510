package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 15 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunServesAndShutsDown runs the binary's body with -static, checks the
// start line and both HTTP trees, then cancels as SIGTERM would.
func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>mine</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"epoll", "gnet", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var logs syncBuffer
			addrc := make(chan string, 1)
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-engine", engine, "-loops", "2", "-static", dir},
					&logs, func(a string) { addrc <- a })
			}()
			var addr string
			select {
			case addr = <-addrc:
			case err := <-done:
				t.Fatalf("run: %v\n%s", err, logs.String())
			case <-time.After(15 * time.Second):
				t.Fatal("server did not start")
			}
			if code, body := get(t, "http://"+addr+"/"); code != 200 || body != "<p>mine</p>" {
				t.Errorf("GET /: %d %q", code, body)
			}
			if code, body := get(t, "http://"+addr+"/demo/"); code != 200 || !strings.Contains(body, "wsloop demo") {
				t.Errorf("GET /demo/: %d %.40q", code, body)
			}
			if code, body := get(t, "http://"+addr+"/demo/app.js"); code != 200 || !strings.Contains(body, "selftest") {
				t.Errorf("GET /demo/app.js: %d %.40q", code, body)
			}
			if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
				t.Errorf("GET /healthz: %d %q", code, body)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run after cancel: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no graceful stop")
			}
			l := logs.String()
			for _, want := range []string{`msg="wsloop serving"`, "engine=" + engine, "loops=2", "capacity=", "addr=" + addr, "msg=stopped"} {
				if !strings.Contains(l, want) {
					t.Errorf("logs lack %q:\n%s", want, l)
				}
			}
		})
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-engine", "nope"}, "nope"},
		{[]string{"-tls-cert", "c.pem"}, "-tls-key"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-max-message", "0"}, "-max-message"},
		{[]string{"-ping-interval", "-1s"}, "negative"},
		{[]string{"-static", "/definitely/not/here"}, "-static"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-addr", "127.0.0.1:0", "-engine", "epoll", "-tls-cert", "x", "-tls-key", "y"}, "-tls-cert"},
	}
	for _, c := range cases {
		err := run(context.Background(), c.args, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}
