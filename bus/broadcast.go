package bus

import (
	"sync/atomic"

	"github.com/wsloop/wsloop/session"
)

// Broadcast sends messages to every connection of every process on a Bus:
// Send hands the message to this process's connections (through local,
// usually the loop.Server's Broadcast: encoded once, one task per loop) and
// publishes it once on the bus, and every other process's Broadcast on the
// same topic does the same for its connections. Delivery across processes
// is the Bus's: at most once, in order per publisher.
type Broadcast struct {
	bus    Bus
	topic  string
	local  func(op session.Opcode, p []byte) error
	cancel func()

	received, errors atomic.Uint64
}

// NewBroadcast subscribes to topic on b and returns a Broadcast delivering
// through local, for example a *loop.Server's Broadcast method. b nil: this
// process only.
func NewBroadcast(b Bus, topic string, local func(op session.Opcode, p []byte) error) (*Broadcast, error) {
	x := &Broadcast{bus: b, topic: topic, local: local}
	if b == nil {
		return x, nil
	}
	cancel, err := b.Subscribe(topic, func(op session.Opcode, p []byte) {
		x.received.Add(1)
		if x.local(op, p) != nil {
			x.errors.Add(1)
		}
	})
	if err != nil {
		return nil, err
	}
	x.cancel = cancel
	return x, nil
}

// Send delivers p to every connection here and publishes it to the other
// processes. The error is local's or else the bus's; a bus error means only
// the other processes miss the message.
func (x *Broadcast) Send(op session.Opcode, p []byte) error {
	lerr := x.local(op, p)
	if lerr != nil {
		x.errors.Add(1)
	}
	if x.bus == nil {
		return lerr
	}
	if err := x.bus.Publish(x.topic, op, p); err != nil {
		x.errors.Add(1)
		if lerr == nil {
			return err
		}
	}
	return lerr
}

// Received is the number of messages from other processes delivered here.
func (x *Broadcast) Received() uint64 { return x.received.Load() }

// Close cancels the subscription; Send still delivers locally.
func (x *Broadcast) Close() {
	if x.cancel != nil {
		x.cancel()
	}
}
