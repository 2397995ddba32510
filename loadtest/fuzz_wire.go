package loadtest

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"
)

// The network fuzzer speaks the protocol itself, apart from wsloop's codec
// and session: what it sends must be able to break every rule, and what
// it checks the server's output against must not share the server's
// mistakes.

// Opcodes, as on the wire.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

// wireFrame is one client frame to encode; the fields may break the rules.
type wireFrame struct {
	fin      bool
	rsv      byte // 3 bits
	op       byte // 4 bits
	unmasked bool
	payload  []byte
	// length, when >= 0, is the length to declare instead of len(payload).
	length int64
	// lenForm forces the length encoding: 0 minimal, 7, 16 or 64 bits.
	lenForm int
}

func frame(op byte, payload []byte) wireFrame {
	return wireFrame{fin: true, op: op, payload: payload, length: -1}
}

// appendFrame encodes f as a client frame (masked unless f.unmasked) with
// a mask drawn from r.
func appendFrame(dst []byte, f wireFrame, r *rand.Rand) []byte {
	b0 := f.op & 0x0f
	if f.fin {
		b0 |= 0x80
	}
	b0 |= (f.rsv & 7) << 4
	n := f.length
	if n < 0 {
		n = int64(len(f.payload))
	}
	var mask byte = 0x80
	if f.unmasked {
		mask = 0
	}
	form := f.lenForm
	if form == 0 {
		switch {
		case n < 126:
			form = 7
		case n < 1<<16:
			form = 16
		default:
			form = 64
		}
	}
	switch form {
	case 7:
		dst = append(dst, b0, mask|byte(n&0x7f))
	case 16:
		dst = append(dst, b0, mask|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, mask|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if f.unmasked {
		return append(dst, f.payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], r.Uint32())
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.payload...)
	for i := range f.payload {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// handshakeRequest is a valid opening handshake for path and host.
func handshakeRequest(path, host, origin, key string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, host, key)
	if origin != "" {
		fmt.Fprintf(&b, "Origin: %s\r\n", origin)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func newKey(r *rand.Rand) string {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], r.Uint64())
	binary.LittleEndian.PutUint64(k[8:], r.Uint64())
	return base64.StdEncoding.EncodeToString(k[:])
}

func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// httpHead is a parsed response head.
type httpHead struct {
	status int
	header map[string]string // lower-case names, last value
}

// maxResponseHead bounds what is read of a response head.
const maxResponseHead = 16 << 10

// parseResponseHead reads a response head from the start of b: done is
// false while more bytes are needed; err says what is not HTTP.
func parseResponseHead(b []byte) (h httpHead, rest []byte, done bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		// The status line can be judged before the head is complete.
		if line, _, ok := bytes.Cut(b, []byte("\r\n")); ok {
			if _, err := parseStatusLine(line); err != nil {
				return h, nil, false, err
			}
		} else if len(b) >= 12 && !bytes.HasPrefix(b, []byte("HTTP/1.")) {
			return h, nil, false, fmt.Errorf("response does not start with HTTP/1.x: %.40q", b)
		}
		if len(b) > maxResponseHead {
			return h, nil, false, fmt.Errorf("response head over %d bytes", maxResponseHead)
		}
		return h, nil, false, nil
	}
	lines := bytes.Split(b[:end], []byte("\r\n"))
	if h.status, err = parseStatusLine(lines[0]); err != nil {
		return h, nil, false, err
	}
	h.header = map[string]string{}
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return h, nil, false, fmt.Errorf("malformed response header line %.60q", l)
		}
		h.header[string(bytes.ToLower(name))] = string(bytes.TrimSpace(value))
	}
	return h, b[end+4:], true, nil
}

func parseStatusLine(line []byte) (int, error) {
	if len(line) < 12 || !(bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || bytes.HasPrefix(line, []byte("HTTP/1.0 "))) ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("malformed status line %.60q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 599 {
		return 0, fmt.Errorf("malformed status line %.60q", line)
	}
	return code, nil
}

// serverStream checks a server's frames as they arrive: every rule RFC 6455
// sets for a server's output with no extension negotiated.
type serverStream struct {
	buf       []byte
	inMessage bool
	msgOp     byte
	msg       []byte
	maxMsg    int
	closed    bool // a close frame arrived
	closeCode int  // its code; 1005 for an empty body
	pings     [][]byte
	pongs     int
	messages  [][]byte // complete data messages, when keep is set
	keep      bool
	err       error // the first rule broken
}

// validServerCloseCode: what may appear in a close frame on the wire.
func validServerCloseCode(c int) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

func (s *serverStream) fail(format string, a ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, a...)
	}
}

// feed takes the next bytes of the server's output.
func (s *serverStream) feed(p []byte) {
	if s.err != nil {
		return
	}
	if s.closed && len(p) > 0 {
		s.fail("%d bytes after the close frame", len(p))
		return
	}
	s.buf = append(s.buf, p...)
	for s.err == nil && !s.closed {
		n := s.frame(s.buf)
		if n == 0 {
			break
		}
		s.buf = s.buf[n:]
	}
	if s.closed && len(s.buf) > 0 {
		s.fail("%d bytes after the close frame", len(s.buf))
	}
	if len(s.buf) == 0 {
		s.buf = nil
	}
}

// frame parses one frame from b; 0 means incomplete (or a rule broken).
func (s *serverStream) frame(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
	masked, n, hl := b[1]&0x80 != 0, int64(b[1]&0x7f), 2
	if rsv != 0 {
		s.fail("reserved bits %#x set", rsv)
		return 0
	}
	if masked {
		s.fail("masked frame from the server")
		return 0
	}
	switch op {
	case opCont, opText, opBinary, opClose, opPing, opPong:
	default:
		s.fail("reserved opcode %#x", op)
		return 0
	}
	switch n {
	case 126:
		if len(b) < 4 {
			return 0
		}
		n, hl = int64(binary.BigEndian.Uint16(b[2:])), 4
		if n < 126 {
			s.fail("16-bit length %d not minimal", n)
			return 0
		}
	case 127:
		if len(b) < 10 {
			return 0
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 || u < 1<<16 {
			s.fail("64-bit length %d not minimal or over 2^63", u)
			return 0
		}
		n, hl = int64(u), 10
	}
	control := op >= opClose
	if control && (!fin || n > 125) {
		s.fail("control frame %#x with fin=%v length %d", op, fin, n)
		return 0
	}
	if !control && n > int64(s.maxMsg)+1<<16 {
		s.fail("frame of %d bytes, over the message limit", n)
		return 0
	}
	if int64(len(b)-hl) < n {
		return 0
	}
	payload := b[hl : hl+int(n)]
	switch op {
	case opClose:
		s.closed = true
		switch {
		case len(payload) == 0:
			s.closeCode = 1005
		case len(payload) == 1:
			s.fail("close frame with a 1-byte body")
		default:
			s.closeCode = int(binary.BigEndian.Uint16(payload))
			if !validServerCloseCode(s.closeCode) {
				s.fail("close code %d may not be sent", s.closeCode)
			}
			if !utf8.Valid(payload[2:]) {
				s.fail("close reason is not UTF-8: %q", payload[2:])
			}
		}
	case opPing:
		s.pings = append(s.pings, append([]byte(nil), payload...))
	case opPong:
		s.pongs++
	case opText, opBinary:
		if s.inMessage {
			s.fail("new message (opcode %#x) inside a fragmented one", op)
			return 0
		}
		s.inMessage, s.msgOp, s.msg = true, op, s.msg[:0]
		s.data(payload, fin)
	case opCont:
		if !s.inMessage {
			s.fail("continuation frame outside a message")
			return 0
		}
		s.data(payload, fin)
	}
	return hl + int(n)
}

func (s *serverStream) data(p []byte, fin bool) {
	if len(s.msg)+len(p) > s.maxMsg {
		s.fail("message over %d bytes", s.maxMsg)
		return
	}
	s.msg = append(s.msg, p...)
	if !fin {
		return
	}
	s.inMessage = false
	if s.msgOp == opText && !utf8.Valid(s.msg) {
		s.fail("text message is not UTF-8: %.40q", s.msg)
	}
	if s.keep {
		s.messages = append(s.messages, append([]byte(nil), s.msg...))
	}
}
