package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"
)

// TestRunTLS serves https and wss with -tls-cert/-tls-key on the goroutine engine.
func TestRunTLS(t *testing.T) {
	cert, key := testcert.New(t).WriteFiles(t)
	r := startRun(t, "-engine", "goroutine", "-tls-cert", cert, "-tls-key", key)
	addr := r.addr
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	cl := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	resp, err := cl.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("GET https /healthz: %d %q", resp.StatusCode, body)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	c, _, err := websocket.Dial(wctx, "wss://"+addr+"/ws/echo", &websocket.DialOptions{HTTPClient: cl})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	if err := c.Write(wctx, websocket.MessageText, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(wctx); err != nil || string(b) != "over tls" {
		t.Fatalf("wss echo: %q %v", b, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if err := r.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(r.logs.String(), "demo=https://") {
		t.Errorf("start line does not name the https page:\n%s", r.logs.String())
	}
}
