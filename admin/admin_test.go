package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

func get(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func listen(t *testing.T, opts Options) string {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + srv.Addr().String()
}

// TestRoutes requests every admin route over real HTTP.
func TestRoutes(t *testing.T) {
	stats := new(session.Stats)
	stats.Opened.Add(7)
	stats.Messages.Add(3)
	metricsPage := "# HELP x_total x\n# TYPE x_total counter\nx_total 5\n"
	base := listen(t, Options{
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, metricsPage) }),
		Stats:   stats,
	})

	if code, body, _ := get(t, "GET", base+"/metrics"); code != 200 || body != metricsPage {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Errorf("/debug/pprof/: %d %.200q", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile: total") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	// A binary profile, as go tool pprof fetches it: gzip-compressed protobuf.
	if code, body, _ := get(t, "GET", base+"/debug/pprof/heap"); code != 200 || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("heap profile: %d %.20q", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/debug/pprof/profile?seconds=1"); code != 200 || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d %.20q", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/debug/pprof/cmdline"); code != 200 || !strings.Contains(body, "admin.test") {
		t.Errorf("cmdline: %d %q", code, body)
	}
	code, body, hdr := get(t, "GET", base+"/debug/vars")
	var doc struct {
		Memstats   struct{ HeapInuse uint64 } `json:"memstats"`
		Goroutines int                        `json:"goroutines"`
		Wsloop     map[string]uint64          `json:"wsloop"`
	}
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("/debug/vars: %d %s %.80q", code, hdr.Get("Content-Type"), body)
	}
	if doc.Memstats.HeapInuse == 0 || doc.Goroutines == 0 || doc.Wsloop["opened"] != 7 || doc.Wsloop["messages"] != 3 || doc.Wsloop["closed"] != 0 {
		t.Errorf("vars: heap %d goroutines %d wsloop %v", doc.Memstats.HeapInuse, doc.Goroutines, doc.Wsloop)
	}
	if code, body, _ := get(t, "GET", base+"/"); code != 200 || !strings.Contains(body, "/metrics") || !strings.Contains(body, "/debug/pprof/") {
		t.Errorf("index: %d %q", code, body)
	}
	for _, p := range []string{"/nope", "/debug/", "/metrics/x", "/healthz", "/debug/vars/x"} {
		if code, _, _ := get(t, "GET", base+p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	for _, p := range []string{"/metrics", "/debug/vars", "/debug/pprof/heap"} {
		if code, _, _ := get(t, "POST", base+p); code != 405 {
			t.Errorf("POST %s: %d, want 405", p, code)
		}
	}
}

// TestNoMetricsHandler: without Options.Metrics, /metrics is 404 and the
// index does not offer it.
func TestNoMetricsHandler(t *testing.T) {
	base := listen(t, Options{})
	if code, _, _ := get(t, "GET", base+"/metrics"); code != 404 {
		t.Errorf("/metrics: %d, want 404", code)
	}
	if _, body, _ := get(t, "GET", base+"/"); strings.Contains(body, "/metrics") {
		t.Errorf("index offers /metrics: %q", body)
	}
	if code, _, _ := get(t, "GET", base+"/debug/vars"); code != 200 {
		t.Errorf("/debug/vars: %d", code)
	}
}

// TestHeaderLimits: a client that never finishes its request header is cut
// off, and an oversized header is refused, so the admin port cannot be
// held by a slow or greedy client.
func TestHeaderLimits(t *testing.T) {
	base := listen(t, Options{})
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"
	c.SetDeadline(time.Now().Add(15 * time.Second))
	go io.WriteString(c, big)
	resp, err := io.ReadAll(io.LimitReader(c, 4096))
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 431")) {
		t.Errorf("200 KiB header: %q %v, want 431", resp, err)
	}
}

// TestShutdown: after Shutdown the port refuses connections.
func TestShutdown(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	if code, _, _ := get(t, "GET", "http://"+addr+"/debug/vars"); code != 200 {
		t.Fatalf("before shutdown: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the admin port still accepts connections after Shutdown")
	}
	if _, err := Listen(addr, Options{}); err != nil {
		t.Fatalf("the port is not free again: %v", err)
	}
}

// TestListenError names the listener in its error.
func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(ln.Addr().String(), Options{}); err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("port in use: %v", err)
	}
}
