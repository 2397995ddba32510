package session

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The conformance suite: RFC 6455 behaviour organised after the Autobahn
// TestSuite case groups (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes,
// 5 fragmentation, 6 UTF-8, 7 close, 9 large messages, 10 auto-fragmentation).
// Every case runs in both roles (server: the peer's frames are masked;
// client: they are not and the Conn's are) and in every split mode: whole,
// byte by byte (1-KiB pieces for inputs over 64 KiB, where byte-by-byte would
// cost minutes for nothing new), and random pieces from three seeds. The Conn
// echoes every message; the test decodes what it wrote with its own decoder
// and checks the frames, the handler's events, OnClose and Transport.Close.

const (
	opCont  = 0
	opText  = 1
	opBin   = 2
	opClose = 8
	opPing  = 9
	opPong  = 10
)

type ccase struct {
	name   string
	in     []tframe
	maxMsg int
	// want are the frames the Conn must write, in order (echoes, pongs, the
	// reply to the peer's close).
	want []tframe
	// failCode, when set, is the close code the Conn must fail the
	// connection with, after want; OnClose then gets 1006.
	failCode StatusCode
	// peerCode, when set, is the code OnClose must report after the peer's
	// close frame (1005 for an empty body).
	peerCode StatusCode
	// peerReason is the reason OnClose must report with peerCode.
	peerReason string
	// badAt, when >= 0, is the index in in of the frame holding the first
	// byte that makes a text message invalid, and badOff that byte's offset
	// in its payload: the 1007 must be written as soon as it is fed.
	badAt, badOff int
	big           bool // over 64 KiB: 1-KiB pieces instead of byte by byte
	huge          bool // 16 MiB: whole and 64-KiB pieces only, to bound the runtime
}

func txt(s string) tframe  { return tframe{fin: true, op: opText, payload: []byte(s)} }
func bin(b []byte) tframe  { return tframe{fin: true, op: opBin, payload: b} }
func ping(s string) tframe { return tframe{fin: true, op: opPing, payload: []byte(s)} }
func pong(s string) tframe { return tframe{fin: true, op: opPong, payload: []byte(s)} }
func frag(op byte, fin bool, s string) tframe {
	return tframe{fin: fin, op: op, payload: []byte(s)}
}
func closeF(code uint16, reason string) tframe {
	return tframe{fin: true, op: opClose, payload: append(binary.BigEndian.AppendUint16(nil, code), reason...)}
}
func closeBody(b []byte) tframe { return tframe{fin: true, op: opClose, payload: b} }

// ok builds a case whose frames end with the peer's close 1000: want lists
// the echoes and pongs before the reply.
func ok(name string, in []tframe, want ...tframe) ccase {
	return ccase{name: name, in: append(in, closeF(1000, "")), want: append(want, closeF(1000, "")), peerCode: 1000, badAt: -1}
}

// fails builds a case the Conn must fail with code after writing want.
func fails(name string, code StatusCode, in []tframe, want ...tframe) ccase {
	return ccase{name: name, in: in, want: want, failCode: code, badAt: -1}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// utf8Text returns n bytes of valid UTF-8 made of 1- to 4-byte sequences
// (the final bytes are ASCII padding), so that fragment boundaries fall
// inside sequences.
func utf8Text(n int) string {
	const unit = "Hello-µ@ßöäüàá-UTF-8!!€𝄞" // 1,2,3,4-byte sequences
	s := strings.Repeat(unit, n/len(unit)+1)
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + strings.Repeat("x", n-len(s))
}

// fragment cuts a message into frames of size k (the last may be shorter).
func fragment(op byte, p []byte, k int) []tframe {
	var fs []tframe
	for i := 0; ; i += k {
		end := min(i+k, len(p))
		o := byte(opCont)
		if i == 0 {
			o = op
		}
		fs = append(fs, tframe{fin: end == len(p), op: o, payload: p[i:end]})
		if end == len(p) {
			return fs
		}
	}
}

func conformanceCases() []ccase {
	var cs []ccase
	add := func(c ...ccase) { cs = append(cs, c...) }

	// 1 framing.
	for _, n := range []int{0, 1, 125, 126, 127, 128, 65535, 65536} {
		s := utf8Text(n)
		add(ok(fmt.Sprintf("1.1/text-%d", n), []tframe{txt(s)}, txt(s)))
		b := pattern(n)
		add(ok(fmt.Sprintf("1.2/binary-%d", n), []tframe{bin(b)}, bin(b)))
	}
	add(ok("1.3/several-messages", []tframe{txt("a"), bin([]byte{0, 1}), txt(""), bin(nil)},
		txt("a"), bin([]byte{0, 1}), txt(""), bin(nil)))
	add(fails("1.4/non-minimal-16-bit-length", 1002, []tframe{{fin: true, op: opText, payload: []byte("hi"), rawLen: []byte{126, 0, 2}}}))
	add(fails("1.4/non-minimal-64-bit-length", 1002, []tframe{{fin: true, op: opBin, payload: pattern(200), rawLen: []byte{127, 0, 0, 0, 0, 0, 0, 0, 200}}}))
	add(fails("1.4/64-bit-length-msb-set", 1002, []tframe{{fin: true, op: opBin, payload: []byte("x"), rawLen: []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 1}}}))

	// 2 ping/pong.
	add(ok("2.1/ping-empty", []tframe{ping("")}, pong("")))
	add(ok("2.2/ping-text", []tframe{ping("Hello, world!")}, pong("Hello, world!")))
	add(ok("2.3/ping-binary", []tframe{{fin: true, op: opPing, payload: []byte{0, 255, 254, 253, 252, 251, 250, 249}}},
		tframe{fin: true, op: opPong, payload: []byte{0, 255, 254, 253, 252, 251, 250, 249}}))
	p125 := string(pattern(125))
	add(ok("2.4/ping-125", []tframe{ping(p125)}, pong(p125)))
	add(fails("2.5/ping-126", 1002, []tframe{ping(string(pattern(126)))}))
	add(ok("2.7/unsolicited-pong-empty", []tframe{pong("")}))
	add(ok("2.8/unsolicited-pong-payload", []tframe{pong("unsolicited pong payload")}))
	add(ok("2.9/pong-then-ping", []tframe{pong("unsolicited"), ping("ping payload")}, pong("ping payload")))
	var pings, pongs []tframe
	for i := range 10 {
		pings = append(pings, ping(fmt.Sprintf("payload-%d", i)))
		pongs = append(pongs, pong(fmt.Sprintf("payload-%d", i)))
	}
	add(ok("2.10/ten-pings", pings, pongs...))
	add(ok("2.11/ping-between-messages", []tframe{txt("a"), ping("p"), txt("b")}, txt("a"), pong("p"), txt("b")))

	// 3 reserved bits.
	add(fails("3.1/text-rsv1", 1002, []tframe{{fin: true, rsv: 1, op: opText, payload: []byte("Hello")}}))
	add(fails("3.2/text-then-rsv2-then-ping", 1002, []tframe{txt("Hello"), {fin: true, rsv: 2, op: opText, payload: []byte("Hello")}, ping("")}, txt("Hello")))
	add(fails("3.3/text-then-rsv3-then-ping", 1002, []tframe{txt("Hello"), {fin: true, rsv: 3, op: opText, payload: []byte("Hello")}, ping("")}, txt("Hello")))
	add(fails("3.4/rsv4-empty", 1002, []tframe{{fin: true, rsv: 4, op: opText}}))
	add(fails("3.5/binary-rsv5", 1002, []tframe{{fin: true, rsv: 5, op: opBin, payload: pattern(8)}}))
	add(fails("3.6/ping-rsv6", 1002, []tframe{{fin: true, rsv: 6, op: opPing, payload: []byte("Hello")}}))
	add(fails("3.7/close-rsv7", 1002, []tframe{{fin: true, rsv: 7, op: opClose, payload: []byte{3, 232}}}))
	add(fails("3.8/continuation-rsv1", 1002, []tframe{frag(opText, false, "a"), {fin: true, rsv: 1, op: opCont, payload: []byte("b")}}))

	// 4 opcodes.
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		add(fails(fmt.Sprintf("4.x/opcode-%d-empty", op), 1002, []tframe{{fin: true, op: op}}))
		add(fails(fmt.Sprintf("4.x/opcode-%d-after-text-then-ping", op), 1002,
			[]tframe{txt("Hello"), {fin: true, op: op, payload: []byte("reserved")}, ping("")}, txt("Hello")))
	}

	// 5 fragmentation.
	add(fails("5.1/ping-fragmented", 1002, []tframe{frag(opPing, false, "frag1"), frag(opCont, true, "frag2")}))
	add(fails("5.2/pong-fragmented", 1002, []tframe{frag(opPong, false, "frag1"), frag(opCont, true, "frag2")}))
	add(fails("5.2/close-fragmented", 1002, []tframe{{fin: false, op: opClose, payload: []byte{3, 232}}}))
	add(ok("5.3/text-2-fragments", []tframe{frag(opText, false, "fragment1"), frag(opCont, true, "fragment2")}, txt("fragment1fragment2")))
	add(ok("5.4/binary-3-fragments", []tframe{frag(opBin, false, "a"), frag(opCont, false, "bc"), frag(opCont, true, "def")}, bin([]byte("abcdef"))))
	add(ok("5.6/ping-between-fragments", []tframe{frag(opText, false, "fragment1"), ping("pongme!"), frag(opCont, true, "fragment2")},
		pong("pongme!"), txt("fragment1fragment2")))
	add(ok("5.7/pong-between-fragments", []tframe{frag(opText, false, "fragment1"), pong("x"), frag(opCont, true, "fragment2")},
		txt("fragment1fragment2")))
	add(fails("5.9/continuation-fin-without-start", 1002, []tframe{frag(opCont, true, "non-continuation payload"), txt("Hello, world!")}))
	add(fails("5.12/continuation-nofin-without-start", 1002, []tframe{frag(opCont, false, "non-continuation payload"), txt("Hello, world!")}))
	add(fails("5.15/continuation-after-complete-message", 1002, []tframe{frag(opText, false, "fragment1"), frag(opCont, true, "fragment2"),
		frag(opCont, false, "fragment3"), txt("fragment4")}, txt("fragment1fragment2")))
	add(fails("5.16/continuations-without-start", 1002, []tframe{frag(opCont, false, "f1"), frag(opCont, true, "f2"), txt("f3")}))
	add(fails("5.18/text-inside-fragmented-text", 1002, []tframe{frag(opText, false, "fragment1"), frag(opText, true, "fragment2")}))
	add(fails("5.18/binary-inside-fragmented-text", 1002, []tframe{frag(opText, false, "fragment1"), frag(opBin, true, "fragment2")}))
	add(ok("5.19/five-fragments-two-pings", []tframe{frag(opText, false, "fragment1"), frag(opCont, false, "fragment2"), ping("pongme 1!"),
		frag(opCont, false, "fragment3"), ping("pongme 2!"), frag(opCont, false, "fragment4"), frag(opCont, true, "fragment5")},
		pong("pongme 1!"), pong("pongme 2!"), txt("fragment1fragment2fragment3fragment4fragment5")))
	add(ok("5.21/empty-fragments", []tframe{frag(opText, false, ""), frag(opCont, false, ""), frag(opCont, true, "")}, txt("")))
	add(ok("5.22/empty-first-and-last-fragment", []tframe{frag(opText, false, ""), frag(opCont, false, "middle"), frag(opCont, true, "")}, txt("middle")))
	add(ok("5.23/fragmented-binary-empty", []tframe{frag(opBin, false, ""), frag(opCont, true, "")}, bin([]byte{})))
	add(ok("5.24/max-control-between-fragments", []tframe{frag(opBin, false, "ab"), ping(p125), frag(opCont, true, "cd")}, pong(p125), bin([]byte("abcd"))))

	// 6 UTF-8.
	for i, u := range utf8Payloads {
		p := []byte(u.s)
		variants := []struct {
			name string
			fs   []tframe
		}{
			{"frame", []tframe{{fin: true, op: opText, payload: p}}},
			{"per-byte-fragments", fragment(opText, p, 1)},
		}
		if len(p) >= 2 {
			variants = append(variants, struct {
				name string
				fs   []tframe
			}{"2-fragments", fragment(opText, p, (len(p)+1)/2)})
		}
		for _, v := range variants {
			name := fmt.Sprintf("6.%d/%s/%s", i+1, u.name, v.name)
			if utf8.Valid(p) {
				add(ok(name, v.fs, tframe{fin: true, op: opText, payload: p}))
				continue
			}
			c := fails(name, 1007, v.fs)
			if bad := firstBad(p); bad >= 0 {
				// Locate the frame and offset of the first bad byte.
				off := bad
				for j, f := range v.fs {
					if off < len(f.payload) {
						c.badAt, c.badOff = j, off
						break
					}
					off -= len(f.payload)
				}
			}
			// Bytes behind the invalid text (the rest of the message, then
			// a valid one) are never looked at.
			c.in = append(c.in, txt("after"))
			add(c)
		}
	}

	// 7 close.
	add(ok("7.1.1/echo-then-close", []tframe{txt("Hello World!")}, txt("Hello World!")))
	add(ccase{name: "7.1.2/close-twice", in: []tframe{closeF(1000, ""), closeF(1000, "")}, want: []tframe{closeF(1000, "")}, peerCode: 1000, badAt: -1})
	add(ccase{name: "7.1.3/ping-after-close", in: []tframe{closeF(1000, ""), ping("")}, want: []tframe{closeF(1000, "")}, peerCode: 1000, badAt: -1})
	add(ccase{name: "7.1.4/text-after-close", in: []tframe{closeF(1000, ""), txt("Hello")}, want: []tframe{closeF(1000, "")}, peerCode: 1000, badAt: -1})
	add(ccase{name: "7.1.5/close-inside-fragmented-message", in: []tframe{frag(opText, false, "fragment1"), closeF(1000, ""), frag(opCont, true, "fragment2")},
		want: []tframe{closeF(1000, "")}, peerCode: 1000, badAt: -1})
	big := utf8Text(256 << 10)
	add(ccase{name: "7.1.6/large-message-close-ping", in: []tframe{txt(big), closeF(1000, ""), ping("")}, want: []tframe{txt(big), closeF(1000, "")}, peerCode: 1000, badAt: -1, big: true})
	add(ccase{name: "7.3.1/close-empty", in: []tframe{closeBody(nil)}, want: []tframe{closeBody([]byte{})}, peerCode: 1005, badAt: -1})
	add(fails("7.3.2/close-1-byte", 1002, []tframe{closeBody([]byte{3})}))
	add(ccase{name: "7.3.4/close-with-reason", in: []tframe{closeF(1000, "Hello World!")}, want: []tframe{closeF(1000, "")}, peerCode: 1000, peerReason: "Hello World!", badAt: -1})
	r123 := strings.Repeat("*", 123)
	add(ccase{name: "7.3.5/close-reason-123", in: []tframe{closeF(1000, r123)}, want: []tframe{closeF(1000, "")}, peerCode: 1000, peerReason: r123, badAt: -1})
	add(fails("7.3.6/close-reason-124", 1002, []tframe{closeF(1000, r123+"*")}))
	add(fails("7.5.1/close-reason-invalid-utf8", 1007, []tframe{closeF(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")}))
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		add(ccase{name: fmt.Sprintf("7.7/close-code-%d", code), in: []tframe{closeF(code, "")}, want: []tframe{closeF(code, "")},
			peerCode: StatusCode(code), badAt: -1})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add(fails(fmt.Sprintf("7.9/close-code-%d", code), 1002, []tframe{closeF(code, "")}))
	}

	// 9 large messages.
	for _, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20} {
		if n == 4<<20 {
			continue // covered fragmented below
		}
		s := utf8Text(n)
		c := ok(fmt.Sprintf("9.1/text-%dK", n>>10), []tframe{txt(s)}, txt(s))
		c.maxMsg, c.big, c.huge = n, true, n > 4<<20
		add(c)
		b := pattern(n)
		c = ok(fmt.Sprintf("9.2/binary-%dK", n>>10), []tframe{bin(b)}, bin(b))
		c.maxMsg, c.big, c.huge = n, true, n > 4<<20
		add(c)
	}
	ft := []byte(utf8Text(1 << 20))
	fb := pattern(1 << 20)
	for _, k := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		c := ok(fmt.Sprintf("9.3/text-1M-in-%d-byte-frames", k), fragment(opText, ft, k), tframe{fin: true, op: opText, payload: ft})
		c.maxMsg, c.big = 1<<20, true
		add(c)
		c = ok(fmt.Sprintf("9.4/binary-1M-in-%d-byte-frames", k), fragment(opBin, fb, k), bin(fb))
		c.maxMsg, c.big = 1<<20, true
		add(c)
	}
	s4 := []byte(utf8Text(4 << 20))
	c := ok("9.3/text-4M-in-64K-frames", fragment(opText, s4, 64<<10), tframe{fin: true, op: opText, payload: s4})
	c.maxMsg, c.big = 4<<20, true
	add(c)
	// Limits: announced over MaxMessage, and accumulated over it.
	c = fails("9.x/frame-over-max-message", 1009, []tframe{bin(pattern(1001))})
	c.maxMsg = 1000
	add(c)
	c = fails("9.x/fragments-over-max-message", 1009, []tframe{frag(opBin, false, string(pattern(600))), frag(opCont, true, string(pattern(401)))})
	c.maxMsg = 1000
	add(c)
	c = ok("9.x/exactly-max-message", []tframe{frag(opBin, false, string(pattern(600))), frag(opCont, true, string(pattern(400)))}, bin(append(pattern(600), pattern(400)...)))
	c.maxMsg = 1000
	add(c)

	// 10 auto-fragmentation.
	msg := []byte(utf8Text(2000))
	for _, k := range []int{1, 2, 3, 4, 5, 7, 13, 64, 125, 126, 127, 128, 1000, 1300, 1999, 2000} {
		add(ok(fmt.Sprintf("10.1/text-2000-in-%d-byte-frames", k), fragment(opText, msg, k), tframe{fin: true, op: opText, payload: msg}))
		add(ok(fmt.Sprintf("10.1/binary-2000-in-%d-byte-frames", k), fragment(opBin, pattern(2000), k), bin(pattern(2000))))
	}
	m64 := []byte(utf8Text(65536))
	c = ok("10.1.1/text-65536-in-1300-byte-frames", fragment(opText, m64, 1300), tframe{fin: true, op: opText, payload: m64})
	c.big = true
	add(c)
	return cs
}

// utf8Payloads are the Autobahn 6.x sequences (valid and invalid).
var utf8Payloads = []struct{ name, s string }{
	{"hello", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
	{"kosme-surrogate-edited", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"},
	{"kosme-above-10ffff-mid", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
	{"first-1", "\x00"}, {"first-2", "\xc2\x80"}, {"first-3", "\xe0\xa0\x80"}, {"first-4", "\xf0\x90\x80\x80"},
	{"first-5", "\xf8\x88\x80\x80\x80"}, {"first-6", "\xfc\x84\x80\x80\x80\x80"},
	{"last-1", "\x7f"}, {"last-2", "\xdf\xbf"}, {"last-3", "\xef\xbf\xbf"}, {"last-4", "\xf7\xbf\xbf\xbf"},
	{"last-5", "\xfb\xbf\xbf\xbf\xbf"}, {"last-6", "\xfd\xbf\xbf\xbf\xbf\xbf"},
	{"boundary-d7ff", "\xed\x9f\xbf"}, {"boundary-e000", "\xee\x80\x80"}, {"boundary-fffd", "\xef\xbf\xbd"},
	{"boundary-10ffff", "\xf4\x8f\xbf\xbf"}, {"boundary-110000", "\xf4\x90\x80\x80"},
	{"cont-80", "\x80"}, {"cont-bf", "\xbf"}, {"cont-80bf", "\x80\xbf"}, {"cont-80bf80", "\x80\xbf\x80"},
	{"cont-all", allContinuations()},
	{"lonely-c0", "\xc0 \xc1 "}, {"lonely-e0", "\xe0 "}, {"lonely-f0", "\xf0 "}, {"lonely-f8", "\xf8 "}, {"lonely-fc", "\xfc "},
	{"missing-last-2", "\xc0"}, {"missing-last-3", "\xe0\x80"}, {"missing-last-4", "\xf0\x80\x80"},
	{"missing-last-df", "\xdf"}, {"missing-last-ef", "\xef\xbf"}, {"missing-last-f4", "\xf4\x8f\xbf"},
	{"truncated-at-end", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"},
	{"concatenated-incomplete", "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"},
	{"impossible-fe", "\xfe"}, {"impossible-ff", "\xff"}, {"impossible-fefeffff", "\xfe\xfe\xff\xff"},
	{"overlong-slash-2", "\xc0\xaf"}, {"overlong-slash-3", "\xe0\x80\xaf"}, {"overlong-slash-4", "\xf0\x80\x80\xaf"},
	{"overlong-slash-5", "\xf8\x80\x80\x80\xaf"}, {"overlong-slash-6", "\xfc\x80\x80\x80\x80\xaf"},
	{"overlong-max-2", "\xc1\xbf"}, {"overlong-max-3", "\xe0\x9f\xbf"}, {"overlong-max-4", "\xf0\x8f\xbf\xbf"},
	{"overlong-nul-2", "\xc0\x80"}, {"overlong-nul-3", "\xe0\x80\x80"}, {"overlong-nul-4", "\xf0\x80\x80\x80"},
	{"surrogate-d800", "\xed\xa0\x80"}, {"surrogate-db7f", "\xed\xad\xbf"}, {"surrogate-db80", "\xed\xae\x80"},
	{"surrogate-dbff", "\xed\xaf\xbf"}, {"surrogate-dc00", "\xed\xb0\x80"}, {"surrogate-df80", "\xed\xbe\x80"}, {"surrogate-dfff", "\xed\xbf\xbf"},
	{"surrogate-pair", "\xed\xa0\x80\xed\xb0\x80"}, {"surrogate-pair-2", "\xed\xaf\xbf\xed\xbf\xbf"},
	{"noncharacter-fffe", "\xef\xbf\xbe"}, {"noncharacter-ffff", "\xef\xbf\xbf"}, {"noncharacter-10fffe", "\xf4\x8f\xbf\xbe"},
	{"valid-then-invalid-mid", "Hello\xe2\x82\xacWorld\xc3\x28tail-that-must-not-be-read"},
	{"long-valid-then-bad", strings.Repeat("κόσμε", 40) + "\xff" + strings.Repeat("x", 100)},
}

func allContinuations() string {
	var b []byte
	for c := 0x80; c <= 0xbf; c++ {
		b = append(b, byte(c))
	}
	return string(b)
}

// firstBad returns the index of the first byte at which p stops being the
// prefix of any valid UTF-8 text, or -1 when every prefix can still be
// completed (p may then be invalid only because it ends mid-sequence). It
// is independent of codec: a prefix is completable when appending up to
// three continuation bytes, taken from the boundary values of the ranges
// RFC 3629 allows, makes it valid.
func firstBad(p []byte) int {
	conts := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	completable := func(q []byte) bool {
		if utf8.Valid(q) {
			return true
		}
		for _, a := range conts {
			if utf8.Valid(append(append([]byte{}, q...), a)) {
				return true
			}
			for _, b := range conts {
				if utf8.Valid(append(append([]byte{}, q...), a, b)) {
					return true
				}
				for _, c := range conts {
					if utf8.Valid(append(append([]byte{}, q...), a, b, c)) {
						return true
					}
				}
			}
		}
		return false
	}
	for i := range p {
		if !completable(p[:i+1]) {
			return i
		}
	}
	return -1
}

func splitModes(big, huge bool) []string {
	if huge {
		return []string{"whole", "chunk:65536"}
	}
	if big {
		return []string{"whole", "chunk:1024", "rand:1", "rand:2", "rand:3"}
	}
	return []string{"whole", "bytes", "rand:1", "rand:2", "rand:3"}
}

func TestConformance(t *testing.T) {
	cases := conformanceCases()
	runs := 0
	for _, cc := range cases {
		for _, role := range []Role{Server, Client} {
			modes := splitModes(cc.big, cc.huge)
			if testing.Short() && cc.big {
				modes = modes[:2]
			}
			for _, mode := range modes {
				runs++
				t.Run(cc.name+"/"+role.String()+"/"+mode, func(t *testing.T) {
					runCase(t, cc, role, mode)
				})
			}
		}
	}
	t.Logf("%d cases, %d runs (2 roles x split modes)", len(cases), runs)
}

func runCase(t *testing.T, cc ccase, role Role, mode string) {
	cfg := &Config{MaxMessage: cc.maxMsg}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 1 << 20
	}
	rec := &recorder{echo: true}
	c, ft := openConn(t, cfg, role, rec)
	rng := rand.New(rand.NewPCG(uint64(len(cc.name)), 99))
	in, starts := encodeFramesPos(cc.in, role == Server, rng)

	var after func(int)
	if cc.badAt >= 0 && cc.failCode == 1007 {
		badPos := starts[cc.badAt] + cc.badOff // offset of the first invalid byte
		after = func(fed int) {
			wrote := closeWritten(t, ft.out, role)
			if fed <= badPos && wrote {
				t.Fatalf("close written after %d bytes, before the invalid byte at %d", fed, badPos)
			}
			if fed > badPos && !wrote {
				t.Fatalf("fail-fast: no close written after the invalid byte at %d (fed %d of %d)", badPos, fed, len(in))
			}
		}
	}
	feedSplit(c, in, mode, after)

	got, err := decodeFrames(ft.out, role == Client)
	if err != nil {
		t.Fatalf("decoding output: %v", err)
	}
	want := cc.want
	if cc.failCode != 0 {
		if len(got) != len(want)+1 {
			t.Fatalf("wrote %d frames %v, want %d then a close %d", len(got), got, len(want), cc.failCode)
		}
		last := got[len(got)-1]
		if last.op != opClose || len(last.payload) < 2 || StatusCode(binary.BigEndian.Uint16(last.payload)) != cc.failCode {
			t.Fatalf("last frame %v, want close %d", last, cc.failCode)
		}
		got = got[:len(got)-1]
	}
	if len(got) != len(want) {
		t.Fatalf("wrote %d frames %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.fin || g.rsv != 0 || g.op != w.op || !bytes.Equal(g.payload, w.payload) {
			t.Fatalf("frame %d: got %v, want %v", i, g, w)
		}
	}
	// Handler events: open, each delivered message (what was echoed), then
	// exactly one close.
	var wantMsgs []tframe
	for _, w := range want {
		if w.op == opText || w.op == opBin {
			wantMsgs = append(wantMsgs, w)
		}
	}
	if len(rec.msgs) != len(wantMsgs) {
		t.Fatalf("delivered %d messages, want %d", len(rec.msgs), len(wantMsgs))
	}
	for i := range wantMsgs {
		if rec.msgs[i].op != wantMsgs[i].op || !bytes.Equal(rec.msgs[i].payload, wantMsgs[i].payload) {
			t.Fatalf("message %d differs", i)
		}
	}
	if rec.events[0] != "open" {
		t.Fatalf("events %v", rec.events)
	}
	if rec.closes != 1 || !strings.HasPrefix(rec.events[len(rec.events)-1], "close:") {
		t.Fatalf("OnClose called %d times; events %v", rec.closes, rec.events)
	}
	switch {
	case cc.failCode != 0:
		if rec.code != StatusAbnormal || rec.err == nil {
			t.Fatalf("OnClose(%d, %v), want 1006 with an error", rec.code, rec.err)
		}
		if ft.closed != 1 {
			t.Fatalf("Transport.Close called %d times, want 1", ft.closed)
		}
	default:
		if rec.code != cc.peerCode || rec.reason != cc.peerReason || rec.err != nil {
			t.Fatalf("OnClose(%d, %q, %v), want (%d, %q, nil)", rec.code, rec.reason, rec.err, cc.peerCode, cc.peerReason)
		}
		wantClosed := 1 // a server closes the TCP connection after the close handshake
		if role == Client {
			wantClosed = 0 // a client waits for the server to
		}
		if ft.closed != wantClosed {
			t.Fatalf("Transport.Close called %d times, want %d", ft.closed, wantClosed)
		}
		if role == Client && c.State() != StateClosing {
			t.Fatalf("client state %v, want closing", c.State())
		}
	}
	if ft.afterClose != 0 {
		t.Fatalf("%d writes after Transport.Close", ft.afterClose)
	}
	c.TransportClosed(io.EOF)
	if c.State() != StateClosed || c.buf != nil || rec.closes != 1 {
		t.Fatalf("after TransportClosed: state %v, buffer held %v, OnClose %d times", c.State(), c.buf != nil, rec.closes)
	}
}

// closeWritten reports whether out holds a close frame.
func closeWritten(t *testing.T, out []byte, role Role) bool {
	fs, err := decodeFrames(out, role == Client)
	if err != nil {
		t.Fatalf("decoding output: %v", err)
	}
	for _, f := range fs {
		if f.op == opClose {
			return true
		}
	}
	return false
}
