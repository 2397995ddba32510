package web

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// tree builds base/root with files, a directory with and one without an
// index, and symbolic links pointing inside and outside the root; base/secret
// sits next to the root and must never be served.
func tree(t *testing.T) (root string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	files := map[string]string{
		"secret":                  "TOPSECRET",
		"root/index.html":         "<!doctype html><title>home</title>",
		"root/style.css":          "body{}",
		"root/app.js":             "console.log(1)",
		"root/data.json":          `{"a":1}`,
		"root/pic.svg":            "<svg xmlns='http://www.w3.org/2000/svg'/>",
		"root/notes.txt":          "plain words",
		"root/mod.wasm":           "\x00asm",
		"root/docs/index.html":    "<p>docs</p>",
		"root/docs/page.html":     "<p>page</p>",
		"root/nolist/a.txt":       "a",
		"root/nolist/b.txt":       "b",
		"root/weird name.txt":     "spaced",
		"root/odd/index.html/x":   "a directory named index.html",
		"root/docs/deeper/x.html": "<p>x</p>",
	}
	for name, body := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/abs":        filepath.Join(base, "secret"), // absolute, outside
		"root/rel":        "../secret",                   // relative, outside
		"root/outdir":     base,                          // a directory outside
		"root/docs/up":    "../../secret",                // two levels up
		"root/inside.txt": "notes.txt",                   // inside: allowed
		"root/insidedir":  "docs",                        // inside: allowed
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks unsupported here: %v", err)
		}
	}
	return root
}

func open(t *testing.T) *Handler {
	t.Helper()
	h, err := Open(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// do serves one request whose target is parsed exactly as a server parses the
// request line (httptest.NewRequest goes through http.ReadRequest).
func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesFilesWithContentTypes(t *testing.T) {
	h := open(t)
	cases := []struct {
		target, ctype, body string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html><title>home</title>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html><title>home</title>"},
		{"/style.css", "text/css; charset=utf-8", "body{}"},
		{"/app.js", "text/javascript; charset=utf-8", "console.log(1)"},
		{"/data.json", "application/json", `{"a":1}`},
		{"/pic.svg", "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'/>"},
		{"/notes.txt", "text/plain; charset=utf-8", "plain words"},
		{"/mod.wasm", "application/wasm", "\x00asm"},
		{"/docs/", "text/html; charset=utf-8", "<p>docs</p>"},
		{"/docs/page.html", "text/html; charset=utf-8", "<p>page</p>"},
		{"/docs/deeper/x.html", "text/html; charset=utf-8", "<p>x</p>"},
		{"/weird%20name.txt", "text/plain; charset=utf-8", "spaced"},
		{"/index.html?v=3", "text/html; charset=utf-8", "<!doctype html><title>home</title>"},
		{"/inside.txt", "text/plain; charset=utf-8", "plain words"},
		{"/insidedir/page.html", "text/html; charset=utf-8", "<p>page</p>"},
	}
	for _, c := range cases {
		rec := do(h, "GET", c.target)
		if rec.Code != 200 {
			t.Errorf("GET %s: status %d, want 200 (body %q)", c.target, rec.Code, rec.Body.String())
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.target, got, c.ctype)
		}
		if got := rec.Body.String(); got != c.body {
			t.Errorf("GET %s: body %q, want %q", c.target, got, c.body)
		}
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", c.target, got)
		}
	}
}

func TestHeadHasHeadersNoBody(t *testing.T) {
	h := open(t)
	rec := do(h, "HEAD", "/notes.txt")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: status %d body %q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Content-Length"); got != "11" {
		t.Fatalf("HEAD: Content-Length %q, want 11", got)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Fatalf("HEAD: Content-Type %q", got)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := open(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW"} {
		for _, target := range []string{"/", "/notes.txt", "/missing", HealthPath} {
			rec := do(h, m, target)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, target, rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", m, target, got)
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	h := open(t)
	for _, target := range []string{"/missing", "/docs/missing.html", "/notes.txt/", "/nolist/a.txt/x"} {
		if rec := do(h, "GET", target); rec.Code != 404 {
			t.Errorf("GET %s: status %d, want 404", target, rec.Code)
		}
	}
}

func TestNoDirectoryListing(t *testing.T) {
	h := open(t)
	rec := do(h, "GET", "/nolist/")
	if rec.Code != 404 {
		t.Fatalf("GET /nolist/: status %d, want 404", rec.Code)
	}
	if b := rec.Body.String(); strings.Contains(b, "a.txt") || strings.Contains(b, "b.txt") {
		t.Fatalf("GET /nolist/ lists files: %q", b)
	}
	if rec := do(h, "GET", "/odd/"); rec.Code != 404 {
		t.Fatalf("GET /odd/ (index.html is a directory): status %d, want 404", rec.Code)
	}
}

func TestDirectoryRedirectsToSlash(t *testing.T) {
	h := open(t)
	rec := do(h, "GET", "/docs?x=1")
	if rec.Code != http.StatusMovedPermanently {
		t.Fatalf("GET /docs: status %d, want 301", rec.Code)
	}
	if got := rec.Header().Get("Location"); got != "docs/?x=1" {
		t.Fatalf("GET /docs: Location %q, want docs/?x=1", got)
	}
	rec = do(h, "GET", "/docs/deeper")
	if got := rec.Header().Get("Location"); rec.Code != 301 || got != "deeper/" {
		t.Fatalf("GET /docs/deeper: %d Location %q, want 301 deeper/", rec.Code, got)
	}
}

func TestNoTraversal(t *testing.T) {
	h := open(t)
	targets := []string{
		"/../secret",
		"/docs/../../secret",
		"/%2e%2e/secret",
		"/%2E%2E/secret",
		"/docs/%2e%2e/%2e%2e/secret",
		"/..%2fsecret",
		"/%2e%2e%2fsecret",
		"/docs/..%2f..%2fsecret",
		"/..%5csecret",
		"/..\\secret",
		"/./notes.txt",
		"//notes.txt",
		"/docs//page.html",
		"/docs/./page.html",
		"/docs/../notes.txt", // inside, but not clean: refused, never a second spelling
		"/notes.txt%00",
		"/abs",
		"/rel",
		"/outdir/secret",
		"/outdir/root/notes.txt",
		"/docs/up",
		"/insidedir/up",
	}
	for _, target := range targets {
		rec := do(h, "GET", target)
		if rec.Code != 404 {
			t.Errorf("GET %s: status %d, want 404 (body %q)", target, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "TOPSECRET") {
			t.Errorf("GET %s leaked the file outside the root", target)
		}
	}
}

// TestNoTraversalOverTheWire sends raw request lines through a real HTTP
// server, so no client library cleans the path first.
func TestNoTraversalOverTheWire(t *testing.T) {
	srv := httptest.NewServer(open(t))
	defer srv.Close()
	for _, target := range []string{"/../secret", "/%2e%2e/secret", "/docs/%2e%2e%2f%2e%2e%2fsecret", "/rel", "/abs"} {
		resp, body := raw(t, srv.Listener.Addr().String(), "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 404") && !strings.HasPrefix(resp, "HTTP/1.1 400") {
			t.Errorf("GET %s: %q, want 404 or 400", target, resp)
		}
		if strings.Contains(body, "TOPSECRET") {
			t.Errorf("GET %s leaked the file outside the root", target)
		}
	}
}

func TestHealthz(t *testing.T) {
	h := open(t)
	rec := do(h, "GET", HealthPath)
	if rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", rec.Code, rec.Body.String())
	}
	rec = do(h, "HEAD", HealthPath)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "3" {
		t.Fatalf("HEAD /healthz: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
	}
}

func TestNewServesAnFS(t *testing.T) {
	h := New(fstest.MapFS{
		"index.html":   {Data: []byte("<p>root</p>")},
		"js/app.js":    {Data: []byte("x=1")},
		"sub/only.txt": {Data: []byte("t")},
	})
	if rec := do(h, "GET", "/"); rec.Code != 200 || rec.Body.String() != "<p>root</p>" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Body.String())
	}
	rec := do(h, "GET", "/js/app.js")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("GET /js/app.js: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec := do(h, "GET", "/sub/"); rec.Code != 404 {
		t.Fatalf("GET /sub/: %d, want 404", rec.Code)
	}
	if rec := do(h, "GET", "/%2e%2e/x"); rec.Code != 404 {
		t.Fatalf("GET /%%2e%%2e/x: %d, want 404", rec.Code)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Open of a missing directory succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := Open(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open of a file: %v", err)
	}
}

func raw(t *testing.T, addr, request string) (status, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	s := string(b)
	line, rest, _ := strings.Cut(s, "\r\n")
	return line, rest
}
