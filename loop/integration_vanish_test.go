package loop_test

import (
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationVanish: clients that disappear without a close handshake, at
// awkward moments (mid-frame, with a reset, mid-handshake). The server reports
// each opened one with OnClose(1006) exactly once and holds nothing after.
func TestIntegrationVanish(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// Over TLS the timeout bounds the TLS handshake too, which under the
		// race detector on a busy machine may take longer than 300 ms.
		timeout := 300 * time.Millisecond
		if _, overTLS := splitEngine(engine); overTLS {
			timeout = time.Second
		}
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.HandshakeTimeout = timeout
		})
		// Opened before everything else and checked last: the handshake
		// timeout must not apply once the connection is open.
		longLived := ts.openRaw()
		openedAt := time.Now()

		half := func() []byte {
			f := clientFrame(true, opBinary, payload(200, false, 9))
			return f[:len(f)/2]
		}
		cases := []struct {
			name  string
			reset bool
			send  func(rc *rawClient)
		}{
			{"half frame then FIN", false, func(rc *rawClient) { rc.write(half()) }},
			{"half frame then RST", true, func(rc *rawClient) { rc.write(half()) }},
			{"half header then FIN", false, func(rc *rawClient) { rc.write([]byte{0x82}) }},
			{"mid fragmented message then RST", true, func(rc *rawClient) {
				rc.write(clientFrame(false, opText, []byte("part one")))
			}},
			{"idle then RST", true, func(rc *rawClient) {}},
			{"after an echo then FIN", false, func(rc *rawClient) {
				rc.write(clientFrame(true, opText, []byte("x")))
				rc.readMessage()
			}},
		}
		for _, tc := range cases {
			t.Run(subtestName(tc.name), func(t *testing.T) {
				rc := ts.openRaw()
				rc.t = t
				tc.send(rc)
				if tc.reset {
					rc.reset()
				} else {
					rc.c.Close()
				}
				ev := rc.serverClose(ts.rec)
				if ev.code != session.StatusAbnormal {
					t.Errorf("OnClose code %d, want 1006", ev.code)
				}
			})
		}

		// Vanishing during the handshake: nothing opens, nothing is held.
		rc := ts.dialRaw()
		rc.write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgra"))
		rc.c.Close()
		rc = ts.dialRaw()
		rc.reset()
		// A slow client that never finishes its request is cut off by the
		// handshake timeout (slowloris guard).
		slow := ts.dialRaw()
		slow.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		slow.expectEOFOrResponse()

		// TLS spoken to a plain port: refused at once or at the timeout.
		tlsHello := ts.dialRaw()
		tlsHello.write(append([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}, payload(160, false, 4)...))
		tlsHello.expectEOFOrResponse()

		time.Sleep(time.Until(openedAt.Add(3 * timeout)))
		longLived.write(clientFrame(true, opText, []byte("still open")))
		if op, p := longLived.readMessage(); op != opText || string(p) != "still open" {
			t.Fatalf("a connection open for three handshake timeouts: op %d %q", op, p)
		}
		longLived.c.Close()

		waitFor(t, "Conns() == 0 after every client vanished", func() bool { return ts.srv.Conns() == 0 })
		if n := ts.rec.opened(); n != len(cases)+1 {
			t.Errorf("OnOpen called %d times, want %d", n, len(cases)+1)
		}
		ts.shutdown()
		ts.closeClients()
		ts.checkLeaks()
		if n := ts.rec.closedCount(); n != len(cases)+1 {
			t.Errorf("OnClose called %d times in all, want %d (one per opened connection)", n, len(cases)+1)
		}
	})
}

// expectEOFOrResponse expects the server to give up on a connection: either
// an HTTP error response followed by the close, or just the close.
func (rc *rawClient) expectEOFOrResponse() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := rc.br.Peek(1); err != nil {
		if !isClosedErr(err) {
			rc.t.Fatalf("want the server to close an unfinished handshake, read returned %v", err)
		}
		return
	}
	resp, _ := rc.readResponse()
	if resp.StatusCode < 400 {
		rc.t.Fatalf("unfinished handshake answered with %d", resp.StatusCode)
	}
	rc.expectEOF()
}

// expectEOFOrAnyResponse is expectEOFOrResponse accepting any status.
func (rc *rawClient) expectEOFOrAnyResponse() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := rc.br.Peek(1); err != nil {
		if !isClosedErr(err) {
			rc.t.Fatalf("want the server to close the connection, read returned %v", err)
		}
		return
	}
	rc.readResponse()
	rc.expectEOF()
}
