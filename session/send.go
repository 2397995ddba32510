package session

import (
	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// The write path. Frames are encoded straight into the engine call's
// IO.Out; the engine writes them when the call returns and keeps what the
// socket does not take, counted in IO.Queued on later calls. A client masks
// the copy in Out: the caller's payload is never modified.

// Opcodes of control frames, for the codec.
const (
	ctlClose = ws.OpClose
	ctlPing  = ws.OpPing
	ctlPong  = ws.OpPong
)

func wsStatus(code StatusCode) ws.StatusCode { return ws.StatusCode(code) }

// frameSize is the encoded size of a final data frame with an n-byte payload.
func frameSize(n int, masked bool) int {
	h := 2
	switch {
	case n > 0xffff:
		h = 10
	case n > 125:
		h = 4
	}
	if masked {
		h += 4
	}
	return h + n
}

// admit applies Config.Overflow before a data frame is queued: every byte
// the engine holds for the connection and every byte of this call's output
// count. A frame is admitted while they are under HighWater (the one that
// crosses the mark included), refused once they are at or over it.
func (c *Conn) admit() error {
	io := c.io
	if io.Queued+len(io.Out)+len(io.Pong) < c.cfg.highWater() {
		return nil
	}
	io.Events.Overflowed++
	st := c.cfg.Stats
	switch c.cfg.Overflow {
	case OverflowDrop:
		if st != nil {
			st.Dropped.Add(1)
		}
		c.flags |= fWantDrain
		return ErrDropped
	case OverflowError:
		c.flags |= fWantDrain
		return ErrBackpressure
	}
	if st != nil {
		st.SlowClosed.Add(1)
	}
	code := StatusPolicy
	if c.cfg.Overflow == OverflowClose1013 {
		code = StatusTryAgainLater
	}
	_ = c.Close(code, "slow consumer: send queue over its limit")
	return ErrClosed
}

// appendFrame encodes one final data frame into the call's output,
// compressed when permessage-deflate was negotiated and p is long enough
// to be worth it.
func (c *Conn) appendFrame(op Opcode, p []byte) {
	if c.shouldDeflate(len(p)) && c.appendDeflatedFrame(op, p) {
		return
	}
	io := c.io
	h := ws.Header{Fin: true, OpCode: ws.OpCode(op), Length: int64(len(p))}
	client := c.flags&fClient != 0
	if client {
		h.Masked = true
		h.Mask = codec.NewMask()
	}
	io.Out = codec.AppendHeader(io.Out, h)
	start := len(io.Out)
	io.Out = append(io.Out, p...)
	if client {
		codec.Unmask(io.Out[start:], h.Mask, 0)
	}
}

// writeControl writes a control frame (p at most 125 bytes).
func (c *Conn) writeControl(op ws.OpCode, p []byte) {
	c.io.Out = codec.AppendFrame(c.io.Out, c.role(), true, op, p)
}

// pong answers a ping. While the connection's unsent bytes stay within
// HighWater, a pong is sent in order, one per ping (as Autobahn checks);
// past it only the latest unanswered ping is answered (RFC 6455 5.5.3
// allows it): the pong waits in IO.Pong, replacing one earlier in this call,
// and the engine keeps at most one per connection, so a peer that pings
// without reading cannot make its pongs pile up.
func (c *Conn) pong(p []byte) {
	io := c.io
	if len(io.Pong) == 0 && io.Queued+len(io.Out)+frameSize(len(p), c.flags&fClient != 0) <= c.cfg.highWater() {
		io.Out = codec.AppendFrame(io.Out, c.role(), true, ctlPong, p)
		return
	}
	io.Pong = codec.AppendFrame(io.Pong[:0], c.role(), true, ctlPong, p)
}

// writeClose writes a close frame with code and reason (an empty body for
// StatusNoStatus). A pong of this call goes first: nothing follows a close.
func (c *Conn) writeClose(code StatusCode, reason string) {
	io := c.io
	if len(io.Pong) > 0 {
		io.Out = append(io.Out, io.Pong...)
		io.Pong = io.Pong[:0]
	}
	var body [125]byte
	c.writeControl(ctlClose, codec.AppendClosePayload(body[:0], wsStatus(code), reason))
	io.Final = true
}

// writePing writes a keepalive ping: the shared pre-encoded frame for a
// server, a freshly masked empty ping for a client.
func (c *Conn) writePing() {
	if c.flags&fClient == 0 {
		c.io.Out = append(c.io.Out, ws.CompiledPing...)
		return
	}
	c.writeControl(ctlPing, nil)
}
