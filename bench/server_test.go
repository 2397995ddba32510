package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLookupServers(t *testing.T) {
	got, err := LookupServers("gorilla, epoll")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "epoll" || got[1].Name != "gorilla" {
		t.Errorf("got %v, want epoll then gorilla (the order of Servers)", got)
	}
	if _, err := LookupServers("epoll,nginx"); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("unknown server: err %v, want one naming it", err)
	}
	if _, err := LookupServers(""); err == nil {
		t.Error("empty list: want an error")
	}
}

func TestFetchVars(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/vars" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"cmdline":["x"],"goroutines":19004,"memstats":{"HeapAlloc":1,"HeapInuse":8192000}}`)
	}))
	defer srv.Close()
	v, err := fetchVars(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if v.HeapInuse != 8192000 || v.Goroutines != 19004 {
		t.Errorf("got %+v", v)
	}
	if _, err := parseVars([]byte(`{"cmdline":[]}`)); err != errNoVars {
		t.Errorf("no memstats: err %v, want errNoVars", err)
	}
	if _, err := parseVars([]byte(`<html>404</html>`)); err != errNoVars {
		t.Errorf("not JSON: err %v, want errNoVars", err)
	}
	if v, _ := parseVars([]byte(`{"memstats":{"HeapInuse":5}}`)); v.Goroutines != -1 {
		t.Errorf("no goroutines var: %v, want -1", v.Goroutines)
	}
}

// TestWsloopVarsOnAdmin starts the wsloop binary as the matrix does and
// reads its runtime figures from its admin listener (never from its
// public port).
func TestWsloopVarsOnAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wsloop; skipped with -short")
	}
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec, _ := LookupServers("epoll")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := buildAll(ctx, root, bin, spec, log); err != nil {
		t.Fatal(err)
	}
	p, err := startServer(ctx, spec[0], bin, t.TempDir(), certFiles{}, "", log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	if p.vars == p.addr {
		t.Fatalf("vars on the public port %s", p.addr)
	}
	v, err := fetchVars(ctx, p.vars)
	if err != nil || v.HeapInuse <= 0 || v.Goroutines <= 0 {
		t.Errorf("admin /debug/vars: %+v %v", v, err)
	}
	if _, err := fetchVars(ctx, p.addr); err != errNoVars {
		t.Errorf("public /debug/vars: %v, want errNoVars (404)", err)
	}
}
