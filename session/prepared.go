package session

import (
	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Prepared is a message encoded once for many connections: server frames are
// unmasked, so every server-role connection writes the same bytes. It is
// immutable and safe to share between goroutines.
type Prepared struct {
	op      Opcode
	payload []byte
	frame   []byte // the server-role frame
}

// NewPrepared encodes a message for sending to many connections. p is copied.
func NewPrepared(op Opcode, p []byte) *Prepared {
	frame := codec.AppendFrame(make([]byte, 0, len(p)+codec.MaxHeaderSize), codec.Server, true, ws.OpCode(op), p)
	hl := len(frame) - len(p)
	return &Prepared{op: op, payload: frame[hl:], frame: frame}
}

// Frame returns the encoded server-role frame; do not modify it.
func (m *Prepared) Frame() []byte { return m.frame }
