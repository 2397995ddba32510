package codec

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func FuzzParseHeader(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
		{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4},
		{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0},
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
		{0x89, 0x80, 0, 0, 0, 0},
		{0x09, 0x80, 0, 0, 0, 0},
		{0x88, 0xfe, 0, 126},
		{0xc1, 0x80, 0, 0, 0, 0},
		{0x83, 0x80},
		{0x82, 0x7e, 0, 5},
	} {
		f.Add(seed, false, byte(0))
		f.Add(seed, true, byte(4))
	}
	f.Fuzz(func(t *testing.T, p []byte, client bool, rsv byte) {
		role := Server
		if client {
			role = Client
		}
		rsv &= 7
		h, n, err := ParseHeader(p, role, rsv)
		if n < 0 || n > len(p) || n > MaxHeaderSize {
			t.Fatalf("n = %d for %d bytes", n, len(p))
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("n = %d with error %v", n, err)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != ws.StatusProtocolError {
				t.Fatalf("error %v is not a 1002 ProtocolError", err)
			}
		}
		// A prefix is incomplete or gets the same answer (so every strict
		// prefix of a parsed header is incomplete).
		for i := 0; i < len(p) && i <= MaxHeaderSize; i++ {
			_, pn, perr := ParseHeader(p[:i], role, rsv)
			if pn == 0 && perr == nil {
				continue
			}
			if pn != n || perr != err {
				t.Fatalf("prefix %d: n=%d err=%v, full: n=%d err=%v", i, pn, perr, n, err)
			}
		}
		if err != nil || n == 0 {
			return
		}
		if h.Length < 0 || h.OpCode.IsControl() && (h.Length > 125 || !h.Fin || h.Rsv != 0) || h.Rsv&^rsv != 0 {
			t.Fatalf("accepted a header that breaks the rules: %+v", h)
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, p[:n]) || HeaderSize(h) != n {
			t.Fatalf("round trip: %x, want %x (size %d)", got, p[:n], HeaderSize(h))
		}
		// gobwas/ws's blocking reader agrees on what it decodes.
		r := bytes.NewReader(p)
		gh, gerr := ws.ReadHeader(r)
		if gerr != nil || gh != h || int(r.Size())-r.Len() != n {
			t.Fatalf("gobwas: %+v %v, ours: %+v", gh, gerr, h)
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	seeds := []string{
		chromeRequest,
		firefoxRequest,
		"GET / HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n",
		"GET /index.html HTTP/1.0\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nSec-WebSocket-Extensions: foo; a=\"x,y\", bar\r\nSec-WebSocket-Protocol: a, b\r\n\r\n",
		"\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x00\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(0))
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, p []byte, limit uint16) {
		var req Request
		n, err := ParseRequest(p, int(limit), &req)
		if n < 0 || n > len(p) {
			t.Fatalf("n = %d for %d bytes", n, len(p))
		}
		lim := int(limit)
		if lim == 0 {
			lim = DefaultMaxRequestHeader
		}
		if n > lim {
			t.Fatalf("n = %d over limit %d", n, lim)
		}
		var he *HTTPError
		if err != nil && (n != 0 || !errors.As(err, &he)) {
			t.Fatalf("n = %d err = %v", n, err)
		}
		// Every prefix is incomplete or gets the same answer.
		for _, i := range prefixLengths(len(p), n, lim) {
			var r2 Request
			pn, perr := ParseRequest(p[:i], int(limit), &r2)
			if pn == 0 && perr == nil {
				continue
			}
			if pn != n || !sameHTTPError(perr, err) {
				t.Fatalf("prefix %d: n=%d err=%v, full: n=%d err=%v", i, pn, perr, n, err)
			}
		}
		if err != nil || n == 0 {
			return
		}
		if !bytes.Equal(req.Head, p[:n]) || len(req.Method) == 0 || len(req.Target) == 0 || req.Major != 1 {
			t.Fatalf("bad result %+v", req)
		}
		// Bytes after the head change nothing.
		withTail := append(append([]byte(nil), p[:n]...), "\x81\x80junk\r\n\r\n"...)
		var r3 Request
		if n3, err3 := ParseRequest(withTail, int(limit), &r3); n3 != n || err3 != nil ||
			r3.Upgrade != req.Upgrade || !bytes.Equal(r3.Key, req.Key) || !bytes.Equal(r3.Host, req.Host) {
			t.Fatalf("with tail: n=%d err=%v", n3, err3)
		}
		req.EachHeader(func(name, value []byte) bool {
			if len(name) == 0 || bytes.IndexByte(value, '\n') >= 0 {
				t.Fatalf("header %q: %q", name, value)
			}
			return true
		})
		req.EachProtocol(func(tok []byte) bool { return len(tok) > 0 })
		req.EachExtension(func(name, params []byte) bool { return true })
		req.Header("Host")
		if cerr := req.CheckUpgrade(); cerr == nil {
			// The server's answer must satisfy a client that sent this key.
			resp := AppendUpgradeResponse(nil, req.Key, "", nil)
			var res Response
			if rn, rerr := ParseResponse(resp, 0, req.Key, &res); rerr != nil || rn != len(resp) {
				t.Fatalf("own response rejected: %v", rerr)
			}
		} else if !errors.As(cerr, &he) {
			t.Fatalf("CheckUpgrade: %v", cerr)
		}
	})
}

// prefixLengths picks the prefix lengths of a size-byte input worth
// checking: all of them for short inputs; for long ones a sample plus those
// around the end of the head (n) and the limit, where answers change. Checking
// every prefix of a long input would make each run quadratic and stall the
// fuzzer's minimization.
func prefixLengths(size, n, limit int) []int {
	if size <= 256 {
		ls := make([]int, size)
		for i := range ls {
			ls[i] = i
		}
		return ls
	}
	var ls []int
	add := func(i int) {
		if i >= 0 && i < size {
			ls = append(ls, i)
		}
	}
	for i := 0; i < 64; i++ {
		add(i)
		add(size * i / 64)
	}
	for d := -4; d <= 4; d++ {
		add(n + d)
		add(limit + d)
		add(size - 1 + d)
	}
	return ls
}

// sameHTTPError reports whether a and b are the same refusal.
func sameHTTPError(a, b error) bool {
	var ha, hb *HTTPError
	if !errors.As(a, &ha) || !errors.As(b, &hb) {
		return a == b
	}
	return *ha == *hb
}

func FuzzParseResponse(f *testing.F) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
		"HTTP/1.1 101 \nupgrade: WebSocket\nconnection: keep-alive, upgrade\nsec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n\n",
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 101 x\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n\r\n",
	} {
		f.Add([]byte(s), key, uint16(0))
	}
	f.Fuzz(func(t *testing.T, p []byte, key string, limit uint16) {
		var res Response
		n, err := ParseResponse(p, int(limit), []byte(key), &res)
		if n < 0 || n > len(p) {
			t.Fatalf("n = %d for %d bytes", n, len(p))
		}
		var he *HTTPError
		if err != nil && (n != 0 || !errors.As(err, &he)) {
			t.Fatalf("n = %d err = %v", n, err)
		}
		lim := int(limit)
		if lim == 0 {
			lim = DefaultMaxRequestHeader
		}
		for _, i := range prefixLengths(len(p), n, lim) {
			var r2 Response
			pn, perr := ParseResponse(p[:i], int(limit), []byte(key), &r2)
			if pn == 0 && perr == nil {
				continue
			}
			if pn != n || !sameHTTPError(perr, err) {
				t.Fatalf("prefix %d: n=%d err=%v, full: n=%d err=%v", i, pn, perr, n, err)
			}
		}
		if err == nil && n > 0 {
			if res.Status != 101 || !bytes.Equal(res.Head, p[:n]) {
				t.Fatalf("accepted %+v", res)
			}
			var want [28]byte
			if !bytes.Contains(p[:n], AppendAccept(want[:0], []byte(key))) {
				t.Fatal("accepted without the accept value")
			}
		}
	})
}

func FuzzUTF8(f *testing.F) {
	for _, s := range []string{"", "hello", "κόσμε", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf0\x9d\x84\x9e",
		"\xe0\x80\xaf", "abcdefgh\xe2\x9c\x93ijklmnop", "abcdefghijklmnop\xc3"} {
		f.Add([]byte(s), uint(0))
		f.Add([]byte(s), uint(3))
	}
	f.Fuzz(func(t *testing.T, p []byte, split uint) {
		want := utf8.Valid(p)
		if ValidUTF8(p) != want {
			t.Fatalf("ValidUTF8(%x) != %v", p, want)
		}
		k := 0
		if len(p) > 0 {
			k = int(split % uint(len(p)+1))
		}
		var v UTF8Validator
		if got := v.Write(p[:k]) && v.Write(p[k:]) && v.Complete(); got != want {
			t.Fatalf("%x split at %d: %v, want %v", p, k, got, want)
		}
		// Fail fast: the first false comes at the byte that ends the longest
		// prefix that some continuation could still make valid.
		// Viability is monotone, so checking both sides of the first false
		// covers every byte.
		v.Reset()
		bad := len(p)
		for i := 0; i < len(p); i++ {
			if !v.Write(p[i : i+1]) {
				bad = i
				break
			}
		}
		if !canBeValidPrefix(p[:bad]) {
			t.Fatalf("%x: accepted %d bytes that cannot become valid", p, bad)
		}
		if bad < len(p) && canBeValidPrefix(p[:bad+1]) {
			t.Fatalf("%x: rejected byte %d too early", p, bad)
		}
	})
}

// FuzzParseRequestNetHTTP checks ParseRequest against net/http: a request
// this package accepts as a valid WebSocket upgrade must be one net/http reads
// the same way (method, target, Host, key, version).
func FuzzParseRequestNetHTTP(f *testing.F) {
	for _, s := range []string{chromeRequest, firefoxRequest,
		"GET / HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n",
		upgradeRequest(nil, "GET", "HTTP/1.1")} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var req Request
		n, err := ParseRequest(p, 0, &req)
		if err != nil || n == 0 || req.CheckUpgrade() != nil {
			return
		}
		hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(p[:n])))
		if herr != nil {
			t.Fatalf("net/http rejects an upgrade we accept: %v\n%q", herr, p[:n])
		}
		switch {
		case hr.Method != string(req.Method),
			hr.RequestURI != string(req.Target),
			hr.Host != string(req.Host),
			hr.Header.Get("Sec-WebSocket-Key") != string(req.Key),
			hr.Header.Get("Sec-WebSocket-Version") != string(req.Version),
			hr.ProtoMajor != req.Major || hr.ProtoMinor != req.Minor:
			t.Fatalf("net/http reads %q differently: %+v", p[:n], hr)
		}
	})
}
