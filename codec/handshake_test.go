package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// chromeRequest is what Chrome sends for new WebSocket("ws://localhost:8080/chat?room=1").
const chromeRequest = "GET /chat?room=1 HTTP/1.1\r\n" +
	"Host: localhost:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: http://localhost:8080\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\n" +
	"\r\n"

// firefoxRequest carries Firefox's two-token Connection header.
const firefoxRequest = "GET / HTTP/1.1\r\n" +
	"Host: 127.0.0.1:9000\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n" +
	"Accept: */*\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Origin: null\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate\r\n" +
	"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n" +
	"Connection: keep-alive, Upgrade\r\n" +
	"Upgrade: websocket\r\n" +
	"\r\n"

func mustParse(t *testing.T, raw string) *Request {
	t.Helper()
	var req Request
	n, err := ParseRequest([]byte(raw), 0, &req)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if n != len(raw) {
		t.Fatalf("n = %d, want %d", n, len(raw))
	}
	return &req
}

func wantStatus(t *testing.T, err error, status int) *HTTPError {
	t.Helper()
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want *HTTPError %d", err, status)
	}
	if he.Status != status {
		t.Fatalf("status = %d (%s), want %d", he.Status, he.Reason, status)
	}
	return he
}

func TestParseRequestChrome(t *testing.T) {
	req := mustParse(t, chromeRequest)
	checks := []struct{ name, got, want string }{
		{"Method", string(req.Method), "GET"},
		{"Target", string(req.Target), "/chat?room=1"},
		{"Path", string(req.Path), "/chat"},
		{"Query", string(req.Query), "room=1"},
		{"Host", string(req.Host), "localhost:8080"},
		{"Origin", string(req.Origin), "http://localhost:8080"},
		{"Key", string(req.Key), "dGhlIHNhbXBsZSBub25jZQ=="},
		{"Version", string(req.Version), "13"},
		{"Head", string(req.Head), chromeRequest},
		{"Header(user-agent)", string(req.Header("user-agent")), "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
		{"Header(missing)", string(req.Header("X-Missing")), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if req.Major != 1 || req.Minor != 1 {
		t.Errorf("version = %d.%d", req.Major, req.Minor)
	}
	if !req.Upgrade {
		t.Error("Upgrade = false")
	}
	if err := req.CheckUpgrade(); err != nil {
		t.Errorf("CheckUpgrade: %v", err)
	}
	var protos []string
	req.EachProtocol(func(tok []byte) bool { protos = append(protos, string(tok)); return true })
	if strings.Join(protos, "|") != "chat|superchat" {
		t.Errorf("protocols = %q", protos)
	}
	var exts []string
	req.EachExtension(func(name, params []byte) bool {
		exts = append(exts, string(name)+"("+string(params)+")")
		return true
	})
	if strings.Join(exts, "|") != "permessage-deflate(client_max_window_bits)" {
		t.Errorf("extensions = %q", exts)
	}
	var names []string
	req.EachHeader(func(name, value []byte) bool { names = append(names, string(name)); return true })
	if len(names) != 13 || names[0] != "Host" || names[12] != "Sec-WebSocket-Protocol" {
		t.Errorf("EachHeader names = %q", names)
	}
	// Stopping early.
	count := 0
	req.EachHeader(func(name, value []byte) bool { count++; return count < 3 })
	if count != 3 {
		t.Errorf("EachHeader did not stop: %d calls", count)
	}
}

func TestParseRequestFirefox(t *testing.T) {
	req := mustParse(t, firefoxRequest)
	if !req.Upgrade {
		t.Fatal("Upgrade = false for Connection: keep-alive, Upgrade")
	}
	if err := req.CheckUpgrade(); err != nil {
		t.Fatalf("CheckUpgrade: %v", err)
	}
	if string(req.Origin) != "null" || len(req.Query) != 0 || string(req.Path) != "/" {
		t.Fatalf("Origin %q Path %q Query %q", req.Origin, req.Path, req.Query)
	}
}

func TestParseRequestByteByByte(t *testing.T) {
	for _, raw := range []string{chromeRequest, firefoxRequest, strings.ReplaceAll(chromeRequest, "\r\n", "\n")} {
		full := mustParse(t, raw)
		for i := 0; i < len(raw); i++ {
			var req Request
			n, err := ParseRequest([]byte(raw[:i]), 0, &req)
			if n != 0 || err != nil {
				t.Fatalf("prefix %d: n=%d err=%v, want incomplete", i, n, err)
			}
		}
		// Frames right behind the head are not looked at.
		tail := "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58" + "GARBAGE\r\n\r\n"
		buf := []byte(raw + tail)
		var req Request
		n, err := ParseRequest(buf, 0, &req)
		if err != nil || n != len(raw) {
			t.Fatalf("with tail: n=%d err=%v", n, err)
		}
		if string(buf[n:]) != tail {
			t.Fatal("tail modified")
		}
		if string(req.Key) != string(full.Key) || req.Upgrade != full.Upgrade || string(req.Head) != raw {
			t.Fatal("result differs with a tail")
		}
	}
}

func TestParseRequestBareLF(t *testing.T) {
	raw := "GET /x HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n"
	req := mustParse(t, raw)
	if err := req.CheckUpgrade(); err != nil {
		t.Fatal(err)
	}
	// Mixed line endings.
	raw = "GET /x HTTP/1.1\r\nHost: a\n\r\n"
	req = mustParse(t, raw)
	if string(req.Host) != "a" || req.Upgrade {
		t.Fatalf("Host %q Upgrade %v", req.Host, req.Upgrade)
	}
}

func TestParseRequestCaseInsensitive(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nhOsT: h\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n" +
		"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\nORIGIN: o\r\n\r\n"
	req := mustParse(t, raw)
	if !req.Upgrade || string(req.Host) != "h" || string(req.Origin) != "o" || len(req.Key) != 24 || string(req.Version) != "13" {
		t.Fatalf("%+v", req)
	}
	if err := req.CheckUpgrade(); err != nil {
		t.Fatal(err)
	}
}

func TestParseRequestUpgradeTokens(t *testing.T) {
	cases := []struct {
		headers string
		want    bool
	}{
		{"Upgrade: websocket\r\nConnection: Upgrade\r\n", true},
		{"Upgrade: h2c, websocket\r\nConnection: keep-alive , upgrade\r\n", true},
		{"Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n", true},
		{"Upgrade: websocket\r\n", false},
		{"Connection: Upgrade\r\n", false},
		{"Upgrade: websockets\r\nConnection: Upgrade\r\n", false},
		{"Upgrade: websocket\r\nConnection: Upgrades\r\n", false},
		{"Upgrade: websocket\r\nConnection: keep-alive\r\n", false},
		{"Upgrade:websocket\r\nConnection:\tupgrade\t\r\n", true},
	}
	for _, c := range cases {
		req := mustParse(t, "GET / HTTP/1.1\r\nHost: h\r\n"+c.headers+"\r\n")
		if req.Upgrade != c.want {
			t.Errorf("%q: Upgrade = %v, want %v", c.headers, req.Upgrade, c.want)
		}
	}
}

func TestParseRequestPlainHTTP10(t *testing.T) {
	req := mustParse(t, "GET /index.html HTTP/1.0\r\n\r\n")
	if req.Major != 1 || req.Minor != 0 || req.Upgrade {
		t.Fatalf("%+v", req)
	}
	req = mustParse(t, "GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	wantStatus(t, req.CheckUpgrade(), 400)
}

func TestParseRequestTooLarge(t *testing.T) {
	big := "GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 200) + "\r\n\r\n"
	var req Request
	// Complete but over the cap.
	_, err := ParseRequest([]byte(big), 100, &req)
	wantStatus(t, err, 431)
	// Cap hit before the blank line arrived.
	_, err = ParseRequest([]byte(big[:150]), 100, &req)
	wantStatus(t, err, 431)
	// Below the cap and incomplete: wait.
	if n, err := ParseRequest([]byte(big[:99]), 100, &req); n != 0 || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// Exactly at the cap is fine.
	if n, err := ParseRequest([]byte(big), len(big), &req); n != len(big) || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if _, err := ParseRequest([]byte(big), len(big)-1, &req); err == nil {
		t.Fatal("one byte over the cap accepted")
	}
	// Default cap.
	huge := "GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", DefaultMaxRequestHeader) + "\r\n"
	_, err = ParseRequest([]byte(huge), 0, &req)
	wantStatus(t, err, 431)
	_, err = ParseRequest([]byte(huge), -1, &req)
	wantStatus(t, err, 431)
}

func TestParseRequestMalformed(t *testing.T) {
	cases := []struct {
		raw    string
		status int
	}{
		{"\r\n\r\n", 400},
		{"GET\r\n\r\n", 400},
		{"GET /\r\n\r\n", 400},
		{" GET / HTTP/1.1\r\n\r\n", 400},
		{"GET  / HTTP/1.1\r\n\r\n", 400},
		{"G(T / HTTP/1.1\r\n\r\n", 400},
		{"GET /\x01 HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n: h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"GET / HTTP/2.0\r\n\r\n", 505},
		{"GET / HTTP/0.9\r\n\r\n", 505},
		{"GET / HTTP/1.10\r\n\r\n", 505},
		{"GET / FOO/1.1\r\n\r\n", 505},
		{"GET / http/1.1\r\n\r\n", 505},
		{"GET / HTTP/1.1 \r\n\r\n", 505},
		{"GET 1 HTTP/1.1\r\n\r\n", 400}, // found by FuzzParseRequestNetHTTP
		{"GET ?x HTTP/1.1\r\n\r\n", 400},
		{"GET :x HTTP/1.1\r\n\r\n", 400},
		{"GET 1a:/ HTTP/1.1\r\n\r\n", 400},
	}
	for _, c := range cases {
		var req Request
		n, err := ParseRequest([]byte(c.raw), 0, &req)
		if n != 0 {
			t.Errorf("%q: n = %d", c.raw, n)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != c.status {
			t.Errorf("%q: err = %v, want status %d", c.raw, err, c.status)
		}
	}
}

func upgradeRequest(mod func(h map[string]string), method, version string) string {
	h := map[string]string{
		"Host":                  "example.com",
		"Upgrade":               "websocket",
		"Connection":            "Upgrade",
		"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version": "13",
	}
	if mod != nil {
		mod(h)
	}
	var b strings.Builder
	b.WriteString(method + " / " + version + "\r\n")
	for _, k := range []string{"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"} {
		if v, ok := h[k]; ok {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestCheckUpgrade(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		status int
		header string
	}{
		{"ok", upgradeRequest(nil, "GET", "HTTP/1.1"), 0, ""},
		{"POST", upgradeRequest(nil, "POST", "HTTP/1.1"), 405, "Allow: GET"},
		{"get lowercase", upgradeRequest(nil, "get", "HTTP/1.1"), 405, "Allow: GET"},
		{"HTTP/1.0", upgradeRequest(nil, "GET", "HTTP/1.0"), 400, ""},
		{"no Host", upgradeRequest(func(h map[string]string) { delete(h, "Host") }, "GET", "HTTP/1.1"), 400, ""},
		{"empty Host", upgradeRequest(func(h map[string]string) { h["Host"] = "" }, "GET", "HTTP/1.1"), 400, ""},
		{"no key", upgradeRequest(func(h map[string]string) { delete(h, "Sec-WebSocket-Key") }, "GET", "HTTP/1.1"), 400, ""},
		{"short key", upgradeRequest(func(h map[string]string) { h["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZQ==" }, "GET", "HTTP/1.1"), 400, ""},
		{"17-byte key", upgradeRequest(func(h map[string]string) { h["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZTE=" }, "GET", "HTTP/1.1"), 400, ""},
		{"not base64", upgradeRequest(func(h map[string]string) { h["Sec-WebSocket-Key"] = "!!!!!!!!!!!!!!!!!!!!!!==" }, "GET", "HTTP/1.1"), 400, ""},
		{"version 8", upgradeRequest(func(h map[string]string) { h["Sec-WebSocket-Version"] = "8" }, "GET", "HTTP/1.1"), 426, "Sec-WebSocket-Version: 13"},
		{"no version", upgradeRequest(func(h map[string]string) { delete(h, "Sec-WebSocket-Version") }, "GET", "HTTP/1.1"), 426, "Sec-WebSocket-Version: 13"},
		{"not upgrade", upgradeRequest(func(h map[string]string) { delete(h, "Upgrade") }, "GET", "HTTP/1.1"), 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := mustParse(t, c.raw)
			err := req.CheckUpgrade()
			if c.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			he := wantStatus(t, err, c.status)
			if he.Header != c.header {
				t.Fatalf("Header = %q, want %q", he.Header, c.header)
			}
		})
	}
	// A repeated key.
	raw := strings.Replace(upgradeRequest(nil, "GET", "HTTP/1.1"), "\r\n\r\n", "\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n", 1)
	req := mustParse(t, raw)
	if string(req.Key) != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("Key = %q, want the first", req.Key)
	}
	wantStatus(t, req.CheckUpgrade(), 400)
}

func TestAppendAcceptRFCSample(t *testing.T) {
	got := AppendAccept(nil, []byte("dGhlIHNhbXBsZSBub25jZQ=="))
	if string(got) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept = %q", got)
	}
	// Appends, and works for a long key through the slow path.
	got = AppendAccept([]byte("x"), []byte(strings.Repeat("k", 200)))
	if got[0] != 'x' || len(got) != 29 {
		t.Fatalf("accept = %q", got)
	}
}

func TestAppendUpgradeResponse(t *testing.T) {
	got := AppendUpgradeResponse(nil, []byte("dGhlIHNhbXBsZSBub25jZQ=="), "chat", []byte("X-A: 1\r\n"))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nX-A: 1\r\n\r\n"
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = AppendUpgradeResponse(nil, []byte("dGhlIHNhbXBsZSBub25jZQ=="), "", nil)
	if strings.Contains(string(got), "Sec-WebSocket-Protocol") || !strings.HasSuffix(string(got), "xOo=\r\n\r\n") {
		t.Fatalf("got %q", got)
	}
}

func TestAppendErrorResponse(t *testing.T) {
	got := string(AppendErrorResponse(nil, &HTTPError{Status: 426, Reason: "use 13", Header: "Sec-WebSocket-Version: 13"}))
	want := "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\nConnection: close\r\n\r\nuse 13"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// No second Upgrade line when the error carries one.
	got = string(AppendErrorResponse(nil, &HTTPError{Status: 426, Reason: "ws only", Header: "upgrade: websocket"}))
	if strings.Count(strings.ToLower(got), "upgrade: websocket") != 1 {
		t.Fatalf("got %q", got)
	}
	got = string(AppendErrorResponse(nil, &HTTPError{Status: 431, Reason: "big"}))
	want = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: 3\r\nConnection: close\r\n\r\nbig"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = string(AppendErrorResponse(nil, &HTTPError{Status: 405, Reason: "m", Header: "Allow: GET"}))
	if !strings.HasPrefix(got, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n") {
		t.Fatalf("got %q", got)
	}
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	if a == b {
		t.Fatal("two equal keys")
	}
	for _, k := range [][24]byte{a, b} {
		raw, err := base64.StdEncoding.DecodeString(string(k[:]))
		if err != nil || len(raw) != 16 {
			t.Fatalf("key %q: %d bytes, %v", k, len(raw), err)
		}
	}
}

func serverAnswer(t *testing.T, reqBytes []byte, protocol string) []byte {
	t.Helper()
	var req Request
	n, err := ParseRequest(reqBytes, 0, &req)
	if err != nil || n != len(reqBytes) {
		t.Fatalf("server parse: n=%d err=%v", n, err)
	}
	if err := req.CheckUpgrade(); err != nil {
		t.Fatal(err)
	}
	return AppendUpgradeResponse(nil, req.Key, protocol, nil)
}

func TestClientRoundTrip(t *testing.T) {
	key := NewKey()
	cr := &ClientRequest{Host: "127.0.0.1:8080", Path: "/ws?x=1", Origin: "http://o", Protocols: []string{"a", "b"}, Extra: []byte("X-Y: z\r\n")}
	raw := AppendClientRequest(nil, cr, key[:])
	want := "GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + string(key[:]) + "\r\nSec-WebSocket-Version: 13\r\nOrigin: http://o\r\n" +
		"Sec-WebSocket-Protocol: a, b\r\nX-Y: z\r\n\r\n"
	if string(raw) != want {
		t.Fatalf("got %q\nwant %q", raw, want)
	}
	var req Request
	ParseRequest(raw, 0, &req)
	if string(req.Header("x-y")) != "z" || string(req.Origin) != "http://o" {
		t.Fatal("extra headers lost")
	}
	resp := serverAnswer(t, raw, "b")
	frame := []byte("\x81\x02hi")
	buf := append(append([]byte{}, resp...), frame...)
	for i := 0; i < len(resp); i++ {
		var res Response
		if n, err := ParseResponse(buf[:i], 0, key[:], &res); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	var res Response
	n, err := ParseResponse(buf, 0, key[:], &res)
	if err != nil || n != len(resp) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if res.Status != 101 || string(res.Protocol) != "b" || string(res.Head) != string(resp) {
		t.Fatalf("%+v", res)
	}
	if !bytes.Equal(buf[n:], frame) {
		t.Fatal("bytes after the head changed")
	}
	// Default path.
	raw = AppendClientRequest(nil, &ClientRequest{Host: "h"}, key[:])
	if !strings.HasPrefix(string(raw), "GET / HTTP/1.1\r\n") || strings.Contains(string(raw), "Origin") || strings.Contains(string(raw), "Protocol") {
		t.Fatalf("got %q", raw)
	}
}

func TestParseResponseRejects(t *testing.T) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	good := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	var res Response
	if n, err := ParseResponse([]byte(good), 0, key, &res); err != nil || n != len(good) {
		t.Fatalf("good: n=%d err=%v", n, err)
	}
	// Lower case, bare LF and a list in Connection are fine too.
	lax := "HTTP/1.1 101 \nupgrade: WebSocket\nconnection: keep-alive, upgrade\nsec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n\n"
	if n, err := ParseResponse([]byte(lax), 0, key, &res); err != nil || n != len(lax) {
		t.Fatalf("lax: n=%d err=%v", n, err)
	}
	cases := []struct {
		name   string
		raw    string
		status int
	}{
		{"wrong accept", strings.Replace(good, "xOo=", "xOA=", 1), 101},
		{"no accept", strings.Replace(good, "Sec-WebSocket-Accept", "X-Accept", 1), 101},
		{"no upgrade", strings.Replace(good, "Upgrade: websocket\r\n", "", 1), 101},
		{"no connection", strings.Replace(good, "Connection: Upgrade\r\n", "", 1), 101},
		{"folded", strings.Replace(good, "\r\nUpgrade", "\r\n Upgrade", 1), 101},
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403},
		{"200", "HTTP/1.1 200 OK\r\n\r\n", 200},
		{"not http", "SSH-2.0-OpenSSH_9.6\r\n\r\n", 0},
		{"HTTP/1.0", "HTTP/1.0 101 Switching\r\n\r\n", 0},
		{"bad status", "HTTP/1.1 1x1 Switching\r\n\r\n", 0},
		{"status run on", "HTTP/1.1 1011\r\n\r\n", 0},
	}
	for _, c := range cases {
		n, err := ParseResponse([]byte(c.raw), 0, key, &res)
		if n != 0 {
			t.Errorf("%s: n=%d", c.name, n)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != c.status {
			t.Errorf("%s: err=%v, want status %d", c.name, err, c.status)
		}
	}
	// Over the cap.
	long := "HTTP/1.1 101 Switching Protocols\r\nX: " + strings.Repeat("a", 100)
	if _, err := ParseResponse([]byte(long), 64, key, &res); err == nil {
		t.Fatal("response over the cap accepted")
	}
}

func TestEachExtensionQuoted(t *testing.T) {
	req := mustParse(t, "GET / HTTP/1.1\r\nSec-WebSocket-Extensions: foo; a=\"x,y\", bar ;  b=1 ; c \r\n"+
		"Sec-WebSocket-Extensions: , baz\r\nSec-WebSocket-Protocol: p1,,p2\r\nSec-WebSocket-Protocol: p3\r\n\r\n")
	var exts []string
	req.EachExtension(func(name, params []byte) bool {
		exts = append(exts, string(name)+"("+string(params)+")")
		return true
	})
	if got := strings.Join(exts, "|"); got != `foo(a="x,y")|bar(b=1 ; c)|baz()` {
		t.Fatalf("extensions = %s", got)
	}
	var protos []string
	req.EachProtocol(func(tok []byte) bool { protos = append(protos, string(tok)); return len(protos) < 2 })
	if got := strings.Join(protos, "|"); got != "p1|p2" {
		t.Fatalf("protocols = %s (stop after 2)", got)
	}
	protos = nil
	req.EachProtocol(func(tok []byte) bool { protos = append(protos, string(tok)); return true })
	if got := strings.Join(protos, "|"); got != "p1|p2|p3" {
		t.Fatalf("protocols = %s", got)
	}
}

func TestParseRequestTargetForms(t *testing.T) {
	cases := []struct{ target, path, query string }{
		{"/", "/", ""},
		{"/a/b?c=d?e", "/a/b", "c=d?e"},
		{"/?", "/", ""},
		{"http://example.com/chat?x=1", "/chat", "x=1"},
		{"ws://example.com", "/", ""},
		{"wss://example.com?q", "/", "q"},
		{"urn:isbn:123", "isbn:123", ""},
		{"*", "", ""},
	}
	for _, c := range cases {
		req := mustParse(t, "OPTIONS "+c.target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if string(req.Target) != c.target || string(req.Path) != c.path || string(req.Query) != c.query {
			t.Errorf("%q: Path %q Query %q", c.target, req.Path, req.Query)
		}
	}
	req := mustParse(t, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if string(req.Target) != "example.com:443" || req.Path != nil {
		t.Errorf("CONNECT: Target %q Path %q", req.Target, req.Path)
	}
	// Upgrades accept a path or an absolute http(s)/ws(s) URI only.
	for target, ok := range map[string]bool{
		"/chat": true, "http://h/chat": true, "HTTPS://h": true, "ws://h/x?y": true, "wss://h": true,
		"ftp://h/": false, "*": false, "urn:x": false, "http:/x": false,
	} {
		raw := strings.Replace(upgradeRequest(nil, "GET", "HTTP/1.1"), "GET / ", "GET "+target+" ", 1)
		err := mustParse(t, raw).CheckUpgrade()
		if ok && err != nil {
			t.Errorf("%q: %v", target, err)
		}
		if !ok {
			wantStatus(t, err, 400)
		}
	}
}

// A plain request's body framing and connection tokens are read from its
// head; framings that could smuggle a second request are refused.
func TestParseRequestBodyFraming(t *testing.T) {
	head := func(lines string) []byte { return []byte("POST /p HTTP/1.1\r\nHost: h\r\n" + lines + "\r\n") }
	cases := []struct {
		lines             string
		status            int
		length            int64
		close, keep, cont bool
		te                string
	}{
		{"", 0, -1, false, false, false, ""},
		{"Content-Length: 12\r\n", 0, 12, false, false, false, ""},
		{"Content-Length: 12\r\nContent-Length: 12\r\n", 0, 12, false, false, false, ""},
		{"Content-Length: 12\r\nContent-Length: 13\r\n", 400, 0, false, false, false, ""},
		{"Content-Length: -1\r\n", 400, 0, false, false, false, ""},
		{"Content-Length: 1e3\r\n", 400, 0, false, false, false, ""},
		{"Content-Length: 12\r\nTransfer-Encoding: chunked\r\n", 400, 0, false, false, false, ""},
		{"Transfer-Encoding: chunked\r\n", 0, -1, false, false, false, "chunked"},
		{"Connection: close\r\n", 0, -1, true, false, false, ""},
		{"Connection: Keep-Alive\r\n", 0, -1, false, true, false, ""},
		{"Content-Length: 5\r\nExpect: 100-continue\r\n", 0, 5, false, false, true, ""},
	}
	for _, tc := range cases {
		var r Request
		n, err := ParseRequest(head(tc.lines), 0, &r)
		if tc.status != 0 {
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != tc.status {
				t.Errorf("%q: %v, want %d", tc.lines, err, tc.status)
			}
			continue
		}
		if err != nil || n == 0 {
			t.Errorf("%q: n %d err %v", tc.lines, n, err)
			continue
		}
		if r.ContentLength != tc.length || r.Close != tc.close || r.KeepAlive != tc.keep || r.Expect100 != tc.cont || string(r.TransferEncoding) != tc.te {
			t.Errorf("%q: %+v", tc.lines, r)
		}
	}
}

// TestParseRequestRefusesGarbageAtOnce: a request line that cannot become
// valid is refused with 400 as soon as its bytes show it, not after a blank
// line that garbage seldom contains; a valid start waits for more.
func TestParseRequestRefusesGarbageAtOnce(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // 0: incomplete
	}{
		{"\x16\x03\x01\x02\x00\x01", 400}, // a TLS ClientHello on a plain port
		{"\x00", 400},
		{"GE", 0},
		{"GET", 0},
		{"GET ", 0},
		{"GET /ch", 0},
		{"GET /chat HTTP/1", 0},
		{"G(T / HTTP/1.1", 400},
		{" GET / HTTP/1.1", 400},
		{"GET  / HTTP/1.1", 400},
		{"GET /a\x01b", 400},
		{"GET /a\r\n", 400},
		{"GET /a\x7f", 400},
		{"\r\nGET / HTTP/1.1\r\n", 400}, // as a complete head with a leading empty line is
	} {
		var req Request
		n, err := ParseRequest([]byte(tc.in), 0, &req)
		var he *HTTPError
		switch {
		case tc.want == 0 && (n != 0 || err != nil):
			t.Errorf("%q: n=%d err=%v, want incomplete", tc.in, n, err)
		case tc.want != 0 && (!errors.As(err, &he) || he.Status != tc.want):
			t.Errorf("%q: n=%d err=%v, want %d", tc.in, n, err, tc.want)
		}
	}
	// A complete head with the same fault gets the same answer.
	var req Request
	if _, err := ParseRequest([]byte("GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"), 0, &req); err != errRequestLine {
		t.Errorf("complete head: %v, want %v", err, errRequestLine)
	}
}
