package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/servetest"
)

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
	base := t.TempDir()
	dir := filepath.Join(base, "public")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>mine</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("TOPSECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"epoll", "gnet", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			r := startRun(t, "-engine", engine, "-loops", "2", "-static", dir)
			addr := r.addr
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
			// Raw request lines, as an attacker would send them, through the
			// engine's HTTP side.
			for _, c := range []struct{ req, status, absent string }{
				{"GET /../secret HTTP/1.1", "404", "TOPSECRET"},
				{"GET /%2e%2e/secret HTTP/1.1", "404", "TOPSECRET"},
				{"GET /%2E%2E%2Fsecret HTTP/1.1", "404", "TOPSECRET"},
				{"GET /demo/%2e%2e/%2e%2e/secret HTTP/1.1", "404", "TOPSECRET"},
				{"GET /link HTTP/1.1", "404", "TOPSECRET"},
				{"HEAD / HTTP/1.1", "200", "mine"},
				{"POST / HTTP/1.1", "405", ""},
				{"GET /demo HTTP/1.1", "301", ""},
			} {
				_, head, body := servetest.RawHTTP(t, addr, c.req+"\r\nHost: "+addr+"\r\nContent-Length: 0\r\n\r\n")
				status := strings.SplitN(head, " ", 3)
				if len(status) < 2 || status[1] != c.status {
					t.Errorf("%s: %q, want %s", c.req, strings.SplitN(head, "\r\n", 2)[0], c.status)
				}
				if c.absent != "" && strings.Contains(body, c.absent) {
					t.Errorf("%s: body has %q", c.req, c.absent)
				}
				if c.status == "405" && !strings.Contains(head, "\r\nAllow: GET, HEAD\r\n") {
					t.Errorf("%s: no Allow header in %q", c.req, head)
				}
			}
			if err := r.stop(); err != nil {
				t.Fatalf("run after cancel: %v", err)
			}
			l := r.logs.String()
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
		{[]string{"-high-water", "0"}, "-high-water"},
		{[]string{"-overflow", "wait"}, "-overflow"},
		{[]string{"-write-timeout", "-1s"}, "negative"},
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
