package core

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

// A burst posted while the consumer is not looking costs one wake-up.
func TestTaskQueueCoalescesWakeups(t *testing.T) {
	var wakes atomic.Int32
	q := newTaskQueue(func() error { wakes.Add(1); return nil })
	ran := 0
	for i := 0; i < 1000; i++ {
		if err := q.post(task{run: func() { ran++ }}); err != nil {
			t.Fatal(err)
		}
	}
	if w := wakes.Load(); w != 1 {
		t.Fatalf("1000 posts caused %d wake-ups, want 1", w)
	}
	if !q.pending() {
		t.Fatal("pending() false with tasks queued")
	}
	q.drain(func(t *task) { t.run() })
	if ran != 1000 {
		t.Fatalf("ran %d tasks, want 1000", ran)
	}
	if q.pending() {
		t.Fatal("pending() true after drain")
	}
	_ = q.post(task{run: func() { ran++ }})
	if w := wakes.Load(); w != 2 {
		t.Fatalf("a post after drain caused %d total wake-ups, want 2", w)
	}
}

// Many producers against a consumer that sleeps on a real wake-up channel:
// every task runs exactly once, per-producer order is kept, and wake-ups
// are at most the number of posts (usually far fewer).
func TestTaskQueueManyProducersLoseNothing(t *testing.T) {
	const producers, each = 8, 5000
	wake := make(chan struct{}, 1)
	var wakes atomic.Int64
	q := newTaskQueue(func() error {
		wakes.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
		return nil
	})
	var last [producers]int
	for i := range last {
		last[i] = -1
	}
	total := 0
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				i := i
				if err := q.post(task{id: uint64(p), run: func() {
					if last[p] != i-1 {
						panic("tasks of one producer out of order")
					}
					last[p] = i
					total++
				}}); err != nil {
					panic(err)
				}
			}
		}(p)
	}
	deadline := time.After(30 * time.Second)
	for total < producers*each {
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("ran %d of %d tasks: a wake-up was lost", total, producers*each)
		}
		q.drain(func(t *task) { t.run() })
	}
	wg.Wait()
	q.drain(func(t *task) { t.run() })
	if total != producers*each {
		t.Fatalf("ran %d tasks, want %d", total, producers*each)
	}
	if w := wakes.Load(); w > producers*each {
		t.Fatalf("%d wake-ups for %d posts", w, producers*each)
	}
	t.Logf("%d posts, %d wake-ups", producers*each, wakes.Load())
}

func TestTaskQueueClosedRefusesAndReturnsLeftovers(t *testing.T) {
	q := newTaskQueue(func() error { return nil })
	_ = q.post(task{id: 1})
	_ = q.post(task{id: 2})
	left := q.close()
	if len(left) != 2 || left[0].id != 1 || left[1].id != 2 {
		t.Fatalf("leftovers %+v, want ids 1, 2", left)
	}
	if err := q.post(task{id: 3}); err != session.ErrClosed {
		t.Fatalf("post after close: %v, want ErrClosed", err)
	}
}

func TestTaskQueueSteadyStateAllocatesNothing(t *testing.T) {
	q := newTaskQueue(func() error { return nil })
	fn := func() {}
	step := func() {
		for i := 0; i < 16; i++ {
			_ = q.post(task{run: fn})
		}
		q.drain(func(t *task) { t.run() })
	}
	step()
	step()
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Fatalf("post+drain: %v allocations per run, want 0", a)
	}
}

// The queue is bounded in tasks and in payload bytes; housekeeping is not.
func TestTaskQueueBounds(t *testing.T) {
	q := newTaskQueue(func() error { return nil })
	q.maxTasks, q.maxBytes = 3, 100
	for i := 0; i < 3; i++ {
		if err := q.post(task{run: func() {}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.post(task{run: func() {}}); err != session.ErrQueueFull {
		t.Fatalf("4th task: %v, want ErrQueueFull", err)
	}
	if err := q.postControl(func() {}); err != nil {
		t.Fatalf("housekeeping refused: %v", err)
	}
	q.drain(func(*task) {})
	if err := q.post(task{run: func() {}, cost: 60}); err != nil {
		t.Fatal(err)
	}
	if err := q.post(task{run: func() {}, cost: 60}); err != session.ErrQueueFull {
		t.Fatalf("bytes over the bound: %v", err)
	}
	q.drain(func(*task) {})
	if err := q.post(task{run: func() {}, cost: 100}); err != nil {
		t.Fatalf("after drain: %v", err)
	}
}
