package codec

import (
	"testing"

	"github.com/gobwas/ws"
)

// The per-frame and per-handshake paths must not allocate: an event loop runs
// them for every connection and every message.

func TestAllocsParseHeader(t *testing.T) {
	frame := AppendFrame(nil, Client, true, ws.OpText, make([]byte, 70000))
	var n int
	allocs := testing.AllocsPerRun(100, func() {
		_, n, _ = ParseHeader(frame, Server, 0)
	})
	if allocs != 0 || n != 14 {
		t.Fatalf("ParseHeader: %v allocs, n=%d", allocs, n)
	}
	// Rejecting costs nothing either.
	bad := []byte{0x83, 0x80, 0, 0, 0, 0}
	allocs = testing.AllocsPerRun(100, func() { ParseHeader(bad, Server, 0) })
	if allocs != 0 {
		t.Fatalf("ParseHeader error path: %v allocs", allocs)
	}
}

func TestAllocsAppendFrame(t *testing.T) {
	payload := make([]byte, 1024)
	dst := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendFrame(dst[:0], Server, true, ws.OpBinary, payload)
	})
	if allocs != 0 || len(dst) != 1028 {
		t.Fatalf("AppendFrame server: %v allocs, len %d", allocs, len(dst))
	}
	allocs = testing.AllocsPerRun(100, func() {
		dst = AppendFrame(dst[:0], Client, true, ws.OpBinary, payload)
	})
	if allocs != 0 || len(dst) != 1032 {
		t.Fatalf("AppendFrame client: %v allocs, len %d", allocs, len(dst))
	}
}

func TestAllocsUTF8Validator(t *testing.T) {
	text := []byte("héllo wörld, ünïcödé ✓ 𝄞 and plenty of ASCII to take the fast path")
	var v UTF8Validator
	ok := true
	allocs := testing.AllocsPerRun(100, func() {
		v.Reset()
		ok = v.Write(text[:7]) && v.Write(text[7:]) && v.Complete()
	})
	if allocs != 0 || !ok {
		t.Fatalf("UTF8Validator: %v allocs, ok=%v", allocs, ok)
	}
}

func TestAllocsParseRequest(t *testing.T) {
	raw := []byte(chromeRequest + "\x81\x80")
	var req Request
	var n int
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		n, err = ParseRequest(raw, 0, &req)
		if err == nil {
			err = req.CheckUpgrade()
		}
	})
	if allocs != 0 || err != nil || n != len(chromeRequest) {
		t.Fatalf("ParseRequest: %v allocs, n=%d err=%v", allocs, n, err)
	}
	var found []byte
	allocs = testing.AllocsPerRun(100, func() { found = req.Header("Accept-Language") })
	if allocs != 0 || string(found) != "en-US,en;q=0.9" {
		t.Fatalf("Header: %v allocs, %q", allocs, found)
	}
	// Refusing a bad request allocates nothing either.
	bad := []byte("GET / HTTP/1.1\r\nHost : h\r\n\r\n")
	allocs = testing.AllocsPerRun(100, func() { ParseRequest(bad, 0, &req) })
	if allocs != 0 {
		t.Fatalf("ParseRequest error path: %v allocs", allocs)
	}
}

func TestAllocsAccept(t *testing.T) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() { dst = AppendAccept(dst[:0], key) })
	if allocs != 0 || string(dst) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AppendAccept: %v allocs, %q", allocs, dst)
	}
	allocs = testing.AllocsPerRun(100, func() { dst = AppendUpgradeResponse(dst[:0], key, "chat", nil) })
	if allocs != 0 || len(dst) < 129 {
		t.Fatalf("AppendUpgradeResponse: %v allocs, len %d", allocs, len(dst))
	}
}

func TestAllocsParseResponse(t *testing.T) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	raw := AppendUpgradeResponse(nil, key, "chat", nil)
	var res Response
	var err error
	allocs := testing.AllocsPerRun(100, func() { _, err = ParseResponse(raw, 0, key, &res) })
	if allocs != 0 || err != nil {
		t.Fatalf("ParseResponse: %v allocs, err=%v", allocs, err)
	}
}
