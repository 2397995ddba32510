package session

import (
	"errors"
	"net"

	"github.com/wsloop/wsloop/codec"
)

// Conn is one connection as its handler sees it: the methods below. Its
// engine drives the same memory through a Machine. Its size is kept at 88
// bytes (see TestConnSize), and an idle open Conn holds no buffer: the bytes
// of a partial header, frame or fragmented message live in pooled buffers
// that go back to their pool as soon as the frame or message is complete,
// and what it sends is handed to its engine at the end of each call.
//
// A *Conn is used on its own loop only, inside its handler's calls and the
// tasks run through its Handle; elsewhere its methods that act return
// ErrNotOnLoop. It is valid from OnOpen until OnClose returns: an engine may
// then reuse its memory for another connection (the epoll engine does). To
// refer to a connection from elsewhere or later, keep its Handle.
type Conn struct {
	cfg   *Config
	h     Handler
	value any
	proto *string // negotiated subprotocol (nil: none); client handshake: the offers, comma-separated

	// buf holds, in this order: the payload received so far of a message
	// not yet complete, then either the partial payload of a control frame
	// (its last ctrlLen-remaining bytes) or a partial frame header (its last
	// hdrLen bytes). During the handshake it holds a partial request head
	// (server) or the key followed by a partial response head (client).
	buf *[]byte

	// io is the engine call in progress; nil between calls.
	io *IO

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
	fClient    uint16 = 1 << iota
	fInFrame          // between a frame's header and the end of its payload
	fFin              // the current frame is final
	fDiscard          // the current frame's payload is skipped
	fCloseSent        // a close frame was sent: no more data frames out, data in is discarded
	fCloseRecv        // a close frame was received: input is over
	fReported         // OnClose was called
	fTClosed          // the engine was asked to close the socket, or it is gone
	fPing             // a keepalive ping is waiting for any input
	fOpened           // the handshake completed
	fWantDrain        // a Send was refused: OnDrain when the queue empties
	fKeepAlive        // the plain HTTP request being answered allows keep-alive
	fBody             // a plain request's body is being collected in buf (remaining: bytes still due)

	// Bits 13-15 hold permessage-deflate: 0 when it is off, else the LZ77
	// window this end may compress within (the peer's
	// server_max_window_bits or client_max_window_bits; see deflateCode).
	// A client sets them when it offers compression and keeps them if the
	// server accepts.
	fDeflateShift        = 13
	fDeflate      uint16 = 7 << fDeflateShift
)

// Errors a handler may see in OnClose or from a method.
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
	errContinuation = &codec.ProtocolError{Code: 1002, Reason: "continuation frame without a message to continue"}
	errInterleaved  = &codec.ProtocolError{Code: 1002, Reason: "new data frame inside a fragmented message"}
	errTooBig       = &codec.ProtocolError{Code: 1009, Reason: "message too big"}
)

// sendable reports why no frame may be sent now, or nil.
func (c *Conn) sendable() error {
	switch {
	case c.io == nil:
		return ErrNotOnLoop
	case c.state != StateOpen && c.state != StateStream || c.flags&(fCloseSent|fTClosed) != 0:
		return ErrClosed
	}
	return nil
}

// Send sends one message (Text payloads must be valid UTF-8); on an event
// stream, as an event without an id (see Prepared.Event). It returns
// ErrClosed once a close frame was sent or the connection is not open, and
// applies Config.Overflow when the connection already holds HighWater or
// more unsent bytes:
// ErrClosed after starting the close handshake (OverflowClose1008, the
// default, and OverflowClose1013), ErrDropped (OverflowDrop) or
// ErrBackpressure (OverflowError). p is not retained or modified.
func (c *Conn) Send(op Opcode, p []byte) error {
	if err := c.sendable(); err != nil {
		return err
	}
	if op != Text && op != Binary {
		return ErrOpcode
	}
	if err := c.admit(); err != nil {
		return err
	}
	if c.state == StateStream {
		c.io.Out = appendEvent(c.io.Out, "", "", op, p)
		c.streamOut()
	} else {
		c.appendFrame(op, p)
	}
	c.io.Events.Out++
	c.io.Events.OutBytes += len(p)
	return nil
}

// SendPrepared sends a message prepared once for many connections: a
// server-role connection writes the shared frame as it is (the shared
// compressed frame when it negotiated compression), an event stream the
// shared event (Prepared.Event). It returns what Send returns.
func (c *Conn) SendPrepared(m *Prepared) error {
	if c.flags&fClient != 0 {
		return c.Send(m.op, m.payload)
	}
	if err := c.sendable(); err != nil {
		return err
	}
	if err := c.admit(); err != nil {
		return err
	}
	if c.state == StateStream {
		c.io.Out = append(c.io.Out, m.Event()...)
		c.streamOut()
	} else {
		c.appendPrepared(m)
	}
	c.io.Events.Out++
	c.io.Events.OutBytes += len(m.payload)
	return nil
}

// Ping sends a ping with payload p (at most 125 bytes). The peer's pong is
// not reported: any input counts as a sign of life. On an event stream it
// writes the heartbeat comment instead (p is not sent).
func (c *Conn) Ping(p []byte) error {
	if len(p) > 125 {
		return ErrControlTooLong
	}
	if err := c.sendable(); err != nil {
		return err
	}
	if c.state == StateStream {
		c.io.Out = append(c.io.Out, heartbeat...)
		c.streamOut()
		return nil
	}
	c.writeControl(ctlPing, p)
	return nil
}

// Close starts the close handshake: it sends a close frame with code and
// reason (cut to fit a control frame; StatusNoStatus sends an empty body)
// and waits (Config.CloseTimeout) for the peer's reply before closing the
// socket. From then on Send returns ErrClosed and incoming data is
// discarded. It returns ErrClosed when a close frame was already sent.
// Before the handshake has completed it closes the socket at once. An event
// stream ends once what it has queued is written (reason is not sent; code
// is what its OnClose hears).
func (c *Conn) Close(code StatusCode, reason string) error {
	switch {
	case c.io == nil:
		return ErrNotOnLoop
	case c.state == StateClosed || c.flags&fTClosed != 0:
		return ErrClosed
	case c.state == StateHandshake || c.state == StateHTTP:
		c.closeTransport()
		return nil
	case c.state == StateStream:
		c.closeStream(code)
		return nil
	case c.flags&fCloseSent != 0:
		return ErrClosed
	case code != StatusNoStatus && !codec.ValidCloseCode(wsStatus(code)):
		return ErrInvalidCloseCode
	}
	c.state = StateClosing
	c.flags |= fCloseSent
	c.dropMessage()
	c.writeClose(code, reason)
	c.stamp = msOf(c.io.Now)
	c.io.Rearm = true
	return nil
}

// Value returns the user value.
func (c *Conn) Value() any { return c.value }

// SetValue sets the user value.
func (c *Conn) SetValue(v any) { c.value = v }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string {
	if c.state == StateHandshake || c.proto == nil {
		return ""
	}
	return *c.proto
}

// Handle returns a goroutine-safe reference to this connection (the zero
// Handle outside the connection's own calls).
func (c *Conn) Handle() Handle {
	if c.io == nil {
		return Handle{}
	}
	return Handle{c.io.Exec, c.io.ID}
}

// RemoteAddr returns the peer's address (nil when the engine does not know
// it, or outside the connection's own calls). It may allocate.
func (c *Conn) RemoteAddr() net.Addr {
	if c.io == nil {
		return nil
	}
	return c.io.remoteAddr()
}

// State returns where the connection is in its life. It only moves forward.
func (c *Conn) State() State { return c.state }

// closeTransport asks the engine to close the socket (once what waits is
// written), once.
func (c *Conn) closeTransport() {
	if c.flags&fTClosed != 0 {
		return
	}
	c.flags |= fTClosed
	c.io.Close = true
}

// report delivers OnClose once, for connections that opened and for
// client-role connections (whose handshake failures are reported too).
func (c *Conn) report(code StatusCode, reason string, err error) {
	if c.flags&fReported != 0 || c.flags&(fOpened|fClient) == 0 || c.h == nil {
		return
	}
	c.flags |= fReported
	if c.io != nil && c.flags&fOpened != 0 {
		c.io.Events.Reported, c.io.Events.Code = true, code
	}
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
		c.writeClose(code, reason)
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
	pe := protocolErr(err)
	c.fail(pe.Code, pe.Reason, pe)
}
