package loop

import (
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/session"
)

// Observer is told what a Server does, for metrics. The engine core calls
// it; package metrics implements it (Prometheus text format), and loop
// itself imports no metrics library, so a program that uses no Observer
// links none.
//
// Most methods are called on a loop goroutine, in the middle of the loop's
// work, for every connection of every loop: an implementation must be safe
// for concurrent use, must not block, must not allocate and must return in
// well under a microsecond (atomic adds; no locks a scrape could hold for
// long, no channel sends, no logging). The arguments are plain values so
// that a call costs nothing but the call.
//
// loop is the index of the event loop that owns the connection, in
// [0, ServerInfo.Loops). Engines without event loops (the goroutine engine)
// pass 0 and call from the goroutine that serves the connection instead.
//
// Embed NopObserver to implement only some methods: methods added to
// Observer later get a no-op there, so such an implementation keeps
// compiling.
type Observer interface {
	// Started is called once, by Server.Listen on the caller's goroutine,
	// just before the socket is bound (so before the first connection is
	// accepted) and before any other method: everything the implementation
	// records here is visible to the calls that follow.
	Started(info ServerInfo)

	// Accepted is called for every TCP connection the listener accepted,
	// on the loop that accepted it, before any limit is checked: every
	// accepted connection is later counted once by exactly one of Refused,
	// HandshakeFailed or Opened (or by none when the server stopped first).
	// An engine that stops accepting while it is full (the kernel's backlog
	// holds the rest) reports nothing for the connections it did not take.
	Accepted(loop int)

	// Refused is called when a server limit turns a connection away, on the
	// loop that owns it, at the point of refusal: at accept (capacity, the
	// client's connections or handshake rate, handshakes in progress,
	// shutting down), or once the request has been read when the client's
	// address is known only from a trusted proxy's header. It is called
	// after the 429/503 response (if any) has been written or queued.
	// HandshakeFailed is not called for the same connection.
	Refused(loop int, reason RefuseReason)

	// HandshakeFailed is called on the connection's loop when its upgrade
	// request was answered with an HTTP error status (400, 403, 404, 426,
	// 431, ...), after the call that produced the response; status 0 means
	// the connection ended before any response (the peer closed, the
	// handshake deadline passed, a socket error). took is the time since
	// the connection was accepted. A plain HTTP request (no upgrade) is not
	// a handshake and is not reported.
	HandshakeFailed(loop int, status int, took time.Duration)

	// Opened is called on the connection's loop after the call into the
	// connection in which its handshake completed (the 101 written or
	// queued, Handler.OnOpen returned), and before any Closed of the same
	// connection; took is the time since the connection was accepted
	// (handshake latency as the server sees it, including a slow client's
	// sending time).
	Opened(loop int, took time.Duration)

	// Closed is called on the connection's loop after Handler.OnClose has
	// returned, exactly once for every connection that was Opened; code is
	// the code OnClose received (1006 when the TCP connection ended
	// without a close handshake).
	Closed(loop int, code session.StatusCode)

	// MessagesIn is called on the connection's loop for messages delivered
	// to Handler.OnMessage: messages complete messages carrying bytes bytes
	// of payload (after reassembly, before the handler runs). The core may
	// report each message or a read's worth at once.
	MessagesIn(loop int, messages, bytes int)

	// MessagesOut is called on the sending connection's loop for messages
	// accepted for sending (written to the socket or queued) during a call
	// into the connection (its callbacks, a Handle.Send or Handle.Do task,
	// a fan-out): messages messages carrying bytes bytes of payload,
	// control frames excluded. A fan-out may report one call per loop with
	// the totals of its members.
	MessagesOut(loop int, messages, bytes int)

	// Overflowed is called on the connection's loop each time a
	// connection's unsent bytes are over Config.HighWater and its policy
	// acts: a Send refused with ErrBackpressure (OverflowError), a message
	// dropped (OverflowDrop), or the connection closed (OverflowClose1008,
	// OverflowClose1013: once per connection, before its Closed).
	Overflowed(loop int, policy session.Overflow)

	// LoopTick is called on the loop's own goroutine at least once a second
	// while the loop runs (on timing-wheel ticks, or a timer the core keeps
	// for it), at most once per loop iteration. lag is how late the loop
	// ran that timer: the time it started the timer's work minus the time
	// the timer was due (0 when on time). busy is the time the loop spent
	// working, not waiting in the poller, since its previous LoopTick.
	// Engines without event loops do not call it.
	LoopTick(loop int, lag, busy time.Duration)

	// FanOut is called on each loop that took part in a Room.Publish or a
	// Server.Broadcast, once that loop has written or queued the message
	// to its members: members is how many of its connections were reached
	// (0 is reported too), took is the time since Publish or Broadcast was
	// called (so it includes the wait in the loop's task queue).
	FanOut(loop int, members int, took time.Duration)
}

// ServerInfo describes a Server to its Observer.
type ServerInfo struct {
	// Engine is the engine's name: "epoll", "gnet" or "goroutine".
	Engine string
	// Loops is the number of event loops (1 for the goroutine engine).
	Loops int
	// Capacity is the most connections the server holds at once.
	Capacity int
	// Snapshot reports what loop holds right now. It is safe to call from
	// any goroutine (a metrics scrape) at any time after Started, also
	// after the server has stopped (then it reports zeros); it reads
	// counters the loop publishes and never waits for the loop.
	Snapshot func(loop int) LoopSnapshot
}

// LoopSnapshot is the state of one loop at one moment: Sockets is every
// connection the loop holds (handshaking, open or closing); QueuedBytes the
// outbound bytes accepted for sending that the kernel has not taken yet,
// over all the loop's connections (what HighWater bounds per connection);
// QueuedTasks the tasks waiting in the loop's queue (Handle.Send,
// Handle.Do, fan-out parts).
type LoopSnapshot = core.LoopSnapshot

// RefuseReason says which server limit refused a connection. String
// returns it as a metric label value: "capacity", "per_ip",
// "handshake_rate", "handshakes_in_progress" or "shutting_down".
type RefuseReason = core.RefuseReason

const (
	// RefuseCapacity: the server holds Options.MaxConns connections.
	RefuseCapacity = core.RefuseCapacity
	// RefusePerIP: the source address has its most connections open.
	RefusePerIP = core.RefusePerIP
	// RefuseHandshakeRate: the source address is over its handshakes per
	// second.
	RefuseHandshakeRate = core.RefuseHandshakeRate
	// RefuseHandshakesInProgress: the server has its most handshakes in
	// progress at once.
	RefuseHandshakesInProgress = core.RefuseHandshakesInProgress
	// RefuseShuttingDown: the server is shutting down.
	RefuseShuttingDown = core.RefuseShuttingDown

	// NumRefuseReasons is one more than the largest RefuseReason, for
	// tables indexed by reason.
	NumRefuseReasons = core.NumRefuseReasons
)

// NopObserver implements Observer and does nothing. Embed it in an Observer
// that implements only some methods.
type NopObserver struct{}

func (NopObserver) Started(ServerInfo)                         {}
func (NopObserver) Accepted(int)                               {}
func (NopObserver) Refused(int, RefuseReason)                  {}
func (NopObserver) HandshakeFailed(int, int, time.Duration)    {}
func (NopObserver) Opened(int, time.Duration)                  {}
func (NopObserver) Closed(int, session.StatusCode)             {}
func (NopObserver) MessagesIn(int, int, int)                   {}
func (NopObserver) MessagesOut(int, int, int)                  {}
func (NopObserver) Overflowed(int, session.Overflow)           {}
func (NopObserver) LoopTick(int, time.Duration, time.Duration) {}
func (NopObserver) FanOut(int, int, time.Duration)             {}
