package bridge

import (
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/session"
)

// outbox carries a producer's messages (a program's stdout) to one
// connection, in order, and makes the producer wait while the connection is
// over its high-water mark: the goroutine that fills it stops reading its
// source, so the program blocks on a full pipe instead of the bridge
// buffering. What it holds is the batch it was given, never more.
//
// A batch goes to the connection's loop as one task (Handle.Do); the task
// sends until c.Send refuses with session.ErrBackpressure (the connection's
// Overflow is OverflowError and its unsent bytes are over HighWater) and
// reports how far it got.
//
// SEAM (replace when the core has session.Drainer): a refused batch is
// retried after a sleep: 1 ms while each try makes progress, doubling up to
// 50 ms while none does (a stalled client costs 20 wake-ups a second). With OnDrain the task
// would instead mark the connection as waiting and flush would block on a
// channel that OnDrain signals. The connection's OverflowError comes from
// the server's Config today (the zero Overflow); with session.Accept.Config
// the bridges will set it per connection (see connConfig).
type outbox struct {
	h      session.Handle
	gone   <-chan struct{} // closed when the connection has gone (OnClose)
	op     session.Opcode
	batch  [][]byte
	res    chan int            // the task's answer: messages sent, -1 when closed
	task   func(*session.Conn) // o.run, bound once
	stalls *atomic.Uint64      // counts refused batches
	held   *atomic.Int64       // the most bytes a refused batch still held (a high-water mark)
}

const (
	stallMin = time.Millisecond
	stallMax = 50 * time.Millisecond
)

func newOutbox(h session.Handle, gone <-chan struct{}, op session.Opcode, stalls *atomic.Uint64, held *atomic.Int64) *outbox {
	o := &outbox{h: h, gone: gone, op: op, res: make(chan int, 1), stalls: stalls, held: held}
	o.task = o.run
	return o
}

// run is the task, on the connection's loop.
func (o *outbox) run(c *session.Conn) {
	n := 0
	for ; n < len(o.batch); n++ {
		if err := c.Send(o.op, o.batch[n]); err != nil {
			if err != session.ErrBackpressure {
				n = -1
			}
			break
		}
	}
	o.res <- n
}

// flush sends msgs, waiting out backpressure. It returns false when the
// connection has gone; the caller must then not touch msgs' memory again (a
// task may still hold it).
func (o *outbox) flush(msgs [][]byte) bool {
	wait := stallMin
	for len(msgs) > 0 {
		o.batch = msgs
		if err := o.h.Do(o.task); err != nil {
			if !queueFull(err) {
				return false
			}
			if !o.sleep(wait) {
				return false
			}
			wait = min(2*wait, stallMax)
			continue
		}
		var n int
		select {
		case n = <-o.res:
		case <-o.gone:
			return false
		}
		if n < 0 {
			return false
		}
		msgs = msgs[n:]
		if len(msgs) == 0 {
			break
		}
		o.stalls.Add(1)
		pending := int64(0)
		for _, m := range msgs {
			pending += int64(len(m))
		}
		for old := o.held.Load(); pending > old && !o.held.CompareAndSwap(old, pending); old = o.held.Load() {
		}
		if !o.sleep(wait) {
			return false
		}
		if n > 0 {
			wait = stallMin // it is draining: look again soon
		} else {
			wait = min(2*wait, stallMax)
		}
	}
	o.batch = nil
	return true
}

// sleep waits d; false when the connection went meanwhile.
func (o *outbox) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-o.gone:
		return false
	}
}

// queueFull reports whether err says that a loop's task queue is at its
// bound: the caller then waits and tries again, which stops it reading its
// source (a program's stdout, a backend's commands) meanwhile.
//
// SEAM (replace when the core has session.ErrQueueFull): return
// errors.Is(err, session.ErrQueueFull). Until then task queues are unbounded
// and Handle.Do fails only when the engine has stopped.
func queueFull(err error) bool { return false }
