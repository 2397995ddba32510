package session

import "net"

// CONTRACT FILE: signatures fixed by the lead; bodies are implemented in the session work.

// Conn is one connection's protocol state. Engines allocate it (usually
// embedded in their own per-connection struct) and drive it; handlers use
// the exported methods above the engine section. Its idle size is kept at
// most 128 bytes (see the size test).
type Conn struct {
	// fields: implementation's choice, within the size budget
}

// ---- For handlers (call on the connection's goroutine only) ----

// Send sends one message (Text payloads must be valid UTF-8).
func (c *Conn) Send(op Opcode, p []byte) error { panic("unimplemented") }

// SendPrepared sends a message prepared once for many connections.
func (c *Conn) SendPrepared(m *Prepared) error { panic("unimplemented") }

// Ping sends a ping with payload p (at most 125 bytes).
func (c *Conn) Ping(p []byte) error { panic("unimplemented") }

// Close starts the close handshake: it sends a close frame with code and
// reason and waits (Config.CloseTimeout) for the peer's reply.
func (c *Conn) Close(code StatusCode, reason string) error { panic("unimplemented") }

// Value returns the user value.
func (c *Conn) Value() any { panic("unimplemented") }

// SetValue sets the user value.
func (c *Conn) SetValue(v any) { panic("unimplemented") }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { panic("unimplemented") }

// Handle returns a goroutine-safe reference to this connection.
func (c *Conn) Handle() Handle { panic("unimplemented") }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { panic("unimplemented") }

// State returns where the connection is in its life.
func (c *Conn) State() State { panic("unimplemented") }

// WriteHTTP answers the plain HTTP request this connection carries (state
// StateHTTP) with a complete response, then closes the connection.
func (c *Conn) WriteHTTP(resp []byte) error { panic("unimplemented") }

// ---- For engines ----

// Init starts a server-role (cfg.Role == Server) connection: it waits for the
// opening handshake, with cfg.HandshakeTimeout armed through t.SetTimer.
// now is the engine clock in nanoseconds.
func (c *Conn) Init(cfg *Config, t Transport, now int64) { panic("unimplemented") }

// InitClient starts a client-role connection on a connected socket: it writes
// the opening handshake for r and waits for the response.
func (c *Conn) InitClient(cfg *Config, t Transport, r *ClientRequest, h Handler, now int64) error {
	panic("unimplemented")
}

// Feed hands the connection bytes read from its socket. It consumes all of
// p and may modify p in place (unmasking); p is not retained. Everything the
// bytes cause (handler calls, writes, closing) happens before it returns.
func (c *Conn) Feed(p []byte, now int64) { panic("unimplemented") }

// Tick tells the connection the time when a timer it asked for is due.
func (c *Conn) Tick(now int64) { panic("unimplemented") }

// TransportClosed tells the connection its socket is closed (err is nil
// after Transport.Close, or what the engine saw: io.EOF, a reset, ...). It
// delivers OnClose if the connection was open and not yet reported, and puts
// the Conn in StateClosed, returning any pooled buffers.
func (c *Conn) TransportClosed(err error) { panic("unimplemented") }
