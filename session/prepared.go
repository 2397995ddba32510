package session

import (
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Prepared is a message encoded once for many connections: server frames are
// unmasked, so every server-role connection writes the same bytes. It is
// immutable and safe to share between goroutines.
//
// Its compressed frame (for connections that negotiated permessage-deflate)
// is made once too, by the first such connection that sends it, with its
// loop's compressor; loops that race to make it each make it at most once
// and one result is kept. A payload that does not shrink is remembered as
// such and sent uncompressed.
type Prepared struct {
	op       Opcode
	payload  []byte
	frame    []byte                 // the server-role frame
	deflated atomic.Pointer[[]byte] // the compressed server-role frame; empty: compression does not pay
}

// NewPrepared encodes a message for sending to many connections. p is copied.
func NewPrepared(op Opcode, p []byte) *Prepared {
	frame := codec.AppendFrame(make([]byte, 0, len(p)+codec.MaxHeaderSize), codec.Server, true, ws.OpCode(op), p)
	hl := len(frame) - len(p)
	return &Prepared{op: op, payload: frame[hl:], frame: frame}
}

// Frame returns the encoded server-role frame; do not modify it.
func (m *Prepared) Frame() []byte { return m.frame }

// deflatedFrame returns the compressed server-role frame, making it on
// first use with the calling loop's compressor (io); empty when the payload
// does not shrink.
func (m *Prepared) deflatedFrame(io *IO) []byte {
	if f := m.deflated.Load(); f != nil {
		return *f
	}
	// Compress behind room for the largest header, then put the header
	// right in front of the body.
	const hmax = codec.MaxHeaderSize - 4
	out, shrank := io.loopFlate().appendDeflated(make([]byte, hmax, hmax+len(m.payload)), m.payload, 15)
	var f []byte
	if shrank {
		h := ws.Header{Fin: true, Rsv: rsv1, OpCode: ws.OpCode(m.op), Length: int64(len(out) - hmax)}
		hs := codec.HeaderSize(h)
		f = out[hmax-hs:]
		codec.AppendHeader(f[:0], h)
	}
	m.deflated.CompareAndSwap(nil, &f)
	return *m.deflated.Load()
}

// appendPrepared writes m's frame for server-role connection c: the shared
// compressed frame when c compresses and m's payload is worth it, else the
// plain one.
func (c *Conn) appendPrepared(m *Prepared) {
	if c.shouldDeflate(len(m.payload)) {
		if bits := c.sendWindow(); bits < 15 && len(m.payload) > 1<<bits {
			// The shared frame may reach further back than the peer
			// allows (it asked for a small window): compressed for c alone.
			c.appendFrame(m.op, m.payload)
			return
		}
		if f := m.deflatedFrame(c.io); len(f) > 0 {
			c.io.Out = append(c.io.Out, f...)
			if st := c.cfg.Stats; st != nil {
				st.Deflated.Add(1)
			}
			return
		}
	}
	c.io.Out = append(c.io.Out, m.frame...)
}
