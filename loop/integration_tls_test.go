package loop_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
)

// TestIntegrationTLS: wss on the goroutine engine (echo, plain HTTP and a
// clean close over TLS); the event-loop engines refuse a TLSConfig at
// NewServer with an error instead of serving plain text.
func TestIntegrationTLS(t *testing.T) {
	tc := testcert.New(t)
	forEachEngine(t, func(t *testing.T, engine string) {
		tlsConf := tc.ServerConfig()
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.TLSConfig = tlsConf })
		tr := &http.Transport{TLSClientConfig: tc.ClientConfig()}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "wss://"+ts.addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatalf("wss dial: %v", err)
		}
		c.SetReadLimit(4 << 20)
		ts.addCloser(func() { c.CloseNow() })
		for _, n := range []int{0, 125, 70000, 1 << 20} {
			want := payload(n, false, n)
			if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("wss echo of %d bytes: %v", n, err)
			}
			if d := equalOrDescribe(got, want); d != "" {
				t.Fatalf("wss echo of %d bytes: %s", n, d)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, "tls done"); err != nil {
			t.Errorf("close over TLS: %v", err)
		}
		if ev := ts.rec.firstClose(t); ev.code != 1000 || ev.reason != "tls done" {
			t.Errorf("OnClose(%d, %q, %v) over TLS", ev.code, ev.reason, ev.err)
		}
		// Plain HTTP over TLS on the same port.
		hc := &http.Client{Transport: tr, Timeout: waitTimeout}
		resp, err := hc.Get("https://" + ts.addr + "/healthz")
		if err != nil {
			t.Fatalf("GET https /healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET https /healthz: %d", resp.StatusCode)
		}
		tr.CloseIdleConnections()
		ts.finish()
	})
}
