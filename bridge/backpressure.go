package bridge

import (
	"errors"
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
// Config has Overflow OverflowError, and its unsent bytes are at HighWater)
// and reports how far it got. The producer then waits for the connection's
// OnDrain (session.Drainer), which the handler passes on through drained,
// and sends the rest. A loop whose task queue is full (session.ErrQueueFull)
// is tried again after a short sleep, 1 ms doubling to 50 ms.
type outbox struct {
	h       session.Handle
	gone    <-chan struct{} // closed when the connection has gone (OnClose)
	drained <-chan struct{} // signalled by the connection's OnDrain
	op      session.Opcode
	batch   [][]byte
	res     chan int            // the task's answer: messages sent, -1 when closed
	task    func(*session.Conn) // o.run, bound once
	stalls  *atomic.Uint64      // counts refused batches
	held    *atomic.Int64       // the most bytes a refused batch still held (a high-water mark)
}

const (
	stallMin = time.Millisecond
	stallMax = 50 * time.Millisecond
	// drainCheck bounds a wait for OnDrain: the batch is offered again
	// after it even without the signal, so that no lost wake-up can stall
	// a connection for good.
	drainCheck = time.Second
)

func newOutbox(h session.Handle, gone, drained <-chan struct{}, op session.Opcode, stalls *atomic.Uint64, held *atomic.Int64) *outbox {
	o := &outbox{h: h, gone: gone, drained: drained, op: op, res: make(chan int, 1), stalls: stalls, held: held}
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
			if !errors.Is(err, session.ErrQueueFull) || !o.sleep(wait) {
				return false
			}
			wait = min(2*wait, stallMax)
			continue
		}
		wait = stallMin
		var n int
		select {
		case n = <-o.res:
		case <-o.gone:
			return false
		}
		if n < 0 {
			return false
		}
		if msgs = msgs[n:]; len(msgs) == 0 {
			break
		}
		o.stalls.Add(1)
		pending := int64(0)
		for _, m := range msgs {
			pending += int64(len(m))
		}
		for old := o.held.Load(); pending > old && !o.held.CompareAndSwap(old, pending); old = o.held.Load() {
		}
		t := time.NewTimer(drainCheck)
		select {
		case <-o.drained:
		case <-t.C:
		case <-o.gone:
			t.Stop()
			return false
		}
		t.Stop()
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
