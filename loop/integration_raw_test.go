package loop_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationHandshake: malformed opening handshakes get the exact HTTP
// status, plain HTTP is served on the same port, an UpgradeFunc can refuse
// and choose a subprotocol; the server closes the TCP connection after every
// refusal and the server keeps serving.
func TestIntegrationHandshake(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.Protocols = []string{"chat.v2", "chat.v1"}
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
				switch r.Path() {
				case "/private":
					return session.Accept{}, &session.RejectError{Status: 401, Message: "who are you", Header: "WWW-Authenticate: Basic"}
				case "/forbidden":
					return session.Accept{}, fmt.Errorf("not today")
				}
				return session.Accept{}, nil
			}
		})
		const upgradeHeaders = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		cases := []struct {
			name, req string
			status    int
			header    string // "Name: value" expected in the response
		}{
			{"missing key", "GET / HTTP/1.1\r\nHost: x\r\n" + upgradeHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 400, ""},
			{"short key", "GET / HTTP/1.1\r\nHost: x\r\n" + upgradeHeaders + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, ""},
			{"version 12", "GET / HTTP/1.1\r\nHost: x\r\n" + upgradeHeaders + "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 12\r\n\r\n", 426, "Sec-WebSocket-Version: 13"},
			{"POST", "POST / HTTP/1.1\r\nHost: x\r\n" + upgradeHeaders + "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", 405, ""},
			{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n" + upgradeHeaders + "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, ""},
			{"missing host", "GET / HTTP/1.1\r\n" + upgradeHeaders + "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, ""},
			{"oversized head", "GET / HTTP/1.1\r\nHost: x\r\n" + upgradeHeaders + "X-Pad: " + strings.Repeat("p", 9000) + "\r\n\r\n", 431, ""},
			{"oversized unfinished head", "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 9000), 431, ""},
			{"garbage", "\x00\x01\x02 garbage \xff\xfe\r\n\r\n", 400, ""},
			{"no HTTP version", "HELLO WORLD\r\n\r\n", 400, ""},
			{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n", 400, ""},
			{"rejected by UpgradeFunc", handshakeRequest("/private"), 401, "WWW-Authenticate: Basic"},
			{"UpgradeFunc error", handshakeRequest("/forbidden"), 403, ""},
			{"another site's page (same-origin by default)", "GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n" + upgradeHeaders + "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 403, ""},
			{"plain GET /healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, ""},
			{"plain GET /nothing", "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, ""},
			{"Upgrade without Connection is plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 404, ""},
		}
		for _, tc := range cases {
			t.Run(subtestName(tc.name), func(t *testing.T) {
				rc := ts.dialRaw()
				rc.t = t
				rc.write([]byte(tc.req))
				resp, _ := rc.readResponse()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d %q, want %d", resp.StatusCode, resp.Status, tc.status)
				}
				if !resp.Close {
					t.Errorf("a %d response without Connection: close, yet the server closes", resp.StatusCode)
				}
				if tc.header != "" {
					name, value, _ := strings.Cut(tc.header, ": ")
					if got := resp.Header.Get(name); got != value {
						t.Errorf("header %s = %q, want %q", name, got, value)
					}
				}
				rc.expectEOF()
			})
		}
		if n := ts.rec.opened(); n != 0 {
			t.Errorf("%d connections opened by refused handshakes", n)
		}

		// Valid variants that browsers and proxies send.
		accepted := []struct{ name, req string }{
			{"Connection list (Firefox)", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"},
			{"case-insensitive names and tokens", "GET / HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\nconnection: UPGRADE\r\nsec-websocket-key: " + testKey + "\r\nsec-websocket-version: 13\r\n\r\n"},
			{"white space around values", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade:   websocket  \r\nConnection:Upgrade\r\nSec-WebSocket-Key:  " + testKey + " \r\nSec-WebSocket-Version: 13\r\n\r\n"},
			{"query string and other headers", "GET /chat?room=1&x=%20 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test\r\nOrigin: http://example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nCookie: a=b\r\n\r\n"},
			{"head just under the limit", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nX-Pad: " + strings.Repeat("p", 7900) + "\r\n\r\n"},
		}
		for _, tc := range accepted {
			t.Run(subtestName(tc.name), func(t *testing.T) {
				rc := ts.dialRaw()
				rc.t = t
				// A frame rides behind the request in the same write.
				rc.write(append([]byte(tc.req), clientFrame(true, opText, []byte(tc.name))...))
				rc.expectUpgrade()
				if op, p := rc.readMessage(); op != opText || string(p) != tc.name {
					t.Fatalf("echo: op %d %q", op, p)
				}
				rc.c.Close()
			})
		}

		// Subprotocols: the server's preference among the client's offers.
		c := ts.dialWS("/", &websocket.DialOptions{Subprotocols: []string{"chat.v1", "chat.v2"}})
		if got := c.Subprotocol(); got != "chat.v2" {
			t.Errorf("negotiated subprotocol %q, want chat.v2", got)
		}
		c.Close(websocket.StatusNormalClosure, "")
		c = ts.dialWS("/", &websocket.DialOptions{Subprotocols: []string{"other"}})
		if got := c.Subprotocol(); got != "" {
			t.Errorf("negotiated subprotocol %q with no common offer, want none", got)
		}
		c.Close(websocket.StatusNormalClosure, "")

		// Browsers always offer permessage-deflate: without compression the
		// server must decline it (no extension in the 101), and a client
		// that asked for it then talks uncompressed.
		rc := ts.dialRaw()
		rc.write([]byte(strings.Replace(handshakeRequest("/"), "\r\n\r\n",
			"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1)))
		if resp := rc.expectUpgrade(); resp.Header.Get("Sec-WebSocket-Extensions") != "" {
			t.Errorf("101 accepted extensions %q; none is supported", resp.Header.Get("Sec-WebSocket-Extensions"))
		}
		rc.c.Close()
		c = ts.dialWS("/", &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		long := []byte(strings.Repeat("compressible ", 1000))
		if err := c.Write(ctx, websocket.MessageText, long); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || !bytes.Equal(p, long) {
			t.Fatalf("echo to a client that offered compression: %v", err)
		}
		c.Close(websocket.StatusNormalClosure, "")

		// The server is still fine after all that.
		rc = ts.openRaw()
		rc.write(clientFrame(true, opText, []byte("still here")))
		if op, p := rc.readMessage(); op != opText || string(p) != "still here" {
			t.Fatalf("echo after refused handshakes: op %d %q", op, p)
		}
		ts.finish()
	})
}

// TestIntegrationHTTPHandler: Options.HTTP answers non-upgrade requests on
// the WebSocket port.
func TestIntegrationHTTPHandler(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		mux := http.NewServeMux()
		mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			fmt.Fprintf(w, "hello %s", r.URL.Query().Get("name"))
		})
		big := payload(4<<20, false, 11)
		mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
		mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("http handler panic requested by the test") })
		slowStarted := make(chan struct{}, 1)
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			slowStarted <- struct{}{}
			<-r.Context().Done() // until Shutdown cancels it
		})
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.HTTP = mux })
		rc := ts.dialRaw()
		rc.write([]byte("GET /hello?name=loop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		resp, body := rc.readResponse()
		if resp.StatusCode != 200 || string(body) != "hello loop" || resp.Header.Get("X-Test") != "yes" || !resp.Close {
			t.Errorf("GET /hello: %d %q X-Test=%q Close=%v, want 200 \"hello loop\" X-Test=yes and Connection: close",
				resp.StatusCode, body, resp.Header.Get("X-Test"), resp.Close)
		}
		rc.expectEOF()
		// HEAD: the head of the GET answer, no body.
		rc = ts.dialRaw()
		rc.write([]byte("HEAD /hello?name=loop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
		head, err := http.ReadResponse(rc.br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatalf("HEAD /hello: %v", err)
		}
		if head.StatusCode != 200 || head.ContentLength != int64(len("hello loop")) {
			t.Errorf("HEAD /hello: %d, Content-Length %d; want 200 and the GET's length %d", head.StatusCode, head.ContentLength, len("hello loop"))
		}
		rc.expectEOF() // and no body bytes before the close
		rc = ts.dialRaw()
		rc.write([]byte("GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		if resp, _ := rc.readResponse(); resp.StatusCode != 404 {
			t.Errorf("GET /missing: %d, want 404 from the mux", resp.StatusCode)
		}
		rc.expectEOF()
		// A 4 MiB body arrives whole before the server closes.
		rc = ts.dialRaw()
		rc.write([]byte("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		if resp, body := rc.readResponse(); resp.StatusCode != 200 || !bytes.Equal(body, big) {
			t.Errorf("GET /big: status %d, body %s", resp.StatusCode, equalOrDescribe(body, big))
		}
		rc.expectEOF()
		// A panicking handler yields a 500 and the server goes on.
		rc = ts.dialRaw()
		rc.write([]byte("GET /panic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		if resp, _ := rc.readResponse(); resp.StatusCode != 500 {
			t.Errorf("GET /panic: %d, want 500", resp.StatusCode)
		}
		rc.expectEOF()
		// The upgrade path still works next to it.
		c := ts.dialWS("/hello", nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || string(p) != "x" {
			t.Fatalf("echo next to the HTTP handler: %q %v", p, err)
		}
		c.Close(websocket.StatusNormalClosure, "")

		// A handler still running at Shutdown is cancelled through its
		// request's context; Shutdown returns and leaves nothing behind.
		slow := ts.dialRaw()
		slow.write([]byte("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
		select {
		case <-slowStarted:
		case <-time.After(waitTimeout):
			t.Fatal("the slow handler never started")
		}
		ts.shutdown()
		// Its answer (whatever it wrote before returning) may or may not
		// have made it out; either way the connection is closed.
		slow.expectEOFOrAnyResponse()
		ts.closeClients()
		ts.checkLeaks()
	})
}

// TestIntegrationProtocol: a raw client breaks the protocol in each way RFC
// 6455 names, and gets the right close code; the server closes TCP after the
// close handshake and goes on serving.
func TestIntegrationProtocol(t *testing.T) {
	const maxMessage = 1000
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), withMaxMessage(maxMessage))
		cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
		ok := payload(maxMessage, false, 1)
		cases := []struct {
			name  string
			input []byte
			code  uint16
		}{
			{"unmasked frame", buildFrame(0x80|opText, false, []byte("hi")), 1002},
			{"reserved opcode 3", clientFrame(true, 0x3, []byte("x")), 1002},
			{"reserved control opcode 11", clientFrame(true, 0xB, nil), 1002},
			{"RSV1 without extension", buildFrame(0x80|0x40|opText, true, []byte("x")), 1002},
			{"fragmented ping", clientFrame(false, opPing, []byte("x")), 1002},
			{"ping over 125 bytes", clientFrame(true, opPing, make([]byte, 126)), 1002},
			{"continuation without start", clientFrame(true, opCont, []byte("x")), 1002},
			{"text inside fragmented message", cat(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))), 1002},
			{"non-minimal length", append([]byte{0x80 | opText, 0x80 | 126, 0, 5, 1, 2, 3, 4}, []byte{'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}...), 1002},
			{"invalid UTF-8 text", clientFrame(true, opText, []byte{'a', 0xff, 'b'}), 1007},
			{"UTF-8 surrogate", clientFrame(true, opText, []byte{0xed, 0xa0, 0x80}), 1007},
			{"truncated UTF-8 at message end", cat(clientFrame(false, opText, []byte("ok")), clientFrame(true, opCont, []byte{0xe2, 0x82})), 1007},
			{"close code 1005 on the wire", clientFrame(true, opClose, closeBody(1005, "")), 1002},
			{"close code 999", clientFrame(true, opClose, closeBody(999, "")), 1002},
			{"close code 1015 on the wire", clientFrame(true, opClose, closeBody(1015, "")), 1002},
			{"close code 5000", clientFrame(true, opClose, closeBody(5000, "")), 1002},
			{"RSV2 on a continuation", cat(clientFrame(false, opText, []byte("a")), buildFrame(0x80|0x20|opCont, true, []byte("b"))), 1002},
			{"code point over U+10FFFF", clientFrame(true, opText, []byte{0xf4, 0x90, 0x80, 0x80}), 1007},
			{"close with 1-byte body", clientFrame(true, opClose, []byte{3}), 1002},
			{"close reason invalid UTF-8", clientFrame(true, opClose, closeBody(1000, "\xff")), 1007},
			{"invalid UTF-8 in a first fragment (fail fast)", clientFrame(false, opText, []byte{'a', 0xc0, 0x80}), 1007},
			{"close over 125 bytes", clientFrame(true, opClose, closeBody(1000, strings.Repeat("r", 124))), 1002},
			{"message over MaxMessage", clientFrame(true, opBinary, payload(maxMessage+1, false, 2)), 1009},
			{"unfinished fragments over MaxMessage", cat(clientFrame(false, opBinary, ok[:600]), clientFrame(false, opCont, payload(401, false, 3))), 1009},
			{"fragments over MaxMessage", cat(clientFrame(false, opBinary, ok[:600]), clientFrame(true, opCont, payload(401, false, 3))), 1009},
		}
		for _, tc := range cases {
			t.Run(subtestName(tc.name), func(t *testing.T) {
				rc := ts.openRaw()
				rc.t = t
				rc.write(tc.input)
				rc.expectClose(tc.code, false)
				ev := rc.serverClose(ts.rec)
				if ev.err == nil {
					// The server failed the connection: OnClose must say why.
					t.Errorf("OnClose(%d, %q, nil): want a non-nil error for a connection failed with %d", ev.code, ev.reason, tc.code)
				}
			})
		}
		// Exactly MaxMessage is fine.
		rc := ts.openRaw()
		rc.write(clientFrame(true, opBinary, ok))
		if op, p := rc.readMessage(); op != opBinary || !bytes.Equal(p, ok) {
			t.Fatalf("message of exactly MaxMessage: op %d, %d bytes", op, len(p))
		}
		if got := ts.stats.ProtocolErrors.Load(); got != uint64(len(cases)) {
			t.Errorf("Stats.ProtocolErrors = %d, want %d", got, len(cases))
		}
		ts.finish()
	})
}

// TestIntegrationControl: ping gets a pong with the same payload, a request
// and a frame in the same write both count, a clean close is echoed and the
// server closes TCP, and a handler panic fails only its own connection.
func TestIntegrationControl(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := echoRecorder()
		echo := rec.message
		rec.message = func(c *session.Conn, op session.Opcode, p []byte) {
			if string(p) == "panic" {
				panic("handler panic requested by the test")
			}
			echo(c, op, p)
		}
		ts := startServer(t, engine, rec, nil)

		t.Run("request_and_frame_in_one_write", func(t *testing.T) {
			rc := ts.dialRaw()
			rc.t = t
			rc.write(append([]byte(handshakeRequest("/")), clientFrame(true, opText, []byte("right behind"))...))
			rc.expectUpgrade()
			if op, p := rc.readMessage(); op != opText || string(p) != "right behind" {
				t.Fatalf("got op %d %q, want the frame sent behind the request echoed", op, p)
			}
			rc.c.Close()
		})

		t.Run("remote_addr", func(t *testing.T) {
			rc := ts.openRaw()
			rc.t = t
			var ci *connInfo
			waitFor(t, "OnOpen of the raw client", func() bool { ci = ts.rec.conn(rc.id); return ci != nil })
			if want := rc.c.LocalAddr().String(); ci.remote != want {
				t.Errorf("Conn.RemoteAddr() in OnOpen = %q, want the client's address %q", ci.remote, want)
			}
			rc.c.Close()
		})

		t.Run("ping_pong", func(t *testing.T) {
			rc := ts.openRaw()
			rc.t = t
			for _, p := range [][]byte{nil, []byte("ping payload"), payload(125, false, 5)} {
				rc.write(clientFrame(true, opPing, p))
				f := rc.mustFrame()
				if f.op != opPong || !f.fin || !bytes.Equal(f.payload, p) {
					t.Fatalf("ping %q: got op %d fin %v %q, want pong with the same payload", trunc(p), f.op, f.fin, trunc(f.payload))
				}
			}
			// A flood of pings in one write: every pong, in order.
			var flood []byte
			for i := 0; i < 500; i++ {
				flood = append(flood, clientFrame(true, opPing, []byte(fmt.Sprint(i)))...)
			}
			rc.write(flood)
			for i := 0; i < 500; i++ {
				f := rc.mustFrame()
				if f.op != opPong || string(f.payload) != fmt.Sprint(i) {
					t.Fatalf("pong %d: op %d %q", i, f.op, f.payload)
				}
			}
			// An unsolicited pong is ignored.
			rc.write(clientFrame(true, opPong, []byte("unsolicited")))
			rc.write(clientFrame(true, opText, []byte("after pong")))
			if op, p := rc.readMessage(); op != opText || string(p) != "after pong" {
				t.Fatalf("got op %d %q after an unsolicited pong", op, p)
			}
			rc.c.Close()
		})

		t.Run("close_1000", func(t *testing.T) {
			rc := ts.openRaw()
			rc.t = t
			rc.write(clientFrame(true, opClose, closeBody(1000, "bye")))
			f := rc.mustFrame()
			if f.op != opClose || len(f.payload) < 2 || f.payload[0] != 0x03 || f.payload[1] != 0xE8 {
				t.Fatalf("got op %d %s, want close 1000 echoed", f.op, describeClose(f.payload))
			}
			// The server closes TCP first (RFC 6455 7.1.1); we never do.
			rc.expectEOF()
			ev := rc.serverClose(ts.rec)
			if ev.code != 1000 || ev.reason != "bye" || ev.err != nil {
				t.Errorf("OnClose(%d, %q, %v), want (1000, \"bye\", nil)", ev.code, ev.reason, ev.err)
			}
		})

		t.Run("close_no_status", func(t *testing.T) {
			rc := ts.openRaw()
			rc.t = t
			rc.write(clientFrame(true, opClose, nil))
			f := rc.mustFrame()
			if f.op != opClose {
				t.Fatalf("got op %d, want a close reply", f.op)
			}
			if len(f.payload) != 0 && !(len(f.payload) >= 2 && f.payload[0] == 0x03 && f.payload[1] == 0xE8) {
				t.Errorf("reply to an empty close: %s, want empty or 1000", describeClose(f.payload))
			}
			rc.expectEOF()
			if ev := rc.serverClose(ts.rec); ev.code != 1005 {
				t.Errorf("OnClose code %d for a close without body, want 1005", ev.code)
			}
		})

		t.Run("handler_panic", func(t *testing.T) {
			other := ts.openRaw()
			other.t = t
			rc := ts.openRaw()
			rc.t = t
			rc.write(clientFrame(true, opText, []byte("panic")))
			rc.expectClose(1011, false)
			other.write(clientFrame(true, opText, []byte("unaffected")))
			if op, p := other.readMessage(); op != opText || string(p) != "unaffected" {
				t.Fatalf("other connection after a panic: op %d %q", op, p)
			}
			// A new connection works too.
			c := ts.openRaw()
			c.t = t
			c.write(clientFrame(true, opBinary, []byte{1, 2, 3}))
			if op, p := c.readMessage(); op != opBinary || !bytes.Equal(p, []byte{1, 2, 3}) {
				t.Fatalf("new connection after a panic: op %d %v", op, p)
			}
			if got := ts.stats.Panics.Load(); got != 1 {
				t.Errorf("Stats.Panics = %d, want 1", got)
			}
			other.c.Close()
			c.c.Close()
		})
		ts.finish()
	})
}
