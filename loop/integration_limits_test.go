package loop_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
)

// refusedWith reads what the server answers a connection at once and
// returns its status line ("" when it serves the connection).
func refusedWith(t *testing.T, addr string, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if req != "" {
		c.Write([]byte(req))
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b, _ := io.ReadAll(c)
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}

// Per-client limits on every engine: connections per address (429), the
// handshake rate per address (429), handshakes in progress (503); a client
// behind a trusted proxy is counted by the address the proxy names.
func TestIntegrationClientLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Run("per address", func(t *testing.T) {
			rec := echoRecorder()
			ts := startServer(t, engine, rec, func(o *loop.Options) { o.Limits.MaxConnsPerClient = 2 })
			a, b := ts.openRaw(), ts.openRaw()
			if got := refusedWith(t, ts.addr, ""); got != "HTTP/1.1 429 Too Many Requests" {
				t.Fatalf("3rd connection: %q, want 429", got)
			}
			a.c.Close()
			waitFor(t, "the first to go", func() bool { return ts.srv.Conns() == 1 })
			c := ts.openRaw() // a place again
			b.c.Close()
			c.c.Close()
			ts.finish()
		})
		t.Run("handshake rate", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
				o.Limits.HandshakeRate, o.Limits.HandshakeBurst = 1, 3
			})
			for i := 0; i < 3; i++ {
				rc := ts.openRaw()
				rc.c.Close()
			}
			if got := refusedWith(t, ts.addr, ""); got != "HTTP/1.1 429 Too Many Requests" {
				t.Fatalf("4th handshake at once: %q, want 429", got)
			}
			ts.finish()
		})
		t.Run("handshakes in progress", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.Limits.MaxHandshakes = 2 })
			var slow []net.Conn
			for i := 0; i < 2; i++ { // two that never finish their request
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte("GET / HTTP/1.1\r\n"))
				slow = append(slow, c)
			}
			waitFor(t, "both in their handshake", func() bool { return ts.srv.Conns() == 2 })
			if got := refusedWith(t, ts.addr, ""); got != "HTTP/1.1 503 Service Unavailable" {
				t.Fatalf("3rd while 2 handshake: %q, want 503", got)
			}
			for _, c := range slow {
				c.Close()
			}
			waitFor(t, "the slow ones to go", func() bool { return ts.srv.Conns() == 0 })
			rc := ts.openRaw() // their places are back
			rc.c.Close()
			ts.finish()
		})
		t.Run("behind a trusted proxy", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
				o.Limits.MaxConnsPerClient = 1
				o.Limits.TrustedProxies = []string{"127.0.0.1"}
			})
			req := func(client string) string {
				r := handshakeRequest("/")
				return strings.Replace(r, "\r\n\r\n", "\r\nX-Forwarded-For: "+client+"\r\n\r\n", 1)
			}
			var keep []*rawClient
			for _, client := range []string{"198.51.100.1", "198.51.100.2"} { // two clients through one proxy
				rc := ts.dialRaw()
				rc.write([]byte(req(client)))
				rc.expectUpgrade()
				keep = append(keep, rc)
			}
			rc := ts.dialRaw()
			rc.write([]byte(req("198.51.100.1"))) // the first client again
			resp, _ := rc.readResponse()
			if resp.StatusCode != 429 {
				t.Fatalf("a second connection of one client behind the proxy: %d, want 429", resp.StatusCode)
			}
			for _, k := range keep {
				k.c.Close()
			}
			ts.finish()
		})
	})
}
