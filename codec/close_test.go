package codec

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func TestValidCloseCodeAll(t *testing.T) {
	valid := 0
	for c := 0; c <= 5000; c++ {
		want := c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
		if got := ValidCloseCode(ws.StatusCode(c)); got != want {
			t.Fatalf("ValidCloseCode(%d) = %v", c, got)
		}
		body := binary.BigEndian.AppendUint16(nil, uint16(c))
		code, reason, err := ParseClose(append(body, "bye"...))
		if want {
			valid++
			if err != nil || int(code) != c || string(reason) != "bye" {
				t.Fatalf("ParseClose(%d): %d %q %v", c, code, reason, err)
			}
		} else if err != ErrCloseCode {
			t.Fatalf("ParseClose(%d): err = %v, want ErrCloseCode", c, err)
		}
	}
	if valid != 4+8+2000 {
		t.Fatalf("%d valid codes", valid)
	}
	// Codes that must never be on the wire.
	for _, c := range []ws.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		if ValidCloseCode(c) {
			t.Errorf("%d valid", c)
		}
	}
}

func TestParseCloseBodies(t *testing.T) {
	code, reason, err := ParseClose(nil)
	if err != nil || code != ws.StatusNoStatusRcvd || reason != nil {
		t.Fatalf("empty: %d %q %v", code, reason, err)
	}
	if _, _, err := ParseClose([]byte{0x03}); err != ErrCloseBodyTooShort {
		t.Fatalf("1 byte: %v", err)
	}
	code, reason, err = ParseClose([]byte{0x03, 0xe8})
	if err != nil || code != 1000 || len(reason) != 0 {
		t.Fatalf("code only: %d %q %v", code, reason, err)
	}
	if _, _, err := ParseClose([]byte{0x03, 0xe8, 0xce, 0xba, 0xed, 0xa0, 0x80}); err != ErrCloseReasonUTF8 {
		t.Fatalf("surrogate in reason: %v", err)
	}
	if _, _, err := ParseClose([]byte{0x03, 0xe8, 0xce}); err != ErrCloseReasonUTF8 {
		t.Fatalf("truncated rune in reason: %v", err)
	}
	if ErrCloseReasonUTF8.Code != ws.StatusInvalidFramePayloadData || ErrCloseCode.Code != ws.StatusProtocolError {
		t.Fatal("close error codes")
	}
}

func TestAppendClosePayload(t *testing.T) {
	if got := AppendClosePayload(nil, ws.StatusNoStatusRcvd, "ignored"); len(got) != 0 {
		t.Fatalf("1005: %x", got)
	}
	got := AppendClosePayload([]byte("x"), 1001, "going away")
	if string(got) != "x\x03\xe9going away" {
		t.Fatalf("%q", got)
	}
	// Truncation at every alignment of 1-4 byte runes never splits one.
	for _, r := range []string{"a", "é", "€", "𝄞"} {
		for pad := 0; pad < 4; pad++ {
			reason := strings.Repeat("a", pad) + strings.Repeat(r, 200)
			p := AppendClosePayload(nil, 1000, reason)
			if len(p) > 125 || len(p) < 125-3 {
				t.Fatalf("%q pad %d: %d bytes", r, pad, len(p))
			}
			if !utf8.Valid(p[2:]) || !strings.HasPrefix(reason, string(p[2:])) {
				t.Fatalf("%q pad %d: reason split: %x", r, pad, p[2:])
			}
			if code, _, err := ParseClose(p); err != nil || code != 1000 {
				t.Fatalf("round trip: %d %v", code, err)
			}
		}
	}
	exact := strings.Repeat("b", 123)
	if p := AppendClosePayload(nil, 1000, exact); len(p) != 125 || string(p[2:]) != exact {
		t.Fatalf("123-byte reason cut: %d", len(p))
	}
}
