package bridge

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/servetest"
	"github.com/wsloop/wsloop/web"
)

// cgiServer serves dir at /cgi-bin/, a static directory at / and
// the echo example as a WebSocket at /echo, all on one port.
func cgiServer(t *testing.T, dir string, opts CGIOptions) (*testServer, *CGI, *logBuffer) {
	t.Helper()
	logs := new(logBuffer)
	opts.Logger = logs.logger()
	h, err := NewCGI(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	static := t.TempDir()
	if err := os.WriteFile(filepath.Join(static, "index.html"), []byte("<p>static</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := web.Open(static)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, h.Prefix()) {
			h.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	e := newExec(t, program(t, "../examples/exec/echo.sh"), ExecOptions{})
	return serve(t, "epoll", routes{"/echo": e.Upgrade}, mux, nil), h, logs
}

// TestCGIEnv: every CGI variable by value, the script's headers and the
// stderr log, next to a static file and a WebSocket on the same port.
func TestCGIEnv(t *testing.T) {
	noLeaks(t)
	t.Setenv("WSLOOP_CGI_PASS", "through")
	t.Setenv("WSLOOP_CGI_SECRET", "kept")
	s, _, logs := cgiServer(t, "testdata/cgi-bin", CGIOptions{PassEnv: []string{"WSLOOP_CGI_PASS"}, Env: []string{"EXTRA=2"}})
	_, port, _ := net.SplitHostPort(s.addr)

	var local *net.TCPAddr
	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err == nil {
			local = nc.LocalAddr().(*net.TCPAddr)
		}
		return nc, err
	}}}
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/cgi-bin/env.cgi/extra/info?a=1&b=%20x", nil)
	req.Header.Set("X-Custom-Thing", "v1")
	req.Header.Set("Proxy", "http://evil")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cl.CloseIdleConnections()
	if resp.StatusCode != 200 || resp.Header.Get("X-Script") != "env" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(string(body), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	abs, _ := filepath.Abs("testdata/cgi-bin/env.cgi")
	for k, want := range map[string]string{
		"GATEWAY_INTERFACE":   "CGI/1.1",
		"SERVER_PROTOCOL":     "HTTP/1.1",
		"SERVER_NAME":         "127.0.0.1",
		"SERVER_PORT":         port,
		"REQUEST_METHOD":      "GET",
		"REQUEST_URI":         "/cgi-bin/env.cgi/extra/info?a=1&b=%20x",
		"SCRIPT_NAME":         "/cgi-bin/env.cgi",
		"SCRIPT_FILENAME":     abs,
		"PATH_INFO":           "/extra/info",
		"QUERY_STRING":        "a=1&b=%20x",
		"REMOTE_ADDR":         "127.0.0.1",
		"REMOTE_PORT":         strconv.Itoa(local.Port),
		"HTTP_HOST":           s.addr,
		"HTTP_X_CUSTOM_THING": "v1",
		"WSLOOP_CGI_PASS":     "through",
		"EXTRA":               "2",
		"PATH":                os.Getenv("PATH"),
	} {
		if got, ok := vars[k]; !ok || got != want {
			t.Errorf("%s=%q (set: %v), want %q", k, got, ok, want)
		}
	}
	for _, k := range []string{"HTTPS", "HTTP_PROXY", "WSLOOP_CGI_SECRET"} {
		if v, ok := vars[k]; ok {
			t.Errorf("%s=%q is set", k, v)
		}
	}
	eventually(t, "the stderr line in the log", func() bool { return strings.Contains(logs.String(), "complaint from env.cgi") })
	if !strings.Contains(logs.String(), "script=env.cgi") {
		t.Errorf("log lacks the script: %s", logs.String())
	}

	// The same port serves static files and WebSockets.
	if code, _, body := servetest.RawHTTP(t, s.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); code != 200 || body != "<p>static</p>" {
		t.Errorf("static: %d %q", code, body)
	}
	c := dial(t, s.addr, "/echo", nil)
	write(t, c, websocket.MessageText, "beside CGI")
	if got := readText(t, c); got != "beside CGI" {
		t.Errorf("websocket: %q", got)
	}
}

// TestCGIRequests: the script's status and headers pass; only executable
// plain files directly in the directory run; bodies are refused; the Limit
// applies.
func TestCGIRequests(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	ents, _ := os.ReadDir("testdata/cgi-bin")
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("testdata/cgi-bin", e.Name()))
		fi, _ := e.Info()
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link to a script is not a script.
	if err := os.Symlink("env.cgi", filepath.Join(dir, "link.cgi")); err != nil {
		t.Fatal(err)
	}
	lim := NewLimit(1)
	wait := filepath.Join(t.TempDir(), "go")
	s, _, _ := cgiServer(t, dir, CGIOptions{Limit: lim, TLS: true, Env: []string{"WAIT_FILE=" + wait}})
	code, head, body := servetest.RawHTTP(t, s.addr, "GET /cgi-bin/status.cgi HTTP/1.1\r\nHost: x\r\n\r\n")
	if code != 201 || !strings.Contains(head, "\r\nLocation: /made/1") || body != "made\n" {
		t.Errorf("status.cgi: %d %q %q", code, head, body)
	}
	if _, _, body := servetest.RawHTTP(t, s.addr, "GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.Contains(body, "\nHTTPS=on\n") {
		t.Errorf("TLS: no HTTPS=on in %q", body)
	}
	for _, path := range []string{"/cgi-bin/", "/cgi-bin/missing.cgi", "/cgi-bin/.hidden.cgi", "/cgi-bin/plain.txt",
		"/cgi-bin/link.cgi", "/cgi-bin/..%2fsecret", "/cgi-bin/%2e%2e/secret", "/cgi-bin/../secret"} {
		if code, _, body := servetest.RawHTTP(t, s.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); code != 404 {
			t.Errorf("%s: %d %q, want 404", path, code, body)
		}
	}
	if code, _, body := servetest.RawHTTP(t, s.addr, "POST /cgi-bin/upper.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); code != 200 || !strings.Contains(body, "HELLO") {
		t.Errorf("POST with a body: %d %q, want 200 and the body in capitals", code, body)
	}
	if code, _, _ := servetest.RawHTTP(t, s.addr, "POST /cgi-bin/upper.cgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"); code != 411 {
		t.Errorf("POST with a chunked body: %d, want 411", code)
	}
	if code, _, _ := servetest.RawHTTP(t, s.addr, "POST /cgi-bin/status.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); code != 201 {
		t.Errorf("POST without a body: %d, want 201", code)
	}
	// A second script while one runs, under a limit of one: 503.
	first := make(chan int, 1)
	go func() {
		code, _, _ := servetest.RawHTTP(t, s.addr, "GET /cgi-bin/wait.cgi HTTP/1.1\r\nHost: x\r\n\r\n")
		first <- code
	}()
	eventually(t, "the first script to run", func() bool { return lim.Running() == 1 })
	if code, head, _ := servetest.RawHTTP(t, s.addr, "GET /cgi-bin/status.cgi HTTP/1.1\r\nHost: x\r\n\r\n"); code != 503 || !strings.Contains(head, "\r\nRetry-After: 1") {
		t.Errorf("second script: %d %q, want 503 with Retry-After", code, head)
	}
	if err := os.WriteFile(wait, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := <-first; code != 200 {
		t.Errorf("first script: %d", code)
	}
	if lim.Refused() != 1 || lim.Running() != 0 {
		t.Errorf("refused %d, running %d", lim.Refused(), lim.Running())
	}
}
