package session

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Prepared is a message encoded once for many connections: server frames are
// unmasked, so every server-role connection writes the same bytes, and every
// event stream writes the same event. It is immutable and safe to share
// between goroutines.
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
	id       string                 // the event id, "" for none

	eventOnce sync.Once
	event     []byte // the event-stream encoding, made on first use
}

// NewPrepared encodes a message for sending to many connections. p is copied.
func NewPrepared(op Opcode, p []byte) *Prepared { return NewPreparedID(op, p, "") }

// NewPreparedID is NewPrepared for a message with an event id: event
// streams get it as the event's id: field (and send it back as
// Last-Event-ID when they reconnect); WebSocket connections do not see it.
// CR, LF and NUL are left out of it.
func NewPreparedID(op Opcode, p []byte, id string) *Prepared {
	frame := codec.AppendFrame(make([]byte, 0, len(p)+codec.MaxHeaderSize), codec.Server, true, ws.OpCode(op), p)
	hl := len(frame) - len(p)
	return &Prepared{op: op, payload: frame[hl:], frame: frame, id: id}
}

// Frame returns the encoded server-role frame; do not modify it.
func (m *Prepared) Frame() []byte { return m.frame }

// Payload returns the message; do not modify it.
func (m *Prepared) Payload() []byte { return m.payload }

// ID returns the event id, or "".
func (m *Prepared) ID() string { return m.id }

// Event returns the message as one Server-Sent Event: "id: ID" (when it
// has one), a "data: " line per line of a text message (a binary one is
// base64 in an event named "binary"), a blank line. It is made once, on
// first use, and shared by every stream; do not modify it.
func (m *Prepared) Event() []byte {
	m.eventOnce.Do(func() {
		m.event = appendEvent(make([]byte, 0, len(m.id)+len(m.payload)+16), m.id, "", m.op, m.payload)
	})
	return m.event
}

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
