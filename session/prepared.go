package session

import (
	"sync"

	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Prepared is a message encoded once for many connections: server frames are
// unmasked, so every server-role connection writes the same bytes, and every
// event stream writes the same event. It is immutable and safe to share
// between goroutines.
type Prepared struct {
	op      Opcode
	payload []byte
	frame   []byte // the server-role frame
	id      string // the event id, "" for none

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
