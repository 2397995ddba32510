//go:build linux || darwin || freebsd

package bridge

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/internal/browsertest"
)

// TestConsoleBrowser: in headless Chromium the console page lists the
// bridged endpoints and, driving its own form, talks to a per-connection
// program (shell) and a shared backend (C) through them.
func TestConsoleBrowser(t *testing.T) {
	browsertest.Require(t)
	noLeaks(t)
	e := newExec(t, program(t, "../examples/exec/echo.sh"), ExecOptions{})
	b := newBackend(t, BackendOptions{Command: []string{compileC(t, "../examples/backend/echo.c")}})
	report, reports := browsertest.Reports()
	console := http.StripPrefix("/console", Console([]Endpoint{
		{Path: "/ws/echo-sh", Kind: "exec", Program: "echo.sh"},
		{Path: "/ws/echo-c", Kind: "backend", Program: "echo"},
	}))
	mux := http.NewServeMux()
	mux.Handle("/console/", console)
	mux.Handle("/report", report)
	s := serve(t, "epoll", routes{"/ws/echo-sh": e.Upgrade, "/ws/echo-c": b.Upgrade}, mux, nil)
	got := browsertest.Run(t, "http://"+s.addr+"/console/?selftest=/ws/echo-sh,/ws/echo-c&report=/report", reports, 60*time.Second)
	t.Log(got)
	if got != "CONSOLE PASS /ws/echo-sh=ok /ws/echo-c=ok" {
		t.Errorf("console self-test: %q", got)
	}
	if st := b.Stats(); st.Messages != 1 || st.Opened != 1 {
		t.Errorf("backend stats %+v: the page's message did not go through it", st)
	}
	if st := e.Stats(); st.Started != 1 {
		t.Errorf("exec stats %+v", st)
	}
}

// TestDemoPageBridged: the demo page, served as wsloop serves it with
// bridged programs and the console, lists the bridged paths in its
// Programs panel, and in headless Chromium the page's self-test talks to a
// per-connection program (shell) and a shared backend (C) through that
// panel, beside the demo's own echo, chat and push.
func TestDemoPageBridged(t *testing.T) {
	browsertest.Require(t)
	noLeaks(t)
	e := newExec(t, program(t, "../examples/exec/echo.sh"), ExecOptions{})
	b := newBackend(t, BackendOptions{Command: []string{compileC(t, "../examples/backend/echo.c")}})
	d := demo.New(demo.Options{PushInterval: 200 * time.Millisecond})
	t.Cleanup(d.Close) // after the server's shutdown
	report, reports := browsertest.Reports()
	mux := http.NewServeMux()
	mux.Handle("/", d.Page())
	mux.Handle("/console/", http.StripPrefix("/console", Console([]Endpoint{
		{Path: "/ws/echo-sh", Kind: "exec", Program: "echo.sh"},
		{Path: "/ws/echo-c", Kind: "backend", Program: "echo"},
	})))
	mux.Handle("/report", report)
	s := serve(t, "epoll", routes{"/ws/echo-sh": e.Upgrade, "/ws/echo-c": b.Upgrade, "*": d.Upgrade}, mux, nil)
	got := browsertest.Run(t, "http://"+s.addr+"/?selftest=1&bridged=/ws/echo-sh,/ws/echo-c&report=/report", reports, 60*time.Second)
	t.Log(got)
	if !strings.HasPrefix(got, "SELFTEST PASS ") || !strings.Contains(got+" ", " bridged=ok ") {
		t.Errorf("demo page self-test: %q, want a pass with bridged=ok", got)
	}
	if st := b.Stats(); st.Messages != 1 || st.Opened != 1 {
		t.Errorf("backend stats %+v: the page's line did not go through it", st)
	}
	if st := e.Stats(); st.Started != 1 {
		t.Errorf("exec stats %+v: the page's connection did not start the program", st)
	}
}
