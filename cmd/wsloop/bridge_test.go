package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/servetest"
)

// TestRunBridges: -exec, -backend (two paths, one backend), -cgi-dir and
// -console on one port, beside the demo, then a graceful stop.
func TestRunBridges(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	r := startRun(t, "-exec", "/ws/sh="+abs("../../examples/exec/echo.sh"), "-exec", "/ws/env/="+abs("../../bridge/testdata/env.sh"),
		"-backend", "/ws/all,/ws/all2="+abs("../../examples/backend/broadcast.sh"),
		"-cgi-dir", abs("../../bridge/testdata/cgi-bin"), "-console", "-exec-max", "8")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := func(path, msg string, readers int) {
		t.Helper()
		var cs []*websocket.Conn
		for i := 0; i < readers; i++ {
			c, _, err := websocket.Dial(ctx, "ws://"+r.addr+path, nil)
			if err != nil {
				t.Fatalf("dial %s: %v", path, err)
			}
			defer c.CloseNow()
			cs = append(cs, c)
		}
		// The last one's own message coming back shows that the backend has
		// handled every open (events reach it in order).
		last := cs[len(cs)-1]
		if err := last.Write(ctx, websocket.MessageText, []byte("ready")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := last.Read(ctx); err != nil || string(got) != "ready" {
			t.Fatalf("%s: %q %v, want ready", path, got, err)
		}
		if err := cs[0].Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			_, got, err := c.Read(ctx)
			for err == nil && string(got) == "ready" && c != last {
				_, got, err = c.Read(ctx)
			}
			if err != nil || string(got) != msg {
				t.Fatalf("%s: %q %v, want %q", path, got, err, msg)
			}
			c.Close(websocket.StatusNormalClosure, "")
		}
	}
	echo("/ws/sh", "per connection", 1)
	echo("/ws/all", "shared", 2)
	echo("/ws/all2", "shared too", 1)
	echo("/ws/echo", "the demo is still there", 1)
	// A prefix mount: the rest of the path is PATH_INFO.
	c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/ws/env/a/b?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for {
		_, line, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(line) == "END" {
			break
		}
		k, v, _ := strings.Cut(string(line), "=")
		vars[k] = v
	}
	c.Close(websocket.StatusNormalClosure, "")
	if vars["SCRIPT_NAME"] != "/ws/env" || vars["PATH_INFO"] != "/a/b" || vars["QUERY_STRING"] != "q=1" {
		t.Errorf("prefix mount: SCRIPT_NAME %q PATH_INFO %q QUERY_STRING %q", vars["SCRIPT_NAME"], vars["PATH_INFO"], vars["QUERY_STRING"])
	}
	if _, resp, err := websocket.Dial(ctx, "ws://"+r.addr+"/ws/nothing", nil); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("unrouted path: %v %v, want 404", err, resp)
	}
	if code, body := get(t, "http://"+r.addr+"/cgi-bin/status.cgi"); code != 201 || body != "made\n" {
		t.Errorf("CGI: %d %q", code, body)
	}
	code, body := get(t, "http://"+r.addr+"/console/endpoints.json")
	var eps []struct{ Path, Kind string }
	if err := json.Unmarshal([]byte(body), &eps); code != 200 || err != nil || len(eps) != 4 ||
		eps[0].Path != "/ws/sh" || eps[0].Kind != "exec" || eps[2].Path != "/ws/all" || eps[3].Kind != "backend" {
		t.Errorf("console endpoints: %d %s", code, body)
	}
	if code, body := get(t, "http://"+r.addr+"/console/"); code != 200 || !strings.Contains(body, "wsloop console") {
		t.Errorf("console page: %d %.60q", code, body)
	}
	if _, head, _ := servetest.RawHTTP(t, r.addr, "GET /console HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(head, "HTTP/1.1 301") {
		t.Errorf("GET /console: %q", head)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, r.logs.String())
	}
	for _, want := range []string{"msg=bridge path=/ws/sh exec=", "msg=bridge path=/ws/all2 backend=", "msg=bridge path=/cgi-bin/ cgi-dir=",
		`msg="backend running"`, "msg=stopped"} {
		if !strings.Contains(r.logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, r.logs.String())
		}
	}
}

func TestRunRefusesBadBridgeFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-exec", "/x"}, `use -exec /path=PROGRAM`},
		{[]string{"-exec", "/x="}, `use -exec /path=PROGRAM`},
		{[]string{"-exec", "x=cat"}, `must start with /`},
		{[]string{"-exec", "=cat"}, `no path before =`},
		{[]string{"-exec", "/x=/definitely/not/here"}, `-exec "/x=/definitely/not/here"`},
		{[]string{"-exec", "/x=cat", "-backend", "/x=cat"}, `bridged twice`},
		{[]string{"-backend", "/b=/definitely/not/here"}, `-backend`},
		{[]string{"-exec-max", "-1"}, `-exec-max`},
		{[]string{"-console"}, `-console`},
		{[]string{"-cgi-dir", "/definitely/not/here"}, `-cgi-dir`},
	} {
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, c.args...), io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}
