package core

import (
	"sync"
	"sync/atomic"

	"github.com/wsloop/wsloop/session"
)

// task is work posted to a loop from any goroutine. Exactly one of fn and
// run is set: fn runs for the connection(s) named by id or ids if they are
// still open (missed, when set, runs instead for a single id that is gone);
// run runs with the loop itself (engine housekeeping).
type task struct {
	id     uint64
	ids    []uint64
	fn     func(c *session.Conn)
	missed func()
	run    func()
	cost   int
	start  int64 // engine clock at post (fan-out latency)
}

// Bounds of a loop's task queue. What waits for a loop is bounded like
// every other queue: at most DefaultMaxTasks tasks and DefaultMaxTaskBytes
// bytes of payload copies (Handle.Send copies its message), so a loop's
// queue holds at most about 16 MiB + 65,536 x 88 B = 22 MiB. Past either
// bound a post fails with session.ErrQueueFull and nothing is queued: the
// caller learns at once that the server is overloaded. Housekeeping tasks
// of the engine itself are never refused (there are a few per loop).
const (
	DefaultMaxTasks     = 1 << 16
	DefaultMaxTaskBytes = 16 << 20
)

// taskQueue carries tasks from any goroutine to one loop. Posting takes a
// mutex for an append; the first post after the loop last looked costs one
// wake-up of the loop, the rest of a burst costs none (coalescing).
//
// The loop calls drain, which swaps the pending slice with a spare one, so
// a steady flow of tasks allocates nothing.
type taskQueue struct {
	mu       sync.Mutex
	tasks    []task
	bytes    int // cost of the queued tasks
	closed   bool
	maxTasks int
	maxBytes int
	spare    []task // the loop's own: the other half of the double buffer

	// armed is true from the post that woke the loop until the loop's next
	// drain: posts in between need no wake-up of their own.
	armed atomic.Bool
	n     atomic.Int32 // tasks queued, for snapshots
	wake  func() error
}

func newTaskQueue(wake func() error) *taskQueue {
	return &taskQueue{wake: wake, maxTasks: DefaultMaxTasks, maxBytes: DefaultMaxTaskBytes}
}

// post queues t, refusing it with session.ErrQueueFull at the bounds. It
// fails with session.ErrClosed once the queue is closed. The owner may
// release the wake-up's resources once close has returned.
func (q *taskQueue) post(t task) error { return q.put(t, true) }

// postControl queues engine housekeeping, which is never refused for the
// bounds.
func (q *taskQueue) postControl(run func()) error { return q.put(task{run: run}, false) }

func (q *taskQueue) put(t task, bounded bool) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return session.ErrClosed
	}
	if bounded && (len(q.tasks) >= q.maxTasks || t.cost > 0 && q.bytes+t.cost > q.maxBytes) {
		q.mu.Unlock()
		return session.ErrQueueFull
	}
	q.tasks = append(q.tasks, t)
	q.bytes += t.cost
	q.n.Store(int32(len(q.tasks)))
	var err error
	if q.armed.CompareAndSwap(false, true) {
		// Under the lock: close cannot complete meanwhile, so the wake-up
		// never hits a descriptor the loop has closed (and maybe reused).
		err = q.wake()
	}
	q.mu.Unlock()
	return err
}

// pending reports whether a wake-up is outstanding (tasks may wait).
func (q *taskQueue) pending() bool { return q.armed.Load() }

// drain runs the tasks queued so far with do, in post order. Tasks posted
// meanwhile (by do or by others) wait for the next drain; their post has
// woken the loop again.
func (q *taskQueue) drain(do func(t *task)) {
	// Disarm before taking the batch: a post racing with us either lands in
	// this batch or wakes the loop again; none is lost.
	q.armed.Store(false)
	q.mu.Lock()
	batch := q.tasks
	q.tasks = q.spare[:0]
	q.bytes = 0
	q.n.Store(0)
	q.mu.Unlock()
	for i := range batch {
		do(&batch[i])
		batch[i] = task{} // drop references for the GC
	}
	q.spare = batch[:0]
	if cap(q.spare) > 4096 {
		q.spare = nil // a burst leaves no lasting cost
	}
}

// close makes later posts fail and returns the tasks still queued (the
// loop runs or discards them).
func (q *taskQueue) close() []task {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	t := q.tasks
	q.tasks = nil
	q.bytes = 0
	return t
}
