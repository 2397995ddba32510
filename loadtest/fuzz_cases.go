package loadtest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// fuzzCase is what one connection of the fuzzer sends, and what a correct
// server must answer (when that is known).
type fuzzCase struct {
	kind string
	// handshake, for a handshake case, is the (mutated) request, sent in
	// chunks; for a frame case the fuzzer sends a valid one first.
	handshake []byte
	// frames are the bytes sent after a completed handshake.
	frames []byte
	// chunks are the cut points of what is sent (ascending offsets); the
	// fuzzer pauses briefly at each.
	chunks []int
	// halfClose: shut down the sending side when done. Without it a
	// truncated request is left for the server's handshake timeout.
	halfClose bool
	// wantCode is the close code a correct server sends (0: any legal one).
	wantCode int
	// wantEcho are the messages a correct server echoes, in order.
	wantEcho [][]byte
	// wantPong: the server must answer a ping.
	wantPong bool
}

// genCase makes case i of a run: the same seed and i give the same case.
func genCase(seed uint64, i int, path, host, origin string, maxMsg int) fuzzCase {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	switch p := r.IntN(100); {
	case p < 30:
		return handshakeCase(r, path, host, origin)
	case p < 60:
		return targetedCase(r, maxMsg)
	default:
		return randomFramesCase(r, maxMsg)
	}
}

// randFor is the random source of case i's own choices (keys, masks)
// apart from its content.
func randFor(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(i)))
}

// cutPoints splits n bytes into up to k chunks at random offsets.
func cutPoints(r *rand.Rand, n, k int) []int {
	if n < 2 || k < 2 {
		return nil
	}
	cuts := make([]int, 0, k-1)
	for range r.IntN(k) {
		cuts = append(cuts, 1+r.IntN(n-1))
	}
	// ascending, no duplicates
	for i := 1; i < len(cuts); i++ {
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	out := cuts[:0]
	for i, c := range cuts {
		if i == 0 || c != cuts[i-1] {
			out = append(out, c)
		}
	}
	return out
}

// handshakeCase mutates a valid opening handshake.
func handshakeCase(r *rand.Rand, path, host, origin string) fuzzCase {
	req := handshakeRequest(path, host, origin, newKey(r))
	c := fuzzCase{kind: "handshake", halfClose: r.IntN(10) != 0}
	mutations := 1 + r.IntN(3)
	for range mutations {
		req = mutateRequest(r, req)
	}
	if r.IntN(8) == 0 { // bytes right behind the request: they are frames now
		req = append(req, randomBytes(r, 1+r.IntN(64))...)
	}
	c.handshake = req
	c.chunks = cutPoints(r, len(req), 6)
	return c
}

var requestLines = []string{
	"Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 13, 8", "Sec-WebSocket-Version: abc", "Sec-WebSocket-Version:",
	"Sec-WebSocket-Key: c2hvcnQ=", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!", "Sec-WebSocket-Key:",
	"Upgrade: h2c", "Upgrade: websocket, websocket", "Connection: close", "Connection: keep-alive, Upgrade",
	"Sec-WebSocket-Protocol: chat, , superchat", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
	"Content-Length: 5", "Transfer-Encoding: chunked", "Host: a", "Host:", " folded: line", "NoColon",
	"Origin: http://evil.example", "X: \x00\x01\x7f", "X: \xff\xfe", ": empty-name", "X Y: space",
}

// mutateRequest applies one random change to an HTTP request.
func mutateRequest(r *rand.Rand, req []byte) []byte {
	if len(req) == 0 { // truncated to nothing by an earlier mutation
		return req
	}
	lines := strings.Split(strings.TrimSuffix(string(req), "\r\n\r\n"), "\r\n")
	switch r.IntN(12) {
	case 0: // flip bits
		b := append([]byte(nil), req...)
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		}
		return b
	case 1: // a random byte anywhere
		b := append([]byte(nil), req...)
		b[r.IntN(len(b))] = []byte{0, '\r', '\n', ':', ' ', 0x80, 0xff, '"', byte(r.Uint32())}[r.IntN(9)]
		return b
	case 2: // truncated
		return append([]byte(nil), req[:r.IntN(len(req))]...)
	case 3: // a line removed
		if len(lines) > 1 {
			i := 1 + r.IntN(len(lines)-1)
			lines = append(lines[:i], lines[i+1:]...)
		}
	case 4: // a line duplicated
		i := r.IntN(len(lines))
		lines = append(lines[:i+1], lines[i:]...)
	case 5: // an odd header
		lines = append(lines, requestLines[r.IntN(len(requestLines))])
	case 6: // a huge header
		lines = append(lines, "X-Big: "+strings.Repeat("a", 1<<(10+r.IntN(6))))
	case 7: // request line
		lines[0] = []string{
			"POST /ws/echo HTTP/1.1", "GET /ws/echo HTTP/1.0", "GET /ws/echo HTTP/2.0", "get /ws/echo HTTP/1.1",
			"GET  /ws/echo HTTP/1.1", "GET http://x/ws/echo HTTP/1.1", "GET * HTTP/1.1", "GET /ws/echo",
			"GET /ws/%zz HTTP/1.1", "GET /ws/echo HTTP/1.1 extra", "GET /ws/nope HTTP/1.1", "GET / HTTP/1.1",
		}[r.IntN(12)]
	case 8: // LF line endings
		return []byte(strings.Join(lines, "\n") + "\n\n")
	case 9: // many headers
		for range 50 + r.IntN(200) {
			lines = append(lines, "X-Many: 1")
		}
	case 10: // a line cut in the middle
		i := r.IntN(len(lines))
		if l := lines[i]; len(l) > 1 {
			lines[i] = l[:r.IntN(len(l))]
		}
	case 11: // header names in another case, values padded
		for i := 1; i < len(lines); i++ {
			if name, value, ok := strings.Cut(lines[i], ":"); ok {
				lines[i] = strings.ToUpper(name) + ":   " + strings.TrimSpace(value) + " \t"
			}
		}
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomText is valid UTF-8 of about n bytes, multi-byte sequences included.
func randomText(r *rand.Rand, n int) []byte {
	pool := []rune{'a', 'z', ' ', '~', 'é', 'ß', '€', '中', '😀', 0x10ffff, 0x7f}
	b := make([]byte, 0, n+4)
	for len(b) < n {
		b = utf8.AppendRune(b, pool[r.IntN(len(pool))])
	}
	return b
}

// invalidUTF8 are byte sequences no UTF-8 text contains.
var invalidUTF8 = [][]byte{
	{0xff}, {0xc0, 0xaf}, {0xe0, 0x80, 0xaf}, {0xed, 0xa0, 0x80}, {0xf4, 0x90, 0x80, 0x80}, {0x80}, {0xc3, 0x28},
}

func payloadSize(r *rand.Rand) int {
	switch r.IntN(10) {
	case 0:
		return 126 + r.IntN(1000) // 16-bit length
	case 1:
		return 65536 + r.IntN(4096) // 64-bit length
	}
	return r.IntN(126)
}

// targetedCase breaks one rule (or none) in a way with one right answer.
func targetedCase(r *rand.Rand, maxMsg int) fuzzCase {
	c := fuzzCase{kind: "targeted", halfClose: true}
	var b []byte
	add := func(f wireFrame) { b = appendFrame(b, f, r) }
	switch k := r.IntN(18); k {
	case 0, 1: // valid text, maybe fragmented with a ping between
		text := randomText(r, min(payloadSize(r), maxMsg-4)) // 4: randomText's overshoot
		if k == 1 && len(text) > 4 {
			cut := 1 + r.IntN(len(text)-1) // inside a rune too: validity is the message's
			add(wireFrame{op: opText, payload: text[:cut], length: -1})
			add(frame(opPing, []byte("p")))
			add(wireFrame{fin: true, op: opCont, payload: text[cut:], length: -1})
			c.wantPong = true
		} else {
			add(frame(opText, text))
		}
		c.wantEcho = [][]byte{text}
		c.chunks = cutPoints(r, len(b), 5) // the server reassembles across reads
		c.wantCode = 1000                  // after the fuzzer's close
	case 2: // valid binary
		p := randomBytes(r, min(payloadSize(r), maxMsg))
		add(frame(opBinary, p))
		c.wantEcho = [][]byte{p}
		c.chunks = cutPoints(r, len(b), 5)
		c.wantCode = 1000
	case 3:
		add(frame([]byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf}[r.IntN(10)], []byte("x")))
		c.wantCode = 1002
	case 4:
		f := frame(opText, []byte("rsv"))
		f.rsv = byte(1 + r.IntN(7))
		add(f)
		c.wantCode = 1002
	case 5:
		f := frame(opText, []byte("unmasked"))
		f.unmasked = true
		add(f)
		c.wantCode = 1002
	case 6:
		add(frame([]byte{opPing, opPong, opClose}[r.IntN(3)], bytes.Repeat([]byte("c"), 126+r.IntN(10))))
		c.wantCode = 1002
	case 7:
		add(wireFrame{op: opPing, payload: []byte("frag"), length: -1})
		c.wantCode = 1002
	case 8:
		add(frame(opCont, []byte("orphan")))
		c.wantCode = 1002
	case 9:
		add(wireFrame{op: opText, payload: []byte("first"), length: -1})
		add(frame([]byte{opText, opBinary}[r.IntN(2)], []byte("second")))
		c.wantCode = 1002
	case 10:
		// A 64-bit length with the most significant bit set, by hand: the
		// encoder's lengths are int64.
		b = append(b, 0x82, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, 1<<63|r.Uint64()>>1)
		b = append(b, 1, 2, 3, 4)
		c.wantCode = 1002
	case 11: // not the minimal length encoding
		f := frame(opBinary, randomBytes(r, r.IntN(126)))
		f.lenForm = []int{16, 64}[r.IntN(2)]
		add(f)
		c.wantCode = 1002
	case 12: // invalid UTF-8 in one frame
		text := randomText(r, r.IntN(100))
		bad := invalidUTF8[r.IntN(len(invalidUTF8))]
		at := 0
		if len(text) > 0 {
			at = r.IntN(len(text))
			for at > 0 && !utf8.RuneStart(text[at]) {
				at--
			}
		}
		p := append(append(append([]byte(nil), text[:at]...), bad...), text[at:]...)
		add(frame(opText, p))
		c.wantCode = 1007
	case 13: // a message ending inside a rune, split over fragments
		add(wireFrame{op: opText, payload: []byte("ok \xe2\x82"), length: -1})
		add(wireFrame{fin: true, op: opCont, payload: nil, length: -1})
		c.wantCode = 1007
	case 14:
		code := []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}[r.IntN(10)]
		add(frame(opClose, closePayload(code, "")))
		c.wantCode = 1002
	case 15:
		add(frame(opClose, []byte{0x03}))
		c.wantCode = 1002
	case 16:
		add(frame(opClose, append(closePayload(1000, "bye "), invalidUTF8[r.IntN(len(invalidUTF8))]...)))
		c.wantCode = 1007
	case 17: // over the message limit: the header alone must be enough
		f := frame([]byte{opText, opBinary}[r.IntN(2)], nil)
		f.length = int64(maxMsg) + 1 + int64(r.IntN(1<<20))
		add(f)
		c.wantCode = 1009
	}
	c.frames = b
	return c
}

// randomFramesCase sends a few frames, some broken at random, in chunks.
func randomFramesCase(r *rand.Rand, maxMsg int) fuzzCase {
	c := fuzzCase{kind: "random", halfClose: true}
	var b []byte
	for range 1 + r.IntN(6) {
		var f wireFrame
		switch r.IntN(7) {
		case 0, 1:
			f = frame(opText, randomText(r, payloadSize(r)))
		case 2:
			f = frame(opBinary, randomBytes(r, payloadSize(r)))
		case 3:
			f = frame(opPing, randomBytes(r, r.IntN(126)))
		case 4:
			f = frame(opPong, randomBytes(r, r.IntN(10)))
		case 5:
			f = wireFrame{fin: r.IntN(2) == 0, op: byte(r.IntN(16)), payload: randomBytes(r, r.IntN(200)), length: -1}
		case 6:
			f = frame(opClose, closePayload(1000+r.IntN(20), string(randomText(r, r.IntN(30)))))
		}
		switch r.IntN(8) { // break the frame's fields
		case 0:
			f.length = int64(r.IntN(len(f.payload) + 50))
		case 1:
			f.length = int64(maxMsg) + int64(r.IntN(100))
		case 2:
			f.rsv = byte(r.IntN(8))
		case 3:
			f.unmasked = r.IntN(4) == 0
		case 4:
			f.lenForm = []int{7, 16, 64}[r.IntN(3)]
			if f.lenForm == 7 && len(f.payload) > 125 {
				f.lenForm = 0
			}
		}
		b = appendFrame(b, f, r)
	}
	switch r.IntN(4) { // break the bytes
	case 0:
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		}
	case 1:
		b = b[:r.IntN(len(b))]
	case 2:
		b = append(b, randomBytes(r, r.IntN(20))...)
	}
	c.frames = b
	c.chunks = cutPoints(r, len(b), 8)
	return c
}
