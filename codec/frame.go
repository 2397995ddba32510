package codec

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// Role is the side of the connection this end plays. It decides which frames
// must be masked (RFC 6455 5.1: client to server always, server to client never).
type Role uint8

const (
	// Server is the accepting side: it reads masked frames and writes unmasked ones.
	Server Role = iota
	// Client is the connecting side: it reads unmasked frames and writes masked ones.
	Client
)

func (r Role) String() string {
	if r == Client {
		return "client"
	}
	return "server"
}

// MaxHeaderSize is the largest frame header: 2 bytes, 8 bytes of extended
// length and a 4-byte masking key.
const MaxHeaderSize = 14

// ParseHeader parses the frame header at the start of p as received by role r.
// rsv is the set of reserved bits a negotiated extension allows (0 when none:
// then any reserved bit is a protocol error).
//
// It returns the header and the number of bytes it occupies. When p holds only
// part of a header it returns n == 0 and a nil error: call again with more bytes.
// It never reads past p. A header that breaks RFC 6455 yields a *ProtocolError
// carrying the close code to fail the connection with.
func ParseHeader(p []byte, r Role, rsv byte) (h ws.Header, n int, err error) {
	if len(p) < 2 {
		return h, 0, nil
	}
	b0, b1 := p[0], p[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.OpCode = ws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0

	if h.Rsv&^rsv != 0 {
		return h, 0, ErrReservedBits
	}
	switch {
	case h.OpCode.IsReserved():
		return h, 0, ErrReservedOpcode
	case h.OpCode.IsControl():
		if !h.Fin {
			return h, 0, ErrFragmentedControl
		}
		if b1&0x7f > 125 {
			return h, 0, ErrControlTooLong
		}
		if h.Rsv != 0 {
			// No extension defines reserved bits on control frames (RFC 7692 6).
			return h, 0, ErrReservedBits
		}
	}
	if r == Server && !h.Masked {
		return h, 0, ErrUnmasked
	}
	if r == Client && h.Masked {
		return h, 0, ErrMasked
	}

	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(p) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(p[2:4]))
		if h.Length < 126 {
			return h, 0, ErrNonMinimalLength
		}
		n = 4
	case 127:
		if len(p) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(p[2:10])
		if u>>63 != 0 {
			return h, 0, ErrLengthOverflow
		}
		if u <= 0xffff {
			return h, 0, ErrNonMinimalLength
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(p) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], p[n:n+4])
		n += 4
	}
	return h, n, nil
}

// HeaderSize returns how many bytes AppendHeader writes for h.
func HeaderSize(h ws.Header) int {
	n := 2
	switch {
	case h.Length > 0xffff:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends the wire form of h to dst, using the minimal length
// encoding. It does not validate h: build headers with the helpers or follow
// RFC 6455 5.2.
func AppendHeader(dst []byte, h ws.Header) []byte {
	b0 := byte(h.OpCode&0x0f) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length > 0xffff:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	case h.Length > 125:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|byte(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}

// NewMask returns a fresh masking key. RFC 6455 5.3 asks for a key an
// intermediary cannot predict; math/rand/v2's global source is the runtime's
// ChaCha8 generator seeded from the OS, which is unpredictable and, unlike
// crypto/rand, costs no system call per frame.
func NewMask() (m [4]byte) {
	binary.LittleEndian.PutUint32(m[:], rand.Uint32())
	return m
}

// AppendFrame appends one complete frame carrying payload to dst as sent by
// role r: unmasked for a server, masked with a fresh key for a client (the
// payload is copied, never modified).
func AppendFrame(dst []byte, r Role, fin bool, op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))}
	if r == Client {
		h.Masked = true
		h.Mask = NewMask()
	}
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if h.Masked {
		ws.Cipher(dst[start:], h.Mask, 0)
	}
	return dst
}

// Unmask applies the masking key in place to p, which starts at byte offset
// off of the frame's payload: a payload that arrives in pieces is unmasked
// piece by piece with increasing offsets. Masking is its own inverse.
func Unmask(p []byte, mask [4]byte, off int) {
	ws.Cipher(p, mask, off)
}
