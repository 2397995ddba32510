package loop_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
)

// refusedWith reads what the server answers a new connection at once: its
// status line, "" when it serves the connection. A TLS server refuses
// without an answer (a plain one would be garbage to a TLS client, and a
// handshake would cost what the limit saves): for it, refusedWith sends a
// ClientHello and returns refusedTLS when the server closes the connection
// at once instead of answering it.
func (ts *testServer) refusedWith(t *testing.T, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ts.tls != nil {
		c.Write(clientHello(t, ts))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, err := io.ReadAll(c)
		if len(b) == 0 && (err == nil || isClosedErr(err)) {
			return refusedTLS // closed (or reset: the ClientHello was never read)
		}
		return ""
	}
	if req != "" {
		c.Write([]byte(req))
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b, _ := io.ReadAll(c)
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}

// refusedTLS is refusedWith's answer for a TLS server that refused.
const refusedTLS = "(closed without an answer)"

// refusal is what refusedWith returns for a refusal with status line s.
func (ts *testServer) refusal(s string) string {
	if ts.tls != nil {
		return refusedTLS
	}
	return s
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
			if got, want := ts.refusedWith(t, ""), ts.refusal("HTTP/1.1 429 Too Many Requests"); got != want {
				t.Fatalf("3rd connection: %q, want %q", got, want)
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
			if got, want := ts.refusedWith(t, ""), ts.refusal("HTTP/1.1 429 Too Many Requests"); got != want {
				t.Fatalf("4th handshake at once: %q, want %q", got, want)
			}
			ts.finish()
		})
		t.Run("handshakes in progress", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.Limits.MaxHandshakes = 2 })
			var slow []*rawClient
			for i := 0; i < 2; i++ { // two that never finish their request
				rc := ts.dialRaw()
				rc.write([]byte("GET / HTTP/1.1\r\n"))
				slow = append(slow, rc)
			}
			waitFor(t, "both in their handshake", func() bool { return ts.srv.Conns() == 2 })
			if got, want := ts.refusedWith(t, ""), ts.refusal("HTTP/1.1 503 Service Unavailable"); got != want {
				t.Fatalf("3rd while 2 handshake: %q, want %q", got, want)
			}
			for _, rc := range slow {
				rc.c.Close()
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
