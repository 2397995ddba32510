package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoServer echoes every message (an independent implementation); message
// corruptAt (from 1, over all connections; 0: none) comes back damaged.
func echoServer(t *testing.T, corruptAt int64) string {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if n.Add(1) == corruptAt {
				b[len(b)/2] ^= 0x01
			}
			if c.Write(r.Context(), typ, b) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String() + "/"
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	code = run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

func TestPassWritesJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := runCmd(t, "echo", "-url", echoServer(t, 0), "-conns", "4", "-duration", "500ms", "-procs", "1", "-json", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "result     PASS") {
		t.Errorf("report without PASS:\n%s", out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenario string `json:"scenario"`
		Received int64  `json:"received"`
		Latency  struct {
			Count int64 `json:"count"`
		} `json:"message_latency"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Scenario != "echo" || rep.Received == 0 || rep.Latency.Count != rep.Received {
		t.Errorf("json report: %+v", rep)
	}
}

func TestMismatchExitsOne(t *testing.T) {
	code, out, errOut := runCmd(t, "-scenario", "echo", "-url", echoServer(t, 10), "-conns", "2", "-duration", "500ms", "-procs", "1")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "FAILED") || !strings.Contains(errOut, "1 echoed payloads differ") {
		t.Errorf("stderr does not say what failed: %q", errOut)
	}
}

func TestUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{{"nosuch"}, {"echo", "-size", "3"}, {"-scenario", "idle", "-src", "x"}, {"-bogus"}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
