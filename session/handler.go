package session

// Handler receives a connection's events. Its methods run on the connection's
// engine goroutine, one at a time per connection, and must not block: hand
// slow work to another goroutine and answer through a Handle.
//
// A panic in a method is recovered: that connection is failed with 1011 and
// everything else goes on.
type Handler interface {
	// OnOpen is called once the opening handshake has completed.
	OnOpen(c *Conn)
	// OnMessage is called for each complete message. payload is valid only
	// during the call: copy it to keep it. Text payloads are valid UTF-8.
	OnMessage(c *Conn, op Opcode, payload []byte)
	// OnClose is called exactly once for every connection that was opened,
	// and, in the client role, also for one whose connect or handshake failed
	// (with StatusAbnormal and the error: a *HandshakeError, a syscall error):
	// code and reason are the peer's close status when a close frame was
	// received (StatusNoStatus when it had no body), StatusAbnormal when the
	// socket went away without one; err says why when the close was not clean:
	// a *ProtocolError when this end failed the connection for the peer's
	// violation (its Code is what the close frame sent said), ErrCloseTimeout,
	// ErrPongTimeout, a handler panic (1011 was sent), or the engine's error.
	// It never runs while OnOpen or OnMessage of the same connection runs.
	OnClose(c *Conn, code StatusCode, reason string, err error)
}

// HandlerFuncs adapts plain functions to Handler; nil fields do nothing.
type HandlerFuncs struct {
	Open    func(c *Conn)
	Message func(c *Conn, op Opcode, payload []byte)
	Close   func(c *Conn, code StatusCode, reason string, err error)
}

func (f HandlerFuncs) OnOpen(c *Conn) {
	if f.Open != nil {
		f.Open(c)
	}
}

func (f HandlerFuncs) OnMessage(c *Conn, op Opcode, p []byte) {
	if f.Message != nil {
		f.Message(c, op, p)
	}
}

func (f HandlerFuncs) OnClose(c *Conn, code StatusCode, reason string, err error) {
	if f.Close != nil {
		f.Close(c, code, reason, err)
	}
}

// Drainer is an optional Handler method for backpressure. OnDrain is called
// on the connection's loop once every byte it had queued is written, after a
// Send was refused with ErrBackpressure or ErrDropped: a producer that
// paused may go on.
type Drainer interface {
	OnDrain(c *Conn)
}

// Accept is what an UpgradeFunc grants a request.
type Accept struct {
	Handler  Handler // nil: Config.Handler
	Protocol string  // the chosen subprotocol; must be one the client offered. Empty: chosen from Config.Protocols
	Value    any     // the connection's initial user value (Conn.Value)
	Header   []byte  // extra response header lines, each ending in CRLF (for example Set-Cookie)
	// Config, when set, replaces the server's Config for this connection
	// from the 101 on (limits, HighWater, Overflow, timeouts, Stats); its
	// Role, Handler, Upgrade, HTTP and Protocols are not consulted. It is
	// shared, like the server's: make it once per route, not per request.
	Config *Config
}

// RejectError refuses an upgrade with an HTTP status (for example 401, 403).
type RejectError struct {
	Status  int
	Message string
	Header  string // optional extra header line without CRLF (for example WWW-Authenticate: ...)
}

func (e *RejectError) Error() string { return "websocket upgrade refused: " + e.Message }

// UpgradeFunc decides an upgrade request after it has passed the RFC 6455
// checks. Returning a *RejectError answers with its status; any other error
// answers 403. It runs on the engine goroutine and must not block.
type UpgradeFunc func(r *Request) (Accept, error)

// HTTPFunc takes over a request that does not ask for an upgrade. It runs on
// the engine goroutine; it must not block, and it must eventually answer with
// Conn.WriteHTTP, usually from another goroutine through Handle.Do.
// r is valid only during the call.
type HTTPFunc func(c *Conn, r *Request)
