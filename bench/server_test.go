package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
	v, err := fetchVars(context.Background(), strings.TrimPrefix(srv.URL, "http://"), false)
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
