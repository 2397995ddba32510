package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// TestConnSize holds the idle state to 88 bytes on 64-bit platforms: with
// the engine core's 20 bytes of its own (fd, slot, generation, timer,
// flags), an idle connection costs 112 bytes in its loop's connection table
// (core.TestConnRecordSize).
func TestConnSize(t *testing.T) {
	budget := uintptr(88)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		budget = 60
	}
	if n := unsafe.Sizeof(Conn{}); n > budget {
		t.Fatalf("unsafe.Sizeof(Conn{}) = %d, budget %d", n, budget)
	} else {
		t.Logf("unsafe.Sizeof(Conn{}) = %d", n)
	}
}

// echoHandler sends every message back; it is allocation-free.
type echoHandler struct{}

func (echoHandler) OnOpen(*Conn)                             {}
func (echoHandler) OnMessage(c *Conn, op Opcode, p []byte)   { _ = c.Send(op, p) }
func (echoHandler) OnClose(*Conn, StatusCode, string, error) {}

// TestEchoAllocs: Feed of a complete frame -> OnMessage -> Send of the same
// payload allocates nothing, in both roles, for small and medium messages
// and for a message that arrives split over two Feeds.
func TestEchoAllocs(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		for _, n := range []int{16, 1000, 20000} {
			for _, split := range []bool{false, true} {
				c, ft := openConn(t, &Config{}, role, echoHandler{})
				frame := encodeFrames([]tframe{bin(pattern(n))}, role == Server, newRng())
				in := make([]byte, len(frame))
				ft.out = make([]byte, 0, 2*len(frame)+64)
				allocs := testing.AllocsPerRun(200, func() {
					copy(in, frame) // Feed unmasks in place
					ft.out = ft.out[:0]
					if split {
						c.Feed(in[:len(in)/2], t0)
						c.Feed(in[len(in)/2:], t0)
					} else {
						c.Feed(in, t0)
					}
				})
				got, err := decodeFrames(ft.out, role == Client)
				if err != nil || len(got) != 1 || !bytes.Equal(got[0].payload, pattern(n)) {
					t.Fatalf("%v %d: echo wrong: %v %v", role, n, got, err)
				}
				if allocs != 0 && !raceEnabled {
					t.Errorf("%v role, %d bytes, split %v: %v allocs per echoed message, want 0", role, n, split, allocs)
				}
				if c.buf != nil {
					t.Errorf("%v role: buffer held after the message", role)
				}
			}
		}
	}
}

func BenchmarkEcho(b *testing.B) {
	c, ft := openConn(b, &Config{}, Server, echoHandler{})
	frame := encodeFrames([]tframe{bin(pattern(64))}, true, newRng())
	in := make([]byte, len(frame))
	ft.out = make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		copy(in, frame)
		ft.out = ft.out[:0]
		c.Feed(in, t0)
	}
}

// ---- Server handshake ----

func TestServerHandshakeSplitEverywhere(t *testing.T) {
	req := []byte(upgradeRequest("Sec-WebSocket-Protocol: chat, superchat\r\n"))
	frames := encodeFrames([]tframe{txt("hello"), ping("p")}, true, newRng())
	in := append(append([]byte{}, req...), frames...)
	for split := 0; split <= len(in); split++ {
		rec := &recorder{echo: true}
		cfg := &Config{Handler: rec, Protocols: []string{"superchat", "chat"}}
		c := &tconn{}
		ft := &fakeTransport{conn: c}
		c.Init(cfg, ft, t0)
		buf := append([]byte{}, in...)
		if split > 0 {
			c.Feed(buf[:split], t0)
		}
		c.Feed(buf[split:], t0)
		resp, rest, ok := bytes.Cut(ft.out, []byte("\r\n\r\n"))
		if !ok || !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("split %d: response %q", split, ft.out)
		}
		if !bytes.Contains(resp, []byte("Sec-WebSocket-Accept: "+acceptFor(testKey))) {
			t.Fatalf("split %d: no accept in %q", split, resp)
		}
		if !bytes.Contains(resp, []byte("Sec-WebSocket-Protocol: superchat")) || c.Subprotocol() != "superchat" {
			t.Fatalf("split %d: subprotocol %q in %q", split, c.Subprotocol(), resp)
		}
		got, err := decodeFrames(rest, false)
		if err != nil || len(got) != 2 || string(got[0].payload) != "hello" || got[1].op != opPong {
			t.Fatalf("split %d: frames behind the request lost: %v %v", split, got, err)
		}
		if c.buf != nil {
			t.Fatalf("split %d: buffer held after the handshake", split)
		}
	}
}

func TestServerHandshakeByteByByte(t *testing.T) {
	rec := &recorder{}
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(&Config{Handler: rec}, ft, t0)
	for _, b := range []byte(upgradeRequest("")) {
		c.Feed([]byte{b}, t0)
	}
	if c.State() != StateOpen || len(rec.events) != 1 || rec.events[0] != "open" {
		t.Fatalf("state %v events %v", c.State(), rec.events)
	}
}

// httpStatus returns the status code of the response in out.
func httpStatus(out []byte) string {
	line, _, _ := bytes.Cut(out, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

func serverResponse(t *testing.T, cfg *Config, req string) (*tconn, *fakeTransport) {
	t.Helper()
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(cfg, ft, t0)
	c.Feed([]byte(req), t0)
	return c, ft
}

func TestServerHandshakeErrors(t *testing.T) {
	big := upgradeRequest("X-Big: " + strings.Repeat("a", 9000) + "\r\n")
	cases := []struct {
		name, req, status, header string
	}{
		{"no upgrade, no HTTP handler", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "426", "Upgrade: websocket"},
		{"head too large", big, "431", ""},
		{"bad key", strings.Replace(upgradeRequest(""), testKey, "short", 1), "400", ""},
		{"post", strings.Replace(upgradeRequest(""), "GET", "POST", 1), "405", ""},
		{"version 8", strings.Replace(upgradeRequest(""), "Version: 13", "Version: 8", 1), "426", "Sec-WebSocket-Version: 13"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "400", ""},
	}
	for _, tc := range cases {
		rec := &recorder{}
		for _, bytewise := range []bool{false, true} {
			c := &tconn{}
			ft := &fakeTransport{conn: c}
			c.Init(&Config{Handler: rec}, ft, t0)
			if bytewise {
				for i := range len(tc.req) {
					c.Feed([]byte{tc.req[i]}, t0)
				}
			} else {
				c.Feed([]byte(tc.req), t0)
			}
			if got := httpStatus(ft.out); got != tc.status {
				t.Errorf("%s (bytewise %v): status %s, want %s: %q", tc.name, bytewise, got, tc.status, ft.out)
			}
			if tc.header != "" && !bytes.Contains(ft.out, []byte(tc.header+"\r\n")) {
				t.Errorf("%s: response lacks %q: %q", tc.name, tc.header, ft.out)
			}
			if ft.closed != 1 || c.State() != StateClosed || c.buf != nil || ft.afterClose != 0 {
				t.Errorf("%s: closed %d state %v buf %v", tc.name, ft.closed, c.State(), c.buf != nil)
			}
		}
		if rec.closes != 0 || len(rec.events) != 0 {
			t.Errorf("%s: handler saw %v for a connection that never opened", tc.name, rec.events)
		}
	}
}

func TestUpgradeHook(t *testing.T) {
	rec := &recorder{}
	other := &recorder{}
	var seen net.Addr // RemoteAddr, read during the call: the Request is not valid after it
	var path, query, origin, host, hdr string
	var protos []string
	cfg := &Config{Handler: rec, Protocols: []string{"a"}, AllowedOrigins: []string{"http://o.example"}, Upgrade: func(r *Request) (Accept, error) {
		seen = r.RemoteAddr()
		path, query, origin, host, hdr, protos = r.Path(), r.RawQuery(), r.Origin(), r.Host(), r.Header("x-token"), r.Protocols()
		switch r.Header("X-Token") {
		case "secret":
			return Accept{Handler: other, Protocol: "b", Value: 42, Header: []byte("Set-Cookie: s=1\r\n")}, nil
		case "default":
			return Accept{}, nil
		case "wrong-proto":
			return Accept{Protocol: "zzz"}, nil
		case "boom":
			panic("boom")
		case "nope":
			return Accept{}, errors.New("nope")
		}
		return Accept{}, &RejectError{Status: 401, Message: "who are you", Header: "WWW-Authenticate: Basic"}
	}}
	stats := &Stats{}
	cfg.Stats = stats
	req := func(token string) string {
		return upgradeRequest("Origin: http://o.example\r\nSec-WebSocket-Protocol: a, b\r\nX-Token: " + token + "\r\n")
	}

	c, ft := serverResponse(t, cfg, req("secret"))
	if httpStatus(ft.out) != "101" || !bytes.Contains(ft.out, []byte("Set-Cookie: s=1\r\n")) || !bytes.Contains(ft.out, []byte("Sec-WebSocket-Protocol: b\r\n")) {
		t.Fatalf("accept: %q", ft.out)
	}
	if c.Value() != 42 || c.Subprotocol() != "b" || len(other.events) != 1 || len(rec.events) != 0 {
		t.Fatalf("accept: value %v proto %q events %v %v", c.Value(), c.Subprotocol(), other.events, rec.events)
	}
	if seen == nil || path != "/chat" || query != "x=1" || origin != "http://o.example" || host != "example.com" || hdr != "secret" ||
		strings.Join(protos, ",") != "a,b" {
		t.Fatalf("request seen: %q %q %q %q %q %v", path, query, origin, host, hdr, protos)
	}

	c, ft = serverResponse(t, cfg, req("default"))
	if httpStatus(ft.out) != "101" || c.Subprotocol() != "a" || len(rec.events) != 1 {
		t.Fatalf("default: %q proto %q", ft.out, c.Subprotocol())
	}
	for token, status := range map[string]string{"": "401", "nope": "403", "boom": "500", "wrong-proto": "500"} {
		c, ft = serverResponse(t, cfg, req(token))
		if httpStatus(ft.out) != status || ft.closed != 1 || c.State() != StateClosed {
			t.Errorf("token %q: %q closed %d, want %s", token, ft.out, ft.closed, status)
		}
		if token == "" && !bytes.Contains(ft.out, []byte("WWW-Authenticate: Basic\r\n")) {
			t.Errorf("reject header missing: %q", ft.out)
		}
	}
	if stats.Panics.Load() != 1 || stats.Opened.Load() != 2 {
		t.Errorf("stats: panics %d opened %d", stats.Panics.Load(), stats.Opened.Load())
	}
}

func TestNoHandler(t *testing.T) {
	_, ft := serverResponse(t, &Config{}, upgradeRequest(""))
	if httpStatus(ft.out) != "500" || ft.closed != 1 {
		t.Fatalf("%q", ft.out)
	}
}

func TestHTTPHandOff(t *testing.T) {
	var got *Conn
	var hr any
	cfg := &Config{Handler: &recorder{}, HTTP: func(c *Conn, r *Request) {
		got = c
		req, err := r.HTTPRequest()
		if err != nil {
			t.Fatal(err)
		}
		hr = req
	}}
	in := "GET /static/x.js?v=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
	c, ft := serverResponse(t, cfg, in+"trailing bytes")
	if got != &c.Conn || c.State() != StateHTTP || len(ft.out) != 0 || ft.closed != 0 {
		t.Fatalf("hand-off: state %v out %q", c.State(), ft.out)
	}
	if hr == nil {
		t.Fatal("no http.Request")
	}
	c.Feed([]byte("more input is ignored"), t0)
	if len(ft.out) != 0 {
		t.Fatalf("input in StateHTTP caused %q", ft.out)
	}
	if err := c.Send(Text, []byte("x")); err != ErrClosed {
		t.Fatalf("Send in StateHTTP: %v", err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	if err := c.WriteHTTP(resp); err != nil {
		t.Fatal(err)
	}
	if err := c.EndHTTP(false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ft.out, resp) || ft.closed != 1 || c.State() != StateClosed {
		t.Fatalf("WriteHTTP: out %q closed %d state %v", ft.out, ft.closed, c.State())
	}
	if err := c.WriteHTTP(resp); err != ErrClosed {
		t.Fatalf("second WriteHTTP: %v", err)
	}
}

func TestHTTPRequest(t *testing.T) {
	var r *Request
	cfg := &Config{HTTP: func(c *Conn, req *Request) { r = req; checkHTTPRequest(t, req) }}
	serverResponse(t, cfg, "POST /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n")
	if r == nil {
		t.Fatal("HTTP hook not called")
	}
}

func checkHTTPRequest(t *testing.T, r *Request) {
	hr, err := r.HTTPRequest()
	if err != nil {
		t.Fatal(err)
	}
	if hr.Method != "POST" || hr.URL.Path != "/a/b" || hr.URL.RawQuery != "x=1&y=2" || hr.RequestURI != "/a/b?x=1&y=2" ||
		hr.Proto != "HTTP/1.1" || hr.ProtoMajor != 1 || hr.ProtoMinor != 1 || hr.Host != "example.com:8080" ||
		hr.RemoteAddr != "127.0.0.1:40000" || hr.Header.Get("Content-Type") != "text/plain" ||
		strings.Join(hr.Header.Values("X-Multi"), ",") != "1,2" || hr.Body == nil {
		t.Fatalf("http.Request: %+v", hr)
	}
	if q := r.Query(); q.Get("y") != "2" || r.RawQuery() != "x=1&y=2" || r.Path() != "/a/b" {
		t.Fatalf("query %v", q)
	}
}

func TestHTTPHandlerPanic(t *testing.T) {
	stats := &Stats{}
	cfg := &Config{Stats: stats, HTTP: func(c *Conn, r *Request) { panic("x") }}
	c, ft := serverResponse(t, cfg, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if httpStatus(ft.out) != "500" || ft.closed != 1 || c.State() != StateClosed || stats.Panics.Load() != 1 {
		t.Fatalf("%q", ft.out)
	}
}

// ---- Client handshake ----

func TestClientHandshake(t *testing.T) {
	frames := encodeFrames([]tframe{txt("hello")}, false, newRng())
	for split := 0; ; split++ {
		rec := &recorder{}
		c := &tconn{}
		ft := &fakeTransport{conn: c}
		r := &ClientRequest{Host: "example.com", Path: "/chat", Origin: "http://o", Protocols: []string{"v2", "v1"}}
		c.InitClient(&Config{}, ft, r, rec, t0)
		req := string(ft.out)
		if !strings.HasPrefix(req, "GET /chat HTTP/1.1\r\n") || !strings.Contains(req, "Sec-WebSocket-Protocol: v2, v1") && !strings.Contains(req, "Sec-WebSocket-Protocol: v2,v1") {
			t.Fatalf("request %q", req)
		}
		in := []byte(switchingResponse(keyOf(t, ft.out), "Sec-WebSocket-Protocol: v1\r\n"))
		in = append(in, frames...)
		if split > len(in) {
			break
		}
		ft.out = ft.out[:0]
		c.Feed(in[:split], t0)
		c.Feed(in[split:], t0)
		if c.State() != StateOpen || c.Subprotocol() != "v1" || strings.Join(rec.events, " ") != "open msg:1:5" {
			t.Fatalf("split %d: state %v proto %q events %v", split, c.State(), c.Subprotocol(), rec.events)
		}
		if c.buf != nil {
			t.Fatalf("split %d: buffer held", split)
		}
	}
}

func TestClientHandshakeFailures(t *testing.T) {
	cases := map[string]func(key string) string{
		"wrong accept": func(key string) string { return switchingResponse("AAAAAAAAAAAAAAAAAAAAAA==", "") },
		"status 403":   func(string) string { return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" },
		"not http":     func(string) string { return "SSH-2.0-OpenSSH\r\n\r\n" },
		"unoffered subprotocol": func(key string) string {
			return switchingResponse(key, "Sec-WebSocket-Protocol: other\r\n")
		},
	}
	for name, resp := range cases {
		rec := &recorder{}
		c := &tconn{}
		ft := &fakeTransport{conn: c}
		c.InitClient(&Config{}, ft, &ClientRequest{Host: "h", Protocols: []string{"v1"}}, rec, t0)
		c.Feed([]byte(resp(keyOf(t, ft.out))), t0)
		var he *HandshakeError
		if rec.closes != 1 || rec.code != StatusAbnormal || !errors.As(rec.err, &he) || ft.closed != 1 || c.State() != StateClosed || c.buf != nil {
			t.Fatalf("%s: OnClose %d (%d, %v), closed %d, state %v", name, rec.closes, rec.code, rec.err, ft.closed, c.State())
		}
		if name == "status 403" && he.Status != 403 {
			t.Fatalf("status %d", he.Status)
		}
		if len(rec.events) != 1 {
			t.Fatalf("%s: events %v", name, rec.events)
		}
	}
}

func TestClientTransportClosedDuringHandshake(t *testing.T) {
	rec := &recorder{}
	c := &tconn{}
	ft := &fakeTransport{}
	c.InitClient(&Config{}, ft, &ClientRequest{Host: "h"}, rec, t0)
	c.Feed([]byte("HTTP/1.1 101 Swi"), t0)
	c.TransportClosed(errors.New("reset"))
	if rec.closes != 1 || rec.code != StatusAbnormal || rec.err == nil || c.buf != nil {
		t.Fatalf("OnClose %d (%d, %v) buf %v", rec.closes, rec.code, rec.err, c.buf != nil)
	}
}

// ---- Timers ----

const sec = int64(time.Second)

func TestHandshakeDeadline(t *testing.T) {
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(&Config{}, ft, t0)
	if ft.timer != t0+10*sec {
		t.Fatalf("timer %d, want %d", ft.timer, t0+10*sec)
	}
	c.Feed([]byte("GET / HT"), t0+sec)
	c.Tick(t0 + 5*sec) // early tick: re-armed, nothing else
	if ft.closed != 0 || ft.timer != t0+10*sec {
		t.Fatalf("early tick: closed %d timer %d", ft.closed, ft.timer)
	}
	c.Tick(t0 + 10*sec)
	if ft.closed != 1 || c.State() != StateClosed || c.buf != nil {
		t.Fatalf("deadline: closed %d state %v", ft.closed, c.State())
	}

	// Client: the handshake deadline reports a HandshakeError.
	rec := &recorder{}
	c = &tconn{}
	ft = &fakeTransport{conn: c}
	c.InitClient(&Config{HandshakeTimeout: 3 * time.Second}, ft, &ClientRequest{Host: "h"}, rec, t0)
	if ft.timer != t0+3*sec {
		t.Fatalf("client timer %d", ft.timer)
	}
	c.Tick(t0 + 3*sec)
	var he *HandshakeError
	if ft.closed != 1 || rec.closes != 1 || !errors.As(rec.err, &he) {
		t.Fatalf("client deadline: closed %d OnClose %d %v", ft.closed, rec.closes, rec.err)
	}
}

func TestPingAndPongTimeout(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		rec := &recorder{}
		cfg := &Config{PingInterval: 30 * time.Second, PongTimeout: 5 * time.Second}
		c, ft := openConn(t, cfg, role, rec)
		if ft.timer != t0+30*sec {
			t.Fatalf("%v: timer %d, want ping at +30s", role, ft.timer)
		}
		// Input at +20s moves the ping: the +30s tick re-arms for +50s.
		c.Feed(encodeFrames([]tframe{pong("")}, role == Server, newRng()), t0+20*sec)
		c.Tick(t0 + 30*sec)
		if len(ft.out) != 0 || ft.timer != t0+50*sec {
			t.Fatalf("%v: early tick wrote %q, timer %d", role, ft.out, ft.timer)
		}
		c.Tick(t0 + 50*sec)
		fs, err := decodeFrames(ft.out, role == Client)
		if err != nil || len(fs) != 1 || fs[0].op != opPing || len(fs[0].payload) != 0 {
			t.Fatalf("%v: ping %v %v", role, fs, err)
		}
		if role == Server && !bytes.Equal(ft.out, ws.CompiledPing) {
			t.Fatalf("server ping %x, want the shared compiled frame", ft.out)
		}
		if ft.timer != t0+55*sec {
			t.Fatalf("%v: pong deadline timer %d", role, ft.timer)
		}
		// An answer clears the deadline.
		c.Feed(encodeFrames([]tframe{pong("")}, role == Server, newRng()), t0+51*sec)
		c.Tick(t0 + 55*sec)
		if ft.closed != 0 || ft.timer != t0+81*sec {
			t.Fatalf("%v: after pong: closed %d timer %d", role, ft.closed, ft.timer)
		}
		// No answer: closed at the pong deadline.
		ft.out = ft.out[:0]
		c.Tick(t0 + 81*sec)
		if len(ft.out) == 0 || ft.timer != t0+86*sec {
			t.Fatalf("%v: second ping missing, timer %d", role, ft.timer)
		}
		c.Tick(t0 + 86*sec)
		if ft.closed != 1 || rec.closes != 1 || rec.err != ErrPongTimeout || c.State() != StateClosed {
			t.Fatalf("%v: pong timeout: closed %d OnClose %d %v", role, ft.closed, rec.closes, rec.err)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	rec := &recorder{}
	c, ft := openConn(t, &Config{IdleTimeout: 60 * time.Second, CloseTimeout: 2 * time.Second, PingInterval: -1}, Server, rec)
	if ft.timer != t0+60*sec {
		t.Fatalf("timer %d", ft.timer)
	}
	c.Tick(t0 + 60*sec)
	fs, _ := decodeFrames(ft.out, false)
	if len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != 1001 || c.State() != StateClosing {
		t.Fatalf("idle close: %v state %v", fs, c.State())
	}
	if ft.timer != t0+62*sec {
		t.Fatalf("close timer %d", ft.timer)
	}
	c.Tick(t0 + 62*sec)
	if ft.closed != 1 || rec.err != ErrCloseTimeout || rec.code != StatusAbnormal {
		t.Fatalf("close timeout: closed %d err %v", ft.closed, rec.err)
	}
}

func TestCloseHandshakeLocal(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		for _, reply := range []bool{true, false} {
			rec := &recorder{}
			c, ft := openConn(t, &Config{}, role, rec)
			// From a Handle task (outside Feed/Tick): the deadline counts from the task.
			if err := c.Close(StatusNormal, "bye"); err != nil {
				t.Fatal(err)
			}
			fs, _ := decodeFrames(ft.out, role == Client)
			if len(fs) != 1 || !bytes.Equal(fs[0].payload, append([]byte{3, 232}, "bye"...)) || c.State() != StateClosing {
				t.Fatalf("close frame %v", fs)
			}
			if ft.timer != t0+5*sec {
				t.Fatalf("timer %d, want the close deadline %d", ft.timer, t0+5*sec)
			}
			c.Tick(t0 + sec) // early: the deadline stays
			if ft.timer != t0+5*sec {
				t.Fatalf("close deadline %d, want %d", ft.timer, t0+5*sec)
			}
			if err := c.Send(Text, []byte("x")); err != ErrClosed {
				t.Fatalf("Send after Close: %v", err)
			}
			if err := c.Close(StatusNormal, ""); err != ErrClosed {
				t.Fatalf("second Close: %v", err)
			}
			// Data from the peer is discarded while closing, pings unanswered.
			before := len(ft.out)
			c.Feed(encodeFrames([]tframe{txt("late"), ping("late")}, role == Server, newRng()), t0+2*sec)
			if len(rec.msgs) != 0 || len(ft.out) != before {
				t.Fatalf("data delivered or answered while closing")
			}
			if reply {
				c.Feed(encodeFrames([]tframe{closeF(1000, "ok")}, role == Server, newRng()), t0+3*sec)
				if len(ft.out) != before || rec.code != 1000 || rec.reason != "ok" || rec.err != nil {
					t.Fatalf("%v: reply: wrote %d more, OnClose(%d %q %v)", role, len(ft.out)-before, rec.code, rec.reason, rec.err)
				}
				wantClosed := 1
				if role == Client {
					wantClosed = 0
				}
				if ft.closed != wantClosed {
					t.Fatalf("%v: closed %d", role, ft.closed)
				}
				if role == Client {
					c.Tick(t0 + 6*sec) // the server did not close: the client does
					if ft.closed != 1 || rec.closes != 1 {
						t.Fatalf("client close wait: closed %d OnClose %d", ft.closed, rec.closes)
					}
				}
			} else {
				c.Tick(t0 + 6*sec)
				if ft.closed != 1 || rec.err != ErrCloseTimeout || rec.closes != 1 {
					t.Fatalf("timeout: closed %d err %v", ft.closed, rec.err)
				}
			}
			if len(ft.out) != before || c.State() != StateClosed || c.buf != nil {
				t.Fatalf("%v reply %v: state %v", role, reply, c.State())
			}
		}
	}
}

func TestCloseFromHandler(t *testing.T) {
	rec := &recorder{onMessage: func(c *Conn, op Opcode, p []byte) { _ = c.Close(4000, "done") }}
	c, ft := openConn(t, &Config{CloseTimeout: time.Second}, Server, rec)
	c.Feed(encodeFrames([]tframe{txt("a"), txt("b")}, true, newRng()), t0+sec)
	fs, _ := decodeFrames(ft.out, false)
	if len(fs) != 1 || fs[0].op != opClose || len(rec.msgs) != 1 {
		t.Fatalf("wrote %v, delivered %d", fs, len(rec.msgs))
	}
	if ft.timer != t0+2*sec {
		t.Fatalf("close deadline %d", ft.timer)
	}
	if err := c.Close(1000, ""); err != ErrClosed {
		t.Fatal(err)
	}
	c2, _ := openConn(t, &Config{}, Server, &recorder{})
	if err := c2.Close(1005+1, ""); err != ErrInvalidCloseCode {
		t.Fatalf("invalid code: %v", err)
	}
}

// ---- Sending ----

func TestSendErrors(t *testing.T) {
	c, ft := openConn(t, &Config{}, Server, &recorder{})
	if err := c.Send(Opcode(9), nil); err != ErrOpcode {
		t.Fatal(err)
	}
	if err := c.Ping(make([]byte, 126)); err != ErrControlTooLong {
		t.Fatal(err)
	}
	if err := c.Ping([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	fs, _ := decodeFrames(ft.out, false)
	if len(fs) != 1 || fs[0].op != opPing || string(fs[0].payload) != "hi" {
		t.Fatalf("ping %v", fs)
	}
	c.TransportClosed(nil)
	if err := c.Send(Text, nil); err != ErrClosed {
		t.Fatal(err)
	}
	if err := c.Ping(nil); err != ErrClosed {
		t.Fatal(err)
	}
}

func TestClientSendMasksACopy(t *testing.T) {
	for _, n := range []int{0, 10, 125, 70000, 200000} {
		c, ft := openConn(t, &Config{}, Client, &recorder{})
		p := pattern(n)
		orig := append([]byte{}, p...)
		if err := c.Send(Binary, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, orig) {
			t.Fatalf("%d: caller's payload modified", n)
		}
		fs, err := decodeFrames(ft.out, true)
		if err != nil || len(fs) != 1 || !bytes.Equal(fs[0].payload, orig) {
			t.Fatalf("%d: %v %v", n, len(fs), err)
		}
	}
}

func TestServerSendLarge(t *testing.T) {
	c, ft := openConn(t, &Config{}, Server, &recorder{})
	p := pattern(100000)
	if err := c.Send(Binary, p); err != nil {
		t.Fatal(err)
	}
	fs, err := decodeFrames(ft.out, false)
	if err != nil || len(fs) != 1 || !bytes.Equal(fs[0].payload, p) {
		t.Fatal(err)
	}
}

func TestSendPrepared(t *testing.T) {
	m := NewPrepared(Text, []byte("news"))
	c, ft := openConn(t, &Config{}, Server, &recorder{})
	if err := c.SendPrepared(m); err != nil || !bytes.Equal(ft.out, m.Frame()) {
		t.Fatalf("server: %v %x", err, ft.out)
	}
	c, ft = openConn(t, &Config{}, Client, &recorder{})
	if err := c.SendPrepared(m); err != nil {
		t.Fatal(err)
	}
	fs, err := decodeFrames(ft.out, true)
	if err != nil || len(fs) != 1 || string(fs[0].payload) != "news" || fs[0].op != opText {
		t.Fatalf("client: %v %v", fs, err)
	}
}

func TestOverflow(t *testing.T) {
	for _, pol := range []Overflow{OverflowError, OverflowDrop, OverflowClose1008, OverflowClose1013} {
		stats := &Stats{}
		rec := &recorder{}
		c, ft := openConn(t, &Config{HighWater: 1000, Overflow: pol, Stats: stats}, Server, rec)
		ft.buffered = 999 // under the mark: admitted, though it crosses it
		if err := c.Send(Binary, pattern(10)); err != nil {
			t.Fatal(err)
		}
		ft.buffered = 1000 // at the mark: refused
		n := len(ft.out)
		err := c.Send(Binary, pattern(10))
		switch pol {
		case OverflowError:
			if err != ErrBackpressure || len(ft.out) != n {
				t.Fatalf("error policy: %v wrote %d", err, len(ft.out)-n)
			}
		case OverflowDrop:
			if err != ErrDropped || len(ft.out) != n || stats.Dropped.Load() != 1 {
				t.Fatalf("drop policy: %v wrote %d dropped %d", err, len(ft.out)-n, stats.Dropped.Load())
			}
		default:
			code := uint16(1008)
			if pol == OverflowClose1013 {
				code = 1013
			}
			fs, _ := decodeFrames(ft.out[n:], false)
			if err != ErrClosed || len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != code ||
				c.State() != StateClosing || stats.SlowClosed.Load() != 1 {
				t.Fatalf("close policy: %v %v state %v", err, fs, c.State())
			}
			continue
		}
		// Nothing waits: a message larger than HighWater is admitted whole.
		ft.buffered = 0
		if err := c.Send(Binary, pattern(5000)); err != nil || len(ft.out) == n {
			t.Fatalf("after drain: %v", err)
		}
	}
}

// The bytes of the call itself count: a third large Send in one task is
// refused once the first two have crossed the mark.
func TestOverflowWithinOneCall(t *testing.T) {
	c, _ := openConn(t, &Config{HighWater: 1000, Overflow: OverflowError}, Server, &recorder{})
	var errs [3]error
	c.do(func(c *Conn) {
		errs[0] = c.Send(Binary, pattern(900))
		errs[1] = c.Send(Binary, pattern(200))
		errs[2] = c.Send(Binary, pattern(10))
	})
	if errs[0] != nil || errs[1] != nil || errs[2] != ErrBackpressure {
		t.Fatalf("sends: %v", errs)
	}
}

// drainRecorder is a recorder that hears OnDrain.
type drainRecorder struct {
	recorder
	drains int
}

func (d *drainRecorder) OnDrain(c *Conn) { d.drains++ }

func TestOnDrain(t *testing.T) {
	rec := &drainRecorder{}
	c, ft := openConn(t, &Config{HighWater: 100, Overflow: OverflowError}, Server, rec)
	c.Drained(t0) // nothing was refused: no OnDrain
	ft.buffered = 100
	if err := c.Send(Text, []byte("x")); err != ErrBackpressure {
		t.Fatal(err)
	}
	ft.buffered = 0
	c.Drained(t0)
	c.Drained(t0) // once per refusal
	if rec.drains != 1 {
		t.Fatalf("OnDrain %d times, want 1", rec.drains)
	}
}

func TestHandlerPanic(t *testing.T) {
	stats := &Stats{}
	rec := &recorder{onMessage: func(*Conn, Opcode, []byte) { panic("bug") }}
	c, ft := openConn(t, &Config{Stats: stats}, Server, rec)
	c.Feed(encodeFrames([]tframe{txt("a"), txt("b")}, true, newRng()), t0)
	fs, _ := decodeFrames(ft.out, false)
	if len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != 1011 {
		t.Fatalf("wrote %v", fs)
	}
	if stats.Panics.Load() != 1 || rec.closes != 1 || rec.code != StatusAbnormal || ft.closed != 1 || len(rec.msgs) != 1 {
		t.Fatalf("panics %d OnClose %d closed %d msgs %d", stats.Panics.Load(), rec.closes, ft.closed, len(rec.msgs))
	}
	if c.State() != StateClosed || c.buf != nil {
		t.Fatal("not closed")
	}
}

func TestStats(t *testing.T) {
	stats := &Stats{}
	c, _ := openConn(t, &Config{Stats: stats}, Server, &recorder{echo: true})
	c.Feed(encodeFrames([]tframe{txt("a"), {fin: true, rsv: 1, op: opText}}, true, newRng()), t0)
	if stats.Opened.Load() != 1 || stats.Messages.Load() != 1 || stats.ProtocolErrors.Load() != 1 || stats.Closed.Load() != 1 {
		t.Fatalf("stats %d %d %d %d", stats.Opened.Load(), stats.Messages.Load(), stats.ProtocolErrors.Load(), stats.Closed.Load())
	}
}

func TestRoleMaskRules(t *testing.T) {
	// A server fails an unmasked frame, a client a masked one.
	for _, role := range []Role{Server, Client} {
		c, ft := openConn(t, &Config{}, role, &recorder{})
		c.Feed(encodeFrames([]tframe{txt("x")}, role == Client, newRng()), t0)
		fs, _ := decodeFrames(ft.out, role == Client)
		if len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != 1002 || ft.closed != 1 {
			t.Fatalf("%v: %v", role, fs)
		}
	}
}

func TestNormalize(t *testing.T) {
	var cfg Config
	cfg.Normalize()
	if cfg.MaxMessage != DefaultMaxMessage || cfg.MaxRequestHeader != DefaultMaxRequestHeader || cfg.HighWater != DefaultHighWater ||
		cfg.HandshakeTimeout != DefaultHandshakeTimeout || cfg.PongTimeout != DefaultPongTimeout || cfg.CloseTimeout != DefaultCloseTimeout ||
		cfg.IdleTimeout != 0 || cfg.PingInterval != DefaultPingInterval || cfg.WriteTimeout != DefaultWriteTimeout {
		t.Fatalf("%+v", cfg)
	}
}

// OnOpen may start the close handshake; the peer's reply may already sit
// behind the request in the same read.
func TestCloseInOnOpen(t *testing.T) {
	rec := &recorder{}
	h := HandlerFuncs{
		Open:  func(c *Conn) { _ = c.Close(StatusNormal, "") },
		Close: rec.OnClose,
	}
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(&Config{Handler: h}, ft, t0)
	in := append([]byte(upgradeRequest("")), encodeFrames([]tframe{txt("ignored"), closeF(1000, "")}, true, newRng())...)
	c.Feed(in, t0)
	_, rest, _ := bytes.Cut(ft.out, []byte("\r\n\r\n"))
	fs, _ := decodeFrames(rest, false)
	if len(fs) != 1 || fs[0].op != opClose || rec.code != 1000 || ft.closed != 1 || c.State() != StateClosed {
		t.Fatalf("wrote %v, OnClose %d, closed %d", fs, rec.code, ft.closed)
	}
}

// Nothing is held between messages: partial headers, partial payloads and
// fragments live in pooled buffers only until their frame or message ends.
func TestNoBufferWhenIdle(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		rec := &recorder{}
		c, _ := openConn(t, &Config{}, role, rec)
		in := encodeFrames([]tframe{frag(opText, false, "hello "), ping("x"), frag(opCont, true, "world")}, role == Server, newRng())
		for i := range in {
			c.Feed(append([]byte{}, in[i]), t0)
		}
		if c.buf != nil || len(rec.msgs) != 1 || string(rec.msgs[0].payload) != "hello world" {
			t.Fatalf("%v: buffer held %v, msgs %v", role, c.buf != nil, rec.msgs)
		}
	}
}

func TestBadCloseReplyWhileClosing(t *testing.T) {
	rec := &recorder{}
	c, ft := openConn(t, &Config{}, Server, rec)
	_ = c.Close(StatusNormal, "")
	n := len(ft.out)
	c.Feed(encodeFrames([]tframe{closeF(1005, "")}, true, newRng()), t0)
	if len(ft.out) != n || ft.closed != 1 || rec.code != StatusAbnormal || rec.err == nil || rec.closes != 1 {
		t.Fatalf("wrote %d more, closed %d, OnClose(%d, %v)", len(ft.out)-n, ft.closed, rec.code, rec.err)
	}
}

// fakeExecutor runs tasks at once on a single connection, as one engine
// call each.
type fakeExecutor struct {
	c    *tconn
	open bool
}

func (x *fakeExecutor) Execute(id uint64, fn func(*Conn), missed func(), cost int) error {
	if x.open && id == 7 {
		x.c.do(fn)
	} else if missed != nil {
		missed()
	}
	return nil
}

func (x *fakeExecutor) ExecuteAll(ids []uint64, fn func(*Conn), cost int) error {
	for _, id := range ids {
		_ = x.Execute(id, fn, nil, cost)
	}
	return nil
}

func (x *fakeExecutor) RemoteAddr(id uint64) net.Addr { return x.c.ft.RemoteAddr(id) }

func TestHandle(t *testing.T) {
	c, ft := openConn(t, &Config{}, Server, &recorder{})
	x := &fakeExecutor{c: c, open: true}
	ft.exec, ft.id = x, 7
	h := NewHandle(x, 7)
	if h.IsZero() || h.ID() != 7 || h.Executor() != Executor(x) || (Handle{}).Do(func(*Conn) {}) != ErrClosed {
		t.Fatal("handle accessors")
	}
	p := []byte("abc")
	_ = h.Send(Text, p)
	p[0] = 'X' // Send copied
	_ = h.SendPrepared(NewPrepared(Binary, []byte("prep")))
	var reported []error
	_ = h.SendReport(Text, []byte("r"), func(err error) { reported = append(reported, err) })
	_ = h.Close(StatusGoingAway, "bye")
	_ = h.SendReport(Text, []byte("late"), func(err error) { reported = append(reported, err) })
	fs, err := decodeFrames(ft.out, false)
	if err != nil || len(fs) != 4 || string(fs[0].payload) != "abc" || string(fs[1].payload) != "prep" ||
		string(fs[2].payload) != "r" || fs[3].op != opClose {
		t.Fatalf("%v %v", fs, err)
	}
	if len(reported) != 2 || reported[0] != nil || reported[1] != ErrClosed {
		t.Fatalf("reports %v", reported)
	}
	x.open = false
	_ = h.SendReport(Text, []byte("gone"), func(err error) { reported = append(reported, err) })
	if len(reported) != 3 || reported[2] != ErrClosed {
		t.Fatalf("report for a gone connection: %v", reported)
	}
	// A close from a task asks for the close deadline at once.
	if ft.timer != t0+int64(DefaultCloseTimeout) {
		t.Fatalf("timer %d", ft.timer)
	}
	var handle Handle
	var addr net.Addr
	c.do(func(cc *Conn) { handle, addr = cc.Handle(), cc.RemoteAddr() })
	c.SetValue("v")
	if c.Value() != "v" || addr == nil || handle != h {
		t.Fatal("value / remote address / handle")
	}
	if c.Conn.Handle() != (Handle{}) || c.Conn.Send(Text, nil) != ErrNotOnLoop {
		t.Fatal("a Conn outside its calls must refuse to act")
	}
}

// Browsers may open connections from the server's own pages only, unless
// Config.AllowedOrigins says otherwise; clients without Origin always may.
// The check comes before the upgrade hook (routing): a foreign page learns
// nothing about which paths exist.
func TestOriginCheck(t *testing.T) {
	listed := []string{" https://App.Example.com/ ", "http://localhost:3000"}
	star := []string{"*"}
	cases := []struct {
		allowed      []string
		origin, host string
		ok           bool
		name         string
	}{
		{nil, "", "127.0.0.1:8080", true, "no Origin: not a browser"},
		{nil, "http://127.0.0.1:8080", "127.0.0.1:8080", true, "same origin"},
		{nil, "https://example.com", "example.com", true, "same origin, https through a proxy"},
		{nil, "http://example.com", "example.com:80", true, "same origin, explicit default port"},
		{nil, "https://example.com:443", "example.com", true, "same origin, origin with default port"},
		{nil, "http://EXAMPLE.com:8080", "example.com:8080", true, "host case"},
		{nil, "http://evil.test", "127.0.0.1:8080", false, "foreign"},
		{nil, "http://example.com.evil.test", "example.com", false, "foreign with our name as a prefix"},
		{nil, "http://127.0.0.1:9999", "127.0.0.1:8080", false, "other port"},
		{nil, "null", "127.0.0.1:8080", false, "opaque origin"},
		{listed, "https://app.example.com", "api.example.com", true, "listed, case-insensitive"},
		{listed, "http://localhost:3000", "127.0.0.1:8080", true, "listed"},
		{listed, "http://localhost:3001", "127.0.0.1:8080", false, "not listed"},
		{listed, "http://app.example.com", "api.example.com", false, "listed with another scheme"},
		{listed, "http://127.0.0.1:8080", "127.0.0.1:8080", true, "same origin still allowed"},
		{star, "http://evil.test", "127.0.0.1:8080", true, "star"},
		{star, "null", "127.0.0.1:8080", true, "star allows null"},
	}
	for _, tc := range cases {
		hooked := false
		cfg := &Config{Handler: &recorder{}, AllowedOrigins: tc.allowed, Upgrade: func(*Request) (Accept, error) {
			hooked = true
			return Accept{}, nil
		}}
		req := strings.Replace(upgradeRequest(""), "Host: example.com", "Host: "+tc.host, 1)
		if tc.origin != "" {
			req = strings.Replace(req, "\r\n\r\n", "\r\nOrigin: "+tc.origin+"\r\n\r\n", 1)
		}
		_, ft := serverResponse(t, cfg, req)
		want := "403"
		if tc.ok {
			want = "101"
		}
		if got := httpStatus(ft.out); got != want || hooked != tc.ok {
			t.Errorf("%s: origin %q host %q: status %s (hook ran %v), want %s", tc.name, tc.origin, tc.host, got, hooked, want)
		}
	}
}

// Keep-alive at the session level: a request with a body split over reads,
// the answer, then the next request pipelined behind the first, served
// once the first is answered; a head and body larger than the limits are
// refused.
func TestHTTPKeepAliveSession(t *testing.T) {
	var bodies []string
	var last *Conn
	cfg := &Config{MaxRequestBody: 10, HTTP: func(c *Conn, r *Request) {
		bodies = append(bodies, r.Path()+":"+string(r.Body()))
		last = c
	}}
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(cfg, ft, t0)
	c.Feed([]byte("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe"), t0)
	c.Feed([]byte("llo"+"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"), t0)
	if strings.Join(bodies, " ") != "/a:hello" || c.State() != StateHTTP || last != &c.Conn {
		t.Fatalf("first request: %v state %v", bodies, c.State())
	}
	if err := c.WriteHTTP([]byte("A")); err != nil {
		t.Fatal(err)
	}
	if err := c.EndHTTP(true); err != nil {
		t.Fatal(err)
	}
	if strings.Join(bodies, " ") != "/a:hello /b:" || c.State() != StateHTTP || ft.closed != 0 {
		t.Fatalf("pipelined request: %v state %v closed %d", bodies, c.State(), ft.closed)
	}
	_ = c.WriteHTTP([]byte("B"))
	_ = c.EndHTTP(true)
	if c.State() != StateHandshake || c.buf != nil || ft.timer != t0+int64(DefaultHandshakeTimeout) {
		t.Fatalf("idle keep-alive: state %v buf %v timer %d", c.State(), c.buf != nil, ft.timer)
	}
	c.Feed([]byte("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"), t0)
	if httpStatus(ft.out[2:]) != "413" || ft.closed != 1 {
		t.Fatalf("body over MaxRequestBody: %q", ft.out)
	}
	// HTTP/1.0 without keep-alive, and Connection: close, end after the answer.
	for _, req := range []string{"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"} {
		c := &tconn{}
		ft := &fakeTransport{conn: c}
		c.Init(cfg, ft, t0)
		c.Feed([]byte(req), t0)
		_ = c.EndHTTP(true)
		if ft.closed != 1 {
			t.Fatalf("%q: kept alive", req)
		}
	}
}
