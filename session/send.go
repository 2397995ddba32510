package session

import (
	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// The write path. Frames are encoded into pooled scratch buffers and handed
// to Transport.Write, which copies what the socket does not take at once.
// A client masks a copy: the caller's payload is never modified.

// Payloads above these sizes are written in several Transport.Write calls
// instead of being copied whole into one scratch buffer.
const (
	directWrite = 16 << 10 // server: header, then the caller's payload as it is
	maskChunk   = 32 << 10 // client: masked copies of this size
)

// admit applies Config.Overflow before a data frame is written. The engine's
// buffered count is the one its last Write reported; when that is at or over
// HighWater it is refreshed with an empty Write (the engine may have drained
// since), so a stale count can only delay a message, never let the buffer
// grow past the mark.
func (c *Conn) admit() (bool, error) {
	if c.flags&fOverHW == 0 {
		return true, nil
	}
	if err := c.write(nil); err != nil {
		return false, err
	}
	if c.flags&fOverHW == 0 {
		return true, nil
	}
	switch c.cfg.Overflow {
	case OverflowDrop:
		if c.cfg.Stats != nil {
			c.cfg.Stats.Dropped.Add(1)
		}
		return false, nil
	case OverflowClose1008:
		_ = c.Close(StatusPolicy, "send buffer full")
		return false, ErrClosed
	case OverflowClose1013:
		_ = c.Close(StatusTryAgainLater, "send buffer full")
		return false, ErrClosed
	}
	return false, ErrBackpressure
}

// write hands b to the engine and records its buffered count. A write error
// means the socket is gone: the transport is closed (the engine reports it
// through TransportClosed).
func (c *Conn) write(b []byte) error {
	if c.flags&fTClosed != 0 {
		return ErrClosed
	}
	n, err := c.t.Write(b)
	if n >= c.cfg.highWater() {
		c.flags |= fOverHW
	} else {
		c.flags &^= fOverHW
	}
	if err != nil {
		c.closeTransport()
	}
	return err
}

// writeFrame writes one final data frame.
func (c *Conn) writeFrame(op ws.OpCode, p []byte) error {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}
	client := c.flags&fClient != 0
	if client {
		h.Masked = true
		h.Mask = codec.NewMask()
	}
	switch {
	case !client && len(p) > directWrite:
		sb := getBuf(codec.MaxHeaderSize)
		*sb = codec.AppendHeader(*sb, h)
		err := c.write(*sb)
		putBuf(sb)
		if err != nil {
			return err
		}
		return c.write(p)
	case client && len(p) > maskChunk:
		sb := getBuf(maskChunk)
		*sb = codec.AppendHeader(*sb, h)
		err := c.write(*sb)
		for off := 0; err == nil && off < len(p); off += maskChunk {
			part := p[off:min(off+maskChunk, len(p))]
			b := append((*sb)[:0], part...)
			codec.Unmask(b, h.Mask, off)
			err = c.write(b)
		}
		putBuf(sb)
		return err
	}
	sb := getBuf(codec.MaxHeaderSize + len(p))
	b := codec.AppendHeader(*sb, h)
	start := len(b)
	b = append(b, p...)
	if client {
		codec.Unmask(b[start:], h.Mask, 0)
	}
	*sb = b
	err := c.write(b)
	putBuf(sb)
	return err
}

// writeControl writes a control frame (p at most 125 bytes).
func (c *Conn) writeControl(op ws.OpCode, p []byte) error {
	sb := getBuf(codec.MaxHeaderSize + len(p))
	*sb = codec.AppendFrame(*sb, c.role(), true, op, p)
	err := c.write(*sb)
	putBuf(sb)
	return err
}

// writeClose writes a close frame with code and reason (an empty body for
// StatusNoStatus).
func (c *Conn) writeClose(code StatusCode, reason string) error {
	var body [125]byte
	return c.writeControl(ws.OpClose, codec.AppendClosePayload(body[:0], code, reason))
}

// writePing writes a keepalive ping: the shared pre-encoded frame for a
// server, a freshly masked empty ping for a client.
func (c *Conn) writePing() error {
	if c.flags&fClient == 0 {
		return c.write(ws.CompiledPing)
	}
	return c.writeControl(ws.OpPing, nil)
}
