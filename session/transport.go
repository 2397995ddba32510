package session

import (
	"errors"
	"net"
)

// Transport is what an engine offers a Conn. All methods are called on the
// engine goroutine that owns the connection.
type Transport interface {
	// Write sends p, in order after everything written before: as much as the
	// socket takes now, and a copy of the rest kept until it drains. p is not
	// retained. It returns how many bytes now wait in the engine. An empty p
	// writes nothing and just reports that count: a Conn whose last Write
	// reported Config.HighWater or more asks again this way before applying
	// Config.Overflow, since the engine may have drained meanwhile. After an
	// error the Conn calls Close.
	Write(p []byte) (buffered int, err error)
	// Close flushes what waits (for a bounded time), closes the socket and
	// then calls Conn.TransportClosed, either before returning or later.
	// Calling it again does nothing.
	Close()
	// SetTimer asks for Conn.Tick to be called at or soon after at (engine
	// clock, nanoseconds); it replaces any earlier request, 0 cancels. An at
	// already past asks for a Tick as soon as possible, but never from inside
	// SetTimer (a Conn calls it with at == 1 when it needs the time outside a
	// Feed or Tick, e.g. when a Handle task starts the close handshake).
	SetTimer(at int64)
	// Handle returns a goroutine-safe reference to this connection.
	Handle() Handle
	// RemoteAddr returns the peer's address (it may allocate).
	RemoteAddr() net.Addr
}

// Executor runs functions on the goroutine that owns a set of connections
// (an event loop). Engines implement it; ids are theirs to define and must
// not be reused while a Handle may still name them (slot plus generation).
type Executor interface {
	// Execute runs fn on the owning goroutine if connection id is still open
	// there when the task arrives; otherwise fn is not called. It returns an
	// error only when the engine no longer accepts tasks.
	Execute(id uint64, fn func(c *Conn)) error
	// ExecuteAll is Execute for many connections of this executor in one task.
	ExecuteAll(ids []uint64, fn func(c *Conn)) error
}

// ErrClosed is returned for operations on a connection or engine that is closed.
var ErrClosed = errors.New("websocket: connection closed")

// ErrBackpressure is returned by Send under OverflowError when the
// connection's unsent bytes are over Config.HighWater.
var ErrBackpressure = errors.New("websocket: send buffer over its high-water mark")

// Handle is a goroutine-safe reference to a connection. It is a small
// comparable value: keep it in maps and copy it freely. Operations on a
// connection that has gone away do nothing.
type Handle struct {
	x  Executor
	id uint64
}

// NewHandle is for engines: it names connection id of executor x.
func NewHandle(x Executor, id uint64) Handle { return Handle{x, id} }

// IsZero reports whether h names no connection.
func (h Handle) IsZero() bool { return h.x == nil }

// Executor returns the executor that owns the connection (for grouping work
// per loop, as broadcast and rooms do).
func (h Handle) Executor() Executor { return h.x }

// ID returns the engine's id of the connection.
func (h Handle) ID() uint64 { return h.id }

// Do runs fn on the connection's goroutine if it is still open.
func (h Handle) Do(fn func(c *Conn)) error {
	if h.x == nil {
		return ErrClosed
	}
	return h.x.Execute(h.id, fn)
}

// Send queues a message to the connection; p is copied.
func (h Handle) Send(op Opcode, p []byte) error {
	b := append([]byte(nil), p...)
	return h.Do(func(c *Conn) { _ = c.Send(op, b) })
}

// SendPrepared queues a prepared message; nothing is copied.
func (h Handle) SendPrepared(m *Prepared) error {
	return h.Do(func(c *Conn) { _ = c.SendPrepared(m) })
}

// Close starts the close handshake with code and reason.
func (h Handle) Close(code StatusCode, reason string) error {
	return h.Do(func(c *Conn) { _ = c.Close(code, reason) })
}
