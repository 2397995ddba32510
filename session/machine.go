package session

import (
	"fmt"
	"net"
	"time"
)

// The engine's side of a connection, in the spirit of h11 and wsproto: the
// engine hands a Machine the bytes it read and the time, then acts on what
// the Machine answered in the IO (bytes to send, a close, whether its
// deadline moved). A Machine never calls into its engine: everything it
// wants done is in the IO when the call returns.

// IO carries one engine call into a Machine and the answer back. An engine
// keeps one per loop and reuses it for every call: it sets the fields
// marked in, calls the Machine, acts on the fields marked out, then calls
// Reset. Out and Pong keep their capacity from call to call, so a steady
// flow of calls allocates nothing.
type IO struct {
	// In: set by the engine before each call.
	Now    int64    // engine clock in nanoseconds (monotonic)
	Queued int      // bytes of this connection the engine holds unsent from earlier calls, pong included
	Exec   Executor // the connection's executor (Conn.Handle)
	ID     uint64   // the connection's id in Exec

	// Out: the Machine's answer.
	//
	// Out is the bytes to send, in order, after those already queued. Pong
	// is an encoded pong to send after everything else; it replaces a pong
	// the engine still holds for the connection (only the latest ping needs
	// an answer, RFC 6455 5.5.3), so a peer that pings without reading
	// cannot make its pongs pile up. Final says Out ends with this end's
	// close frame: a pong the engine still holds goes out before it, never
	// after. Close asks for the socket to be closed once everything queued
	// is written. Rearm says the connection's deadline may have moved
	// earlier: ask Deadline again.
	Out   []byte
	Pong  []byte
	Final bool
	Close bool
	Rearm bool

	// Out: what happened in the call, for an engine's metrics and limits.
	Events Events

	// In, kept across calls (Reset leaves it): when set, every request is
	// shown to it after its head is read and before Config.Upgrade or
	// Config.HTTP decide it; a non-nil error refuses the request (a
	// *RejectError with its status, 403 otherwise). An engine enforces
	// per-client limits with it when the client is known only from a
	// trusted proxy's header.
	Admit func(r *Request) error

	// fl is the loop's compression state (permessage-deflate), made on
	// first use: an IO is per loop, so it costs connections nothing.
	fl *flateState
}

// Events is what happened in one engine call.
type Events struct {
	Opened   bool       // the opening handshake completed
	Status   int        // an HTTP error status a request was refused with (0: none)
	Reported bool       // OnClose ran, with Code
	Code     StatusCode //
	In       int        // messages delivered to OnMessage
	InBytes  int        // their payload bytes
	Out      int        // messages accepted for sending (control frames excluded)
	OutBytes int        // their payload bytes
	// Overflowed is how many times Config.Overflow acted (a Send refused,
	// a message dropped, the connection closed as a slow consumer).
	Overflowed int
}

// Reset clears the answer for the next call, keeping the buffers.
func (io *IO) Reset() {
	io.Out, io.Pong = io.Out[:0], io.Pong[:0]
	io.Final, io.Close, io.Rearm = false, false, false
	io.Events = Events{}
}

// remoteAddrer is implemented by executors that know their connections'
// peer addresses.
type remoteAddrer interface{ RemoteAddr(id uint64) net.Addr }

func (io *IO) remoteAddr() net.Addr {
	if a, ok := io.Exec.(remoteAddrer); ok {
		return a.RemoteAddr(io.ID)
	}
	return nil
}

// Machine is the engine's view of a connection: the same memory as the
// Conn its handler sees, with the methods only an engine calls. Engines
// embed one per connection (its zero value is ready for InitServer or
// InitClient) and call it from the connection's loop only.
type Machine struct{ c Conn }

// Conn returns the connection as handlers see it.
func (m *Machine) Conn() *Conn { return &m.c }

// State returns where the connection is in its life.
func (m *Machine) State() State { return m.c.state }

// Config returns the connection's Config (an upgrade hook may have chosen
// one of its own).
func (m *Machine) Config() *Config { return m.c.cfg }

// Open reports whether the connection takes messages (open, or an event
// stream, and no close sent).
func (m *Machine) Open() bool {
	return (m.c.state == StateOpen || m.c.state == StateStream) && m.c.flags&(fCloseSent|fTClosed) == 0
}

// InitServer starts a server-role connection (cfg.Role is not consulted): it
// waits for the opening handshake, at most cfg.HandshakeTimeout. It resets
// the Machine entirely, so an engine may reuse one after Closed.
func (m *Machine) InitServer(io *IO, cfg *Config) {
	c := &m.c
	*c = Conn{cfg: cfg}
	c.stamp = msOf(io.Now)
	c.lastIn = c.stamp
	io.Rearm = true
}

// InitClient starts a client-role connection on a connected socket
// (cfg.Role is not consulted): it writes the opening handshake for r and
// waits for the response, at most cfg.HandshakeTimeout. h receives the
// events. r is not retained.
func (m *Machine) InitClient(io *IO, cfg *Config, r *ClientRequest, h Handler) {
	c := &m.c
	*c = Conn{cfg: cfg, h: h, flags: fClient}
	c.stamp = msOf(io.Now)
	c.lastIn = c.stamp
	c.enter(io)
	defer c.leave()
	c.startClient(r)
	io.Rearm = true
}

// FailClient reports a client-role connection that never got a socket, or
// whose connect failed: h.OnClose(StatusAbnormal, "", err) on a Machine
// that was never started.
func (m *Machine) FailClient(io *IO, h Handler, err error) {
	c := &m.c
	*c = Conn{h: h, flags: fClient, state: StateClosed}
	c.enter(io)
	defer c.leave()
	c.report(StatusAbnormal, "", err)
}

// Feed hands the connection bytes read from its socket. It consumes all of
// p and may modify p in place (unmasking); p is not retained. Everything
// the bytes cause (handler calls, frames to send, a close) is in io when it
// returns.
func (m *Machine) Feed(io *IO, p []byte) {
	c := &m.c
	if c.state == StateClosed || c.flags&(fTClosed|fCloseRecv) != 0 {
		return
	}
	c.enter(io)
	defer c.leave()
	c.lastIn = msOf(io.Now)
	c.flags &^= fPing
	switch c.state {
	case StateHandshake:
		if c.flags&fClient != 0 {
			p = c.feedResponse(p)
		} else {
			p = c.feedHandshake(p)
		}
		if len(p) > 0 {
			c.feedFrames(p) // OnOpen may have started closing: the reply is among these bytes
		}
	case StateHTTP:
		c.keepPipelined(p)
	case StateStream:
		// A stream's client has nothing to say: what it sends is dropped.
	case StateOpen, StateClosing:
		c.feedFrames(p)
	}
}

// Tick tells the connection the time: call it when Deadline has come (or at
// any other time; an early Tick does nothing but ask to be rearmed).
func (m *Machine) Tick(io *IO) {
	c := &m.c
	if c.state == StateClosed || c.flags&fTClosed != 0 {
		return
	}
	c.enter(io)
	defer c.leave()
	c.tick(io.Now)
	io.Rearm = true
}

// Drained tells the connection that the engine has written everything it
// held for it. A handler that was refused a Send hears OnDrain.
func (m *Machine) Drained(io *IO) {
	c := &m.c
	if c.flags&fWantDrain == 0 || c.state != StateOpen && c.state != StateStream || c.flags&(fCloseSent|fTClosed) != 0 {
		return
	}
	c.flags &^= fWantDrain
	d, ok := c.h.(Drainer)
	if !ok {
		return
	}
	c.enter(io)
	defer c.leave()
	defer c.handlerDone()
	d.OnDrain(c)
}

// Run runs a task for the connection (Handle.Do, a broadcast) if it is
// still usable: fn may use c as a handler does. A panic in fn fails the
// connection with 1011 and is counted in Stats.Panics; it does not reach
// the engine. Run reports whether fn ran.
func (m *Machine) Run(io *IO, fn func(c *Conn)) bool {
	c := &m.c
	if c.state == StateClosed || c.flags&fTClosed != 0 {
		return false
	}
	c.enter(io)
	defer c.leave()
	defer c.handlerDone()
	fn(c)
	return true
}

// Closed tells the connection its socket is closed: err is nil after the
// Machine asked for the close, or what the engine saw (io.EOF, a reset, a
// write timeout, ...). It delivers OnClose if the connection was open (or is
// a client-role connection) and not yet reported, and puts the Machine in
// StateClosed, returning any pooled buffers. Later calls do nothing; output
// is ignored.
func (m *Machine) Closed(io *IO, err error) {
	c := &m.c
	if c.state == StateClosed {
		return
	}
	c.enter(io)
	defer c.leave()
	c.flags |= fTClosed
	if err == nil {
		err = ErrClosed
	}
	if c.state == StateStream && c.flags&fCloseSent != 0 {
		c.report(c.streamCode(), "", nil) // this end ended it: Close's code
	}
	c.report(StatusAbnormal, "", err)
	if c.flags&fOpened != 0 && c.cfg.Stats != nil {
		c.cfg.Stats.Closed.Add(1)
	}
	c.state = StateClosed
}

// Deadline returns when the connection next needs a Tick (engine clock), or
// 0 for never. now is the engine clock.
func (m *Machine) Deadline(now int64) int64 { return m.c.deadline(now) }

// HandshakeTook is how long the opening handshake (or the plain request)
// has taken at now, from its first byte's wait: valid while the machine is
// in StateHandshake and in the call that completes or refuses it.
func (m *Machine) HandshakeTook(now int64) time.Duration {
	return time.Duration(elapsed(msOf(now), m.c.stamp)) * time.Millisecond
}

// enter starts an engine call.
func (c *Conn) enter(io *IO) { c.io = io }

// leave ends an engine call: buffers are returned once no more input will
// be read.
func (c *Conn) leave() {
	c.io = nil
	if c.state == StateClosed || c.flags&(fTClosed|fCloseRecv) != 0 {
		c.release()
	}
}

// release returns the pooled buffer and forgets any partial frame or message.
func (c *Conn) release() {
	if c.buf != nil {
		putBuf(c.buf)
		c.buf = nil
	}
	c.hdrLen, c.ctrlLen, c.msgOp, c.remaining = 0, 0, 0, 0
	c.flags &^= fInFrame | fDiscard | fFin | fBody
}

// handlerDone runs (deferred) when a handler method or a task returns: it
// turns a panic into a 1011 close, counted in Stats.Panics.
func (c *Conn) handlerDone() {
	if r := recover(); r != nil {
		if c.cfg != nil && c.cfg.Stats != nil {
			c.cfg.Stats.Panics.Add(1)
		}
		c.fail(StatusInternalError, "internal error", fmt.Errorf("websocket: handler panic: %v", r))
	}
}

// recoverClose swallows a panic in OnClose.
func (c *Conn) recoverClose() {
	if r := recover(); r != nil && c.cfg != nil && c.cfg.Stats != nil {
		c.cfg.Stats.Panics.Add(1)
	}
}
