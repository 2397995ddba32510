package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsloop/wsloop/internal/logbuf"
	"github.com/wsloop/wsloop/loop"
)

// running is the binary's body started by startRun.
type running struct {
	addr string
	logs *logbuf.Buffer
	stop func() error // cancels as SIGTERM would and waits for run to return
}

// startRun runs the binary's body with args on 127.0.0.1:0; it is stopped
// at the end of the test unless the test stops it first.
func startRun(t *testing.T, args ...string) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := new(logbuf.Buffer)
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), logs, func(a string) { addrc <- a })
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("no graceful stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case addr := <-addrc:
		return running{addr: addr, logs: logs, stop: stop}
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("server did not start")
	}
	return running{}
}

// adminAddr is the admin listener's address from the start logs.
func adminAddr(t *testing.T, r running) string {
	t.Helper()
	m := regexp.MustCompile(`msg="admin listener" addr=(\S+)`).FindStringSubmatch(r.logs.String())
	if m == nil {
		t.Fatalf("no admin listener in the logs:\n%s", r.logs.String())
	}
	return m[1]
}

// adminPaths are what the admin listener serves and the public port never does.
var adminPaths = []string{"/metrics", "/debug/vars", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"}

// TestAdminListener: without -admin-addr nothing of it is served; with it,
// metrics, expvar and pprof answer on the admin address, with real figures,
// and still not on the public port.
func TestAdminListener(t *testing.T) {
	for _, engine := range []string{"epoll", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			r := startRun(t, "-engine", engine)
			if strings.Contains(r.logs.String(), "admin listener") {
				t.Errorf("an admin listener without -admin-addr:\n%s", r.logs.String())
			}
			for _, p := range adminPaths {
				if code, _ := get(t, "http://"+r.addr+p); code != 404 {
					t.Errorf("public GET %s without -admin-addr: %d, want 404", p, code)
				}
			}

			r = startRun(t, "-engine", engine, "-admin-addr", "127.0.0.1:0")
			admin := adminAddr(t, r)
			for _, p := range adminPaths {
				if code, _ := get(t, "http://"+r.addr+p); code != 404 {
					t.Errorf("public GET %s with -admin-addr: %d, want 404", p, code)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/ws/echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Read(ctx); err != nil {
				t.Fatal(err)
			}
			c.Close(websocket.StatusNormalClosure, "")

			code, body := get(t, "http://"+admin+"/debug/vars")
			var doc struct {
				Memstats   struct{ HeapInuse uint64 } `json:"memstats"`
				Goroutines int                        `json:"goroutines"`
				Wsloop     map[string]uint64          `json:"wsloop"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
				t.Fatalf("admin GET /debug/vars: %d %.80q", code, body)
			}
			if doc.Memstats.HeapInuse == 0 || doc.Goroutines == 0 || doc.Wsloop["opened"] != 1 || doc.Wsloop["messages"] != 1 {
				t.Errorf("vars: heap %d goroutines %d wsloop %v", doc.Memstats.HeapInuse, doc.Goroutines, doc.Wsloop)
			}

			code, body = get(t, "http://"+admin+"/metrics")
			if code != 200 {
				t.Fatalf("admin GET /metrics: %d", code)
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
			if err != nil {
				t.Fatalf("parse /metrics: %v", err)
			}
			if g := fams["go_goroutines"]; g == nil || g.Metric[0].GetGauge().GetValue() < 1 {
				t.Errorf("go_goroutines missing or < 1")
			}
			if f := fams["wsloop_connections_refused_total"]; f == nil || len(f.Metric) != int(loop.NumRefuseReasons)+1 {
				t.Errorf("wsloop_connections_refused_total: %v", f)
			}
			if code, body := get(t, "http://"+admin+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
				t.Errorf("admin goroutine profile: %d %.80q", code, body)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if c, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
				c.Close()
				t.Error("the admin listener outlived the server")
			}
		})
	}
}

// TestExpvarFlagMoved: the removed -expvar flag stops the start with an
// error that says where its page went.
func TestExpvarFlagMoved(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-expvar"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-admin-addr") {
		t.Fatalf("-expvar: %v, want an error pointing to -admin-addr", err)
	}
}

// TestAdminAddrInUse: an admin address that cannot be bound stops the start.
func TestAdminAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-admin-addr", ln.Addr().String()}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("admin port in use: %v", err)
	}
}
