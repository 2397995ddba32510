package session

import (
	"errors"
	"net"

	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Conn is one connection's protocol state. Engines allocate it (usually
// embedded in their own per-connection struct) and drive it; handlers use
// the exported methods above the engine section. Its size is kept at 96
// bytes (see TestConnSize), and an idle open Conn holds no buffer: the
// bytes of a partial header, frame or fragmented message live in pooled
// buffers that go back to their pool as soon as the frame or message is
// complete.
//
// A *Conn is valid from OnOpen until OnClose returns: an engine may then
// reuse its memory for another connection (the epoll engine does). To
// refer to a connection from elsewhere or later, keep its Handle.
type Conn struct {
	cfg   *Config
	t     Transport
	h     Handler
	value any
	proto *string // negotiated subprotocol (nil: none); client handshake: the offers, comma-separated

	// buf holds, in this order: the payload received so far of a message
	// not yet complete, then either the partial payload of a control frame
	// (its last ctrlLen-remaining bytes) or a partial frame header (its last
	// hdrLen bytes). During the handshake it holds a partial request head
	// (server) or the key followed by a partial response head (client).
	buf *[]byte

	remaining uint32  // payload bytes of the current frame not yet received (frames are at most MaxMessage)
	mask      [4]byte // current frame's masking key, rotated as bytes are unmasked

	// Timer stamps in engine milliseconds (wrap-safe uint32 arithmetic).
	lastIn uint32 // last input
	stamp  uint32 // handshake start, ping sent, or close started, by state

	flags   uint16
	state   State
	op      uint8 // current frame's opcode
	msgOp   uint8 // opcode of the message being received; 0 when none
	utf8    codec.UTF8Validator
	hdrLen  uint8 // partial header bytes at the end of buf
	ctrlLen uint8 // length of the control frame being received
}

const (
	fClient        uint16 = 1 << iota
	fInFrame              // between a frame's header and the end of its payload
	fFin                  // the current frame is final
	fDiscard              // the current frame's payload is skipped
	fCloseSent            // a close frame was sent: no more data frames out, data in is discarded
	fCloseRecv            // a close frame was received: input is over
	fReported             // OnClose was called
	fTClosed              // Transport.Close was called or the transport is gone
	fPing                 // a keepalive ping is waiting for any input
	fStampPending         // the closing deadline starts at the next Feed or Tick
	fBusy                 // inside Feed, Tick or InitClient
	fOpened               // the handshake completed
	fInHandler            // inside OnOpen or OnMessage
	fReportPending        // the transport closed during OnOpen/OnMessage: OnClose follows their return
	fOverHW               // the engine's last Write reported HighWater or more bytes waiting
)

// Errors a handler may see in OnClose.
var (
	// ErrCloseTimeout: the peer did not finish the close handshake within
	// Config.CloseTimeout.
	ErrCloseTimeout = errors.New("websocket: close handshake timed out")
	// ErrPongTimeout: nothing arrived within Config.PongTimeout after a ping.
	ErrPongTimeout = errors.New("websocket: no answer to ping")
	// ErrInvalidCloseCode is returned by Close for a code that may not be sent.
	ErrInvalidCloseCode = errors.New("websocket: invalid close code")
	// ErrControlTooLong is returned by Ping for a payload over 125 bytes.
	ErrControlTooLong = errors.New("websocket: control frame payload over 125 bytes")
	// ErrOpcode is returned by Send for an opcode other than Text or Binary.
	ErrOpcode = errors.New("websocket: Send takes Text or Binary")
)

// Protocol violations found by the session (those of single frames are codec's).
var (
	errContinuation = &codec.ProtocolError{Code: ws.StatusProtocolError, Reason: "continuation frame without a message to continue"}
	errInterleaved  = &codec.ProtocolError{Code: ws.StatusProtocolError, Reason: "new data frame inside a fragmented message"}
	errTooBig       = &codec.ProtocolError{Code: ws.StatusMessageTooBig, Reason: "message too big"}
)

// ---- For handlers (call on the connection's goroutine only) ----

// Send sends one message (Text payloads must be valid UTF-8). It returns
// ErrClosed once a close frame was sent or the connection is not open, and
// applies Config.Overflow when the engine already holds HighWater unsent
// bytes: ErrBackpressure (OverflowError), nil after dropping the message
// (OverflowDrop), ErrClosed after starting the close handshake
// (OverflowClose1008, OverflowClose1013). p is not retained or modified.
func (c *Conn) Send(op Opcode, p []byte) error {
	if c.state != StateOpen || c.flags&(fCloseSent|fTClosed) != 0 {
		return ErrClosed
	}
	if op != Text && op != Binary {
		return ErrOpcode
	}
	if ok, err := c.admit(); !ok {
		return err
	}
	return c.writeFrame(op, p)
}

// SendPrepared sends a message prepared once for many connections: a
// server-role connection writes the shared frame as it is. It returns what
// Send returns.
func (c *Conn) SendPrepared(m *Prepared) error {
	if c.flags&fClient != 0 {
		return c.Send(m.op, m.payload)
	}
	if c.state != StateOpen || c.flags&(fCloseSent|fTClosed) != 0 {
		return ErrClosed
	}
	if ok, err := c.admit(); !ok {
		return err
	}
	return c.write(m.frame)
}

// Ping sends a ping with payload p (at most 125 bytes). The peer's pong is
// not reported: any input counts as a sign of life.
func (c *Conn) Ping(p []byte) error {
	if len(p) > 125 {
		return ErrControlTooLong
	}
	if c.state != StateOpen || c.flags&(fCloseSent|fTClosed) != 0 {
		return ErrClosed
	}
	return c.writeControl(ws.OpPing, p)
}

// Close starts the close handshake: it sends a close frame with code and
// reason (cut to fit a control frame; StatusNoStatus sends an empty body)
// and waits (Config.CloseTimeout) for the peer's reply before closing the
// socket. From then on Send returns ErrClosed and incoming data is
// discarded. It returns ErrClosed when a close frame was already sent.
// Before the handshake has completed it closes the socket at once.
func (c *Conn) Close(code StatusCode, reason string) error {
	switch {
	case c.state == StateClosed || c.flags&fTClosed != 0:
		return ErrClosed
	case c.state == StateHandshake || c.state == StateHTTP:
		c.closeTransport()
		return nil
	case c.flags&fCloseSent != 0:
		return ErrClosed
	case code != StatusNoStatus && !codec.ValidCloseCode(code):
		return ErrInvalidCloseCode
	}
	c.state = StateClosing
	c.flags |= fCloseSent
	c.dropMessage()
	err := c.writeClose(code, reason)
	c.scheduleClose()
	return err
}

// Value returns the user value.
func (c *Conn) Value() any { return c.value }

// SetValue sets the user value.
func (c *Conn) SetValue(v any) { c.value = v }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string {
	if c.state == StateHandshake {
		return ""
	}
	if c.proto == nil {
		return ""
	}
	return *c.proto
}

// Handle returns a goroutine-safe reference to this connection.
func (c *Conn) Handle() Handle {
	if c.t == nil {
		return Handle{}
	}
	return c.t.Handle()
}

// RemoteAddr returns the peer's address (nil when the engine does not know it).
func (c *Conn) RemoteAddr() net.Addr {
	if c.t == nil {
		return nil
	}
	return c.t.RemoteAddr()
}

// State returns where the connection is in its life. It only moves forward.
func (c *Conn) State() State { return c.state }

// WriteHTTP answers the plain HTTP request this connection carries (state
// StateHTTP) with a complete response, then closes the connection. It
// returns ErrClosed in any other state.
func (c *Conn) WriteHTTP(resp []byte) error {
	if c.state != StateHTTP || c.flags&fTClosed != 0 {
		return ErrClosed
	}
	err := c.write(resp)
	c.closeTransport()
	return err
}

// ---- For engines ----

// Init starts a server-role connection (cfg.Role is not consulted): it waits
// for the opening handshake, with cfg.HandshakeTimeout armed through
// t.SetTimer. now is the engine clock in nanoseconds. Init resets c
// entirely, so an engine may reuse a Conn after TransportClosed.
func (c *Conn) Init(cfg *Config, t Transport, now int64) {
	*c = Conn{cfg: cfg, t: t}
	c.stamp = msOf(now)
	c.lastIn = c.stamp
	c.arm(now)
}

// InitClient starts a client-role connection on a connected socket (cfg.Role
// is not consulted): it writes the opening handshake for r and waits for the
// response, at most cfg.HandshakeTimeout. h receives the events. When the
// request cannot be written, InitClient reports OnClose(StatusAbnormal, "",
// err), closes the transport and returns err; the engine must not report
// the failure again. r is not retained.
func (c *Conn) InitClient(cfg *Config, t Transport, r *ClientRequest, h Handler, now int64) error {
	*c = Conn{cfg: cfg, t: t, h: h, flags: fClient | fBusy}
	c.stamp = msOf(now)
	c.lastIn = c.stamp
	key := codec.NewKey()
	c.buf = getBuf(512)
	*c.buf = append(*c.buf, key[:]...)
	offers := joinProtocols(r.Protocols)
	if offers != "" {
		c.proto = &offers
	}
	sb := getBuf(512 + len(r.Host) + len(r.Path) + len(r.Origin) + len(r.Extra) + len(offers))
	*sb = codec.AppendClientRequest(*sb, r, key[:])
	_, err := t.Write(*sb)
	putBuf(sb)
	if err != nil {
		c.report(StatusAbnormal, "", err)
		c.closeTransport()
	} else {
		c.arm(now)
	}
	c.exit(now)
	return err
}

// Feed hands the connection bytes read from its socket. It consumes all of
// p and may modify p in place (unmasking); p is not retained. Everything the
// bytes cause (handler calls, writes, closing) happens before it returns.
// now is the engine clock in nanoseconds.
func (c *Conn) Feed(p []byte, now int64) {
	if c.state == StateClosed || c.flags&(fTClosed|fCloseRecv) != 0 {
		return
	}
	c.lastIn = msOf(now)
	c.flags = c.flags&^fPing | fBusy
	switch c.state {
	case StateHandshake:
		if c.flags&fClient != 0 {
			p = c.feedResponse(p, now)
		} else {
			p = c.feedRequest(p, now)
		}
		if len(p) > 0 {
			c.feedFrames(p) // OnOpen may have started closing: the reply is among these bytes
		}
	case StateOpen, StateClosing:
		c.feedFrames(p)
	}
	c.exit(now)
}

// Tick tells the connection the time when a timer it asked for is due (or
// at any other time: a Tick before a deadline re-arms the timer).
func (c *Conn) Tick(now int64) {
	if c.state == StateClosed || c.flags&fTClosed != 0 {
		return
	}
	c.flags |= fBusy
	c.tick(now)
	c.exit(now)
}

// TransportClosed tells the connection its socket is closed (err is nil
// after Transport.Close, or what the engine saw: io.EOF, a reset, ...). It
// delivers OnClose if the connection was open (or is a client-role
// connection) and not yet reported, and puts the Conn in StateClosed,
// returning any pooled buffers. Later calls do nothing.
func (c *Conn) TransportClosed(err error) {
	if c.state == StateClosed {
		return
	}
	c.flags |= fTClosed
	if err == nil {
		err = ErrClosed
	}
	c.report(StatusAbnormal, "", err)
	if c.flags&fOpened != 0 && c.cfg.Stats != nil {
		c.cfg.Stats.Closed.Add(1)
	}
	c.state = StateClosed
	if c.flags&fBusy == 0 {
		c.release()
	}
}

// exit ends a Feed, Tick or InitClient: buffers are returned once no more
// input will be read, and a closing deadline requested meanwhile is stamped.
func (c *Conn) exit(now int64) {
	c.flags &^= fBusy
	if c.state == StateClosed || c.flags&(fTClosed|fCloseRecv) != 0 {
		c.release()
	}
	if c.flags&fStampPending != 0 && c.flags&fTClosed == 0 && c.state != StateClosed {
		c.flags &^= fStampPending
		c.stamp = msOf(now)
		c.arm(now)
	}
}

// release returns the pooled buffer and forgets any partial frame or message.
func (c *Conn) release() {
	if c.buf != nil {
		putBuf(c.buf)
		c.buf = nil
	}
	c.hdrLen, c.ctrlLen, c.msgOp, c.remaining = 0, 0, 0, 0
	c.flags &^= fInFrame | fDiscard | fFin
}

// closeTransport asks the engine to close the socket, once.
func (c *Conn) closeTransport() {
	if c.flags&fTClosed != 0 {
		return
	}
	c.flags |= fTClosed
	c.t.Close()
}

// scheduleClose arms the closing deadline: stamped at the end of the current
// Feed or Tick, or, when called from elsewhere (a Handle task), at a Tick
// requested for as soon as possible.
func (c *Conn) scheduleClose() {
	c.flags |= fStampPending
	if c.flags&fBusy == 0 && c.flags&fTClosed == 0 {
		c.t.SetTimer(1)
	}
}

// report delivers OnClose once, for connections that opened and for
// client-role connections (whose handshake failures are reported too).
//
// Handler methods do not nest: when the transport closes under OnOpen or
// OnMessage (a write failed and the engine closed synchronously), OnClose is
// delivered when that method returns, with ErrClosed.
func (c *Conn) report(code StatusCode, reason string, err error) {
	if c.flags&fReported != 0 || c.flags&(fOpened|fClient) == 0 || c.h == nil {
		return
	}
	if c.flags&fInHandler != 0 {
		c.flags |= fReportPending
		return
	}
	c.flags |= fReported
	defer c.recoverClose()
	c.h.OnClose(c, code, reason, err)
}

// fail fails the connection (RFC 6455 7.1.7): a close frame with code when
// none was sent yet, OnClose with StatusAbnormal (the peer sent no close
// frame) and err, then the socket is closed.
func (c *Conn) fail(code StatusCode, reason string, err error) {
	if c.flags&fTClosed != 0 || c.state == StateClosed {
		return
	}
	if c.flags&fCloseSent == 0 && (c.state == StateOpen || c.state == StateClosing) {
		c.flags |= fCloseSent
		_ = c.writeClose(code, reason)
	}
	if c.state == StateOpen {
		c.state = StateClosing
	}
	c.report(StatusAbnormal, "", err)
	c.closeTransport()
}

// protocolError fails the connection for the peer's violation err (a
// *codec.ProtocolError carrying the close code).
func (c *Conn) protocolError(err error) {
	if c.cfg.Stats != nil {
		c.cfg.Stats.ProtocolErrors.Add(1)
	}
	code := StatusProtocolError
	reason := "protocol error"
	if pe, ok := err.(*codec.ProtocolError); ok {
		code, reason = pe.Code, pe.Reason
	}
	c.fail(code, reason, err)
}
