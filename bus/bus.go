package bus

import (
	"errors"

	"github.com/wsloop/wsloop/session"
)

// Bus carries messages between processes. One Bus stands for one process:
// share it between the Rooms, Broadcast and feeds of that process.
//
// Delivery is at most once and in order per publisher: a message published
// on one Bus reaches each subscription of its topic on every other Bus at
// most once, and the messages one goroutine publishes to a topic arrive in
// the order it published them. Nothing is delivered back to the publishing
// Bus: callers hand their own process's subscribers a message themselves,
// which keeps those working while the bus is down. Between two publishers,
// and across a bus outage, nothing is promised: a message is lost when its
// buffers are full or no connection to the other process exists.
//
// No method blocks on the network, so all of them may be called from an
// event loop.
type Bus interface {
	// Publish sends a copy of p, with its opcode, to the subscribers of
	// topic in the other processes. It returns ErrDropped when the outgoing
	// buffer is full (the message is counted and lost), ErrClosed after
	// Close, or an error for an invalid topic.
	Publish(topic string, op session.Opcode, p []byte) error
	// Subscribe calls h for every message that other processes publish to
	// topic until cancel is called; after cancel returns, h may still run
	// for a message already being delivered, never for a later one.
	Subscribe(topic string, h Handler) (cancel func(), err error)
	// Close cancels every subscription and releases the connection; later
	// calls return ErrClosed. Messages not yet handed to the network are
	// dropped.
	Close() error
}

// Handler receives a message from another process. Handlers of one Bus run
// one at a time on its delivery goroutine and must not block (post work to
// an event loop, as loop.Room.Publish does). p is valid only during the
// call.
type Handler func(op session.Opcode, p []byte)

// Errors of Publish and Subscribe.
var (
	ErrClosed   = errors.New("bus: closed")
	ErrDropped  = errors.New("bus: outgoing buffer full, message dropped")
	ErrBadTopic = errors.New("bus: topic must be 1-200 bytes")

	ErrNilHandler = errors.New("bus: Subscribe with a nil handler")
)

// MaxTopic is the longest topic, in bytes.
const MaxTopic = 200

// CheckTopic reports whether topic is valid: 1 to MaxTopic bytes, any
// bytes (implementations encode them for their transport).
func CheckTopic(topic string) error {
	if len(topic) == 0 || len(topic) > MaxTopic {
		return ErrBadTopic
	}
	return nil
}

// Stats are a Bus's counters since it was made. Implementations that have
// them return them from a Stats method.
type Stats struct {
	Published uint64 `json:"published"` // messages handed to the transport
	Received  uint64 `json:"received"`  // messages delivered to handlers
	// DroppedOut are messages published here and lost: refused because the
	// outgoing buffer was full (also while disconnected) or by the transport.
	DroppedOut uint64 `json:"dropped_out"`
	// DroppedIn are messages for this process lost because they arrived
	// faster than its handlers took them.
	DroppedIn     uint64 `json:"dropped_in"`
	Subscriptions int    `json:"subscriptions"` // topics subscribed on the transport
	Connected     bool   `json:"connected"`
	Disconnects   uint64 `json:"disconnects"`
	Reconnects    uint64 `json:"reconnects"`
}
