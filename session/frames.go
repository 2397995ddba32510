package session

import (
	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// The read path. feedFrames consumes bytes in whatever pieces the engine read
// them: a frame whose payload is entirely in p and that completes a message
// by itself is delivered straight out of p (unmasked in place, no copy);
// everything else (split headers, split payloads, fragments) goes through
// c.buf, which returns to its pool when the frame or message completes.

func (c *Conn) role() codec.Role {
	if c.flags&fClient != 0 {
		return codec.Client
	}
	return codec.Server
}

// reading reports whether input is still processed.
func (c *Conn) reading() bool {
	return c.flags&(fTClosed|fCloseRecv) == 0 && (c.state == StateOpen || c.state == StateClosing)
}

func (c *Conn) feedFrames(p []byte) {
	for len(p) > 0 && c.reading() {
		if c.flags&fInFrame == 0 {
			p = c.readHeader(p)
		} else {
			p = c.readPayload(p)
		}
	}
}

// readHeader parses the next frame header, completing a partial one kept in
// buf, and starts the frame. It returns the bytes after what it consumed.
func (c *Conn) readHeader(p []byte) []byte {
	var (
		h   ws.Header
		n   int
		err error
	)
	if c.hdrLen > 0 {
		var tmp [codec.MaxHeaderSize]byte
		b := *c.buf
		k := copy(tmp[:], b[len(b)-int(c.hdrLen):])
		m := copy(tmp[k:], p)
		h, n, err = codec.ParseHeader(tmp[:k+m], c.role(), c.rsvAllowed())
		if err != nil {
			c.protocolError(err)
			return nil
		}
		if n == 0 {
			// Still partial; with fewer than 14 bytes in all, m == len(p).
			c.appendBuf(p, 0)
			c.hdrLen += uint8(len(p))
			return nil
		}
		*c.buf = b[:len(b)-int(c.hdrLen)]
		c.hdrLen = 0
		p = p[n-k:]
		c.releaseIfEmpty()
	} else {
		h, n, err = codec.ParseHeader(p, c.role(), c.rsvAllowed())
		if err != nil {
			c.protocolError(err)
			return nil
		}
		if n == 0 {
			c.appendBuf(p, 0)
			c.hdrLen = uint8(len(p))
			return nil
		}
		p = p[n:]
	}
	return c.beginFrame(h, p)
}

// beginFrame applies the message-level rules to a parsed header and, when
// possible, handles the whole frame out of p.
func (c *Conn) beginFrame(h ws.Header, p []byte) []byte {
	if h.OpCode.IsControl() {
		if int64(len(p)) >= h.Length {
			pl := p[:h.Length]
			if h.Masked {
				codec.Unmask(pl, h.Mask, 0)
			}
			c.control(h.OpCode, pl)
			return p[h.Length:]
		}
		c.startFrame(h)
		c.ctrlLen = uint8(h.Length)
		return p
	}
	if c.flags&fCloseSent != 0 {
		// Closing: data frames are read past and dropped; one too large to
		// count is not worth reading past.
		if h.Length > maxMessageCap {
			c.closeTransport()
			return nil
		}
		c.startFrame(h)
		c.flags |= fDiscard
		if h.Length == 0 {
			c.flags &^= fInFrame | fDiscard
		}
		return p
	}
	if h.OpCode == ws.OpContinuation {
		if c.msgOp == 0 {
			c.protocolError(errContinuation)
			return nil
		}
		if h.Rsv&rsv1 != 0 {
			// RFC 7692 6.1: only a message's first frame says it is compressed.
			c.protocolError(errRsv1Continuation)
			return nil
		}
	} else if c.msgOp != 0 {
		c.protocolError(errInterleaved)
		return nil
	}
	cur := c.dataLen()
	if h.OpCode != ws.OpContinuation {
		c.msgOp = uint8(h.OpCode)
		if h.Rsv&rsv1 != 0 {
			c.msgOp |= msgDeflated
		}
		c.utf8.Reset()
	}
	limit := c.cfg.maxMessage()
	if c.msgOp&msgDeflated != 0 {
		limit = c.maxCompressed() // the inflated size is checked while inflating
	}
	if h.Length > int64(limit-cur) {
		c.protocolError(errTooBig)
		return nil
	}
	if h.Fin && cur == 0 && int64(len(p)) >= h.Length {
		// The whole message is here: deliver it in place.
		pl := p[:h.Length]
		if h.Masked {
			codec.Unmask(pl, h.Mask, 0)
		}
		op := ws.OpCode(c.msgOp &^ msgDeflated)
		deflated := c.msgOp&msgDeflated != 0
		c.msgOp = 0
		if deflated {
			if !c.deliverDeflated(op, pl) {
				return nil
			}
			return p[h.Length:]
		}
		if op == ws.OpText && !(c.utf8.Write(pl) && c.utf8.Complete()) {
			c.protocolError(codec.ErrInvalidUTF8)
			return nil
		}
		c.deliver(op, pl)
		return p[h.Length:]
	}
	c.startFrame(h)
	if h.Length == 0 {
		c.endDataFrame()
	}
	return p
}

func (c *Conn) startFrame(h ws.Header) {
	c.flags |= fInFrame
	c.flags &^= fFin | fDiscard
	if h.Fin {
		c.flags |= fFin
	}
	c.op = uint8(h.OpCode)
	c.remaining = uint32(h.Length) // bounded by the callers: MaxMessage, 125 or maxMessageCap
	c.mask = h.Mask
}

// readPayload consumes payload bytes of the current frame.
func (c *Conn) readPayload(p []byte) []byte {
	k := len(p)
	if uint64(k) > uint64(c.remaining) {
		k = int(c.remaining)
	}
	chunk, rest := p[:k], p[k:]
	c.remaining -= uint32(k)
	if c.flags&fDiscard != 0 {
		if c.remaining == 0 {
			c.flags &^= fInFrame | fDiscard
		}
		return rest
	}
	if c.flags&fClient == 0 {
		codec.Unmask(chunk, c.mask, 0)
		// Rotate the key so that the next piece starts at offset 0.
		s := k & 3
		c.mask = [4]byte{c.mask[s&3], c.mask[(s+1)&3], c.mask[(s+2)&3], c.mask[(s+3)&3]}
	}
	op := ws.OpCode(c.op)
	if op.IsControl() {
		c.appendBuf(chunk, 0)
		if c.remaining > 0 {
			return rest
		}
		c.flags &^= fInFrame
		b := *c.buf
		n := int(c.ctrlLen)
		c.control(op, b[len(b)-n:])
		if c.buf != nil {
			*c.buf = (*c.buf)[:len(*c.buf)-n]
		}
		c.ctrlLen = 0
		c.releaseIfEmpty()
		return rest
	}
	if c.msgOp == uint8(ws.OpText) && !c.utf8.Write(chunk) {
		// Fail fast: no completion of this text can be valid. (Compressed
		// text is checked once inflated: msgOp has msgDeflated set.)
		c.protocolError(codec.ErrInvalidUTF8)
		return nil
	}
	c.appendBuf(chunk, int(c.remaining))
	if c.remaining == 0 {
		c.endDataFrame()
	}
	return rest
}

// endDataFrame finishes a data frame whose payload is all in buf (or empty).
func (c *Conn) endDataFrame() {
	c.flags &^= fInFrame
	if c.flags&fFin == 0 {
		return
	}
	op := ws.OpCode(c.msgOp &^ msgDeflated)
	deflated := c.msgOp&msgDeflated != 0
	c.msgOp = 0
	if !deflated && op == ws.OpText && !c.utf8.Complete() {
		c.protocolError(codec.ErrInvalidUTF8)
		return
	}
	var pl []byte
	if c.buf != nil {
		pl = *c.buf
	}
	if deflated {
		if !c.deliverDeflated(op, pl) {
			return
		}
	} else {
		c.deliver(op, pl)
	}
	c.releaseData()
}

// dataLen is the length of the partial message in buf.
func (c *Conn) dataLen() int {
	if c.buf == nil {
		return 0
	}
	n := len(*c.buf) - int(c.hdrLen)
	if c.flags&fInFrame != 0 && ws.OpCode(c.op).IsControl() {
		n -= int(c.ctrlLen) - int(c.remaining)
	}
	return n
}

// appendBuf appends p to buf, growing it through the pools; more is how many
// further bytes of the same kind are announced (a sizing hint).
func (c *Conn) appendBuf(p []byte, more int) {
	if len(p) == 0 {
		return
	}
	need := len(p)
	if c.buf != nil {
		need += len(*c.buf)
	}
	if c.buf == nil || cap(*c.buf) < need {
		c.buf = growBuf(c.buf, need, need+more)
	}
	*c.buf = append(*c.buf, p...)
}

// releaseData drops the delivered message from buf.
func (c *Conn) releaseData() {
	if c.buf == nil {
		return
	}
	b := *c.buf
	tail := int(c.hdrLen)
	if c.flags&fInFrame != 0 && ws.OpCode(c.op).IsControl() {
		tail += int(c.ctrlLen) - int(c.remaining)
	}
	n := copy(b, b[len(b)-tail:])
	*c.buf = b[:n]
	c.releaseIfEmpty()
}

func (c *Conn) releaseIfEmpty() {
	if c.buf != nil && len(*c.buf) == 0 {
		putBuf(c.buf)
		c.buf = nil
	}
}

// dropMessage forgets the message being received (a close frame was sent).
func (c *Conn) dropMessage() {
	if c.flags&fInFrame != 0 && !ws.OpCode(c.op).IsControl() {
		c.flags |= fDiscard
	}
	c.msgOp = 0
	c.releaseData()
}

// deliver hands a complete message to the handler.
func (c *Conn) deliver(op ws.OpCode, p []byte) {
	if c.cfg.Stats != nil {
		c.cfg.Stats.Messages.Add(1)
	}
	c.io.Events.In++
	c.io.Events.InBytes += len(p)
	defer c.handlerDone()
	c.h.OnMessage(c, Opcode(op), p)
}

// control handles a complete control frame.
func (c *Conn) control(op ws.OpCode, p []byte) {
	switch op {
	case ws.OpPing:
		if c.state == StateOpen && c.flags&fCloseSent == 0 {
			c.pong(p)
		}
	case ws.OpClose:
		code, reason, err := codec.ParseClose(p)
		if err != nil {
			if c.flags&fCloseSent != 0 {
				// Our close is out already: just end the connection.
				if c.cfg.Stats != nil {
					c.cfg.Stats.ProtocolErrors.Add(1)
				}
				c.report(StatusAbnormal, "", protocolErr(err))
				c.closeTransport()
				return
			}
			c.protocolError(err)
			return
		}
		c.closeReceived(StatusCode(code), string(reason))
	}
	// Pongs: any input already counted as a sign of life.
}

// closeReceived completes (or answers) the close handshake.
func (c *Conn) closeReceived(code StatusCode, reason string) {
	c.flags |= fCloseRecv
	replied := c.flags&fCloseSent == 0
	if replied {
		c.flags |= fCloseSent
		c.writeClose(code, "")
	}
	c.state = StateClosing
	c.report(code, reason, nil)
	if c.flags&fClient == 0 {
		// RFC 6455 7.1.1: the server closes the TCP connection first.
		c.closeTransport()
		return
	}
	// The client waits for the server to close, at most CloseTimeout (from
	// its own close frame when it started the handshake).
	if replied {
		c.stamp = msOf(c.io.Now)
		c.io.Rearm = true
	}
}
