package session

import "errors"

// Errors of sends and tasks.
var (
	// ErrClosed: the connection (or its engine) is closed, or a close frame
	// was already sent.
	ErrClosed = errors.New("websocket: connection closed")
	// ErrBackpressure: under OverflowError, the message did not fit under
	// Config.HighWater and was not queued. A Drainer hears when it may try
	// again.
	ErrBackpressure = errors.New("websocket: send queue over its high-water mark")
	// ErrDropped: under OverflowDrop, the message did not fit under
	// Config.HighWater and was dropped (and counted in Stats.Dropped).
	ErrDropped = errors.New("websocket: message dropped: send queue over its high-water mark")
	// ErrQueueFull: the connection's loop has as many tasks waiting as its
	// bound allows; the task was not queued. The server is overloaded.
	ErrQueueFull = errors.New("websocket: event loop task queue full")
	// ErrNotOnLoop: a Conn method that acts was called outside the
	// connection's own callbacks and tasks; use its Handle there.
	ErrNotOnLoop = errors.New("websocket: Conn used outside its own callbacks (use its Handle)")
)

// Executor runs functions on the goroutine that owns a set of connections
// (an event loop). Engines implement it; ids are theirs to define and are
// never reused while a Handle may still name them (slot plus a per-slot
// generation).
type Executor interface {
	// Execute runs fn on the owning goroutine if connection id is still
	// open there when the task arrives; otherwise it calls missed (when not
	// nil) on that goroutine instead. cost is the bytes the task holds (a
	// payload copy), counted against the loop's task-queue bound. It
	// returns ErrQueueFull when the bound is reached and ErrClosed when the
	// engine no longer takes tasks; then neither fn nor missed runs.
	Execute(id uint64, fn func(c *Conn), missed func(), cost int) error
	// ExecuteAll is Execute for many connections of this executor in one
	// task: fn runs for each that is still open. ids must not change until
	// the task has run.
	ExecuteAll(ids []uint64, fn func(c *Conn), cost int) error
}

// Handle is a goroutine-safe reference to a connection. It is a small
// comparable value: keep it in maps and copy it freely. Operations on a
// connection that has gone away do nothing.
//
// Every operation is asynchronous: it posts a task to the connection's loop
// and returns at once, never waiting for the loop or the peer. Its error
// says what is known at once (ErrClosed, ErrQueueFull); what then happens
// on the loop is counted in Config.Stats, and a caller that needs it per
// message uses SendReport or Do.
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

// Do runs fn on the connection's loop if it is still open; fn may use c as
// a handler does (c.Send reports synchronously there). fn must not block.
func (h Handle) Do(fn func(c *Conn)) error {
	if h.x == nil {
		return ErrClosed
	}
	return h.x.Execute(h.id, fn, nil, 0)
}

// Send queues a message to the connection; p is copied. A nil error means
// the message was handed to the loop, not that it was sent: the loop then
// applies Config.Overflow as for Conn.Send.
func (h Handle) Send(op Opcode, p []byte) error {
	return h.SendReport(op, p, nil)
}

// SendReport is Send that also reports, on the connection's loop, what
// became of the message: done(nil) once it is queued for the socket (or
// written), done(ErrDropped) or done(ErrBackpressure) when Config.Overflow
// refused it, done(ErrClosed) when the connection had gone or was closing.
// done is not called when SendReport returns an error. done must not block.
func (h Handle) SendReport(op Opcode, p []byte, done func(err error)) error {
	if h.x == nil {
		return ErrClosed
	}
	if op != Text && op != Binary {
		return ErrOpcode
	}
	b := append([]byte(nil), p...)
	var missed func()
	if done != nil {
		missed = func() { done(ErrClosed) }
	}
	return h.x.Execute(h.id, func(c *Conn) {
		err := c.Send(op, b)
		if done != nil {
			done(err)
		}
	}, missed, len(b))
}

// SendPrepared queues a prepared message; nothing is copied.
func (h Handle) SendPrepared(m *Prepared) error {
	if h.x == nil {
		return ErrClosed
	}
	return h.x.Execute(h.id, func(c *Conn) { _ = c.SendPrepared(m) }, nil, 0)
}

// Close starts the close handshake with code and reason.
func (h Handle) Close(code StatusCode, reason string) error {
	if h.x == nil {
		return ErrClosed
	}
	return h.x.Execute(h.id, func(c *Conn) { _ = c.Close(code, reason) }, nil, 0)
}
