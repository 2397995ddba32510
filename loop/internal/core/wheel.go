package core

import "time"

// defaultTick is the resolution of the engines' timing wheels. Session
// timers are coarse (handshake 10 s, ping intervals, close waits of a few
// seconds), but tests and short CloseTimeouts use a few hundred
// milliseconds, so 100 ms keeps them meaningful while a loop with pending
// timers still wakes only ten times a second.
const defaultTick = 100 * time.Millisecond

// defaultWheelSlots with defaultTick covers 51.2 s in one revolution; later
// deadlines wait in their slot and are skipped until their revolution.
const defaultWheelSlots = 512

// wheel is a hashed timing wheel: a fixed ring of slots, one per tick, each
// holding the timers due in that tick (of some revolution). Adding is O(1)
// and there is no deletion: owners keep their current deadline themselves
// and ignore a firing whose time is no longer theirs (lazy deletion). A
// wheel belongs to one goroutine.
//
// A slot is a list of fixed-size blocks taken from a free list, so the
// wheel makes no garbage in steady state and an entry costs 16 bytes, not
// the slack of a growing slice.
//
// Times are engine-clock nanoseconds (monotonic).
type wheel struct {
	tick  int64
	slots []*wheelBlock // the first block of each slot's list
	cur   int64         // the last tick index processed
	count int           // entries held, stale ones included
	free  *wheelBlock
	nfree int

	// recent holds the entries added since the last tick boundary, aging
	// those added in the tick before, as lists of blocks like a slot's.
	// Most timers are replaced or cancelled soon after they are set (a
	// handshake deadline once the request arrives, a few milliseconds
	// later): with Stale set, such entries are dropped when their list is
	// looked at instead of occupying a slot (and a share of a block) until
	// their time, 10 s later for a handshake. An entry waits at least one
	// whole tick before it is placed, however close to a boundary it was
	// added: aging is looked at when a boundary passes (and recent becomes
	// aging), both at once when an entry is due before the next boundary
	// (urgent). An entry is still never more than one tick late.
	recent *wheelBlock
	aging  *wheelBlock
	urgent bool
	// Stale, when set, reports whether an entry no longer matters to its
	// owner; it lets the wheel drop recent entries early.
	Stale func(key uint64, at int64) bool
}

type wheelEntry struct {
	key uint64
	at  int64
}

// wheelBlockLen makes a block 512 bytes: a malloc size class, no waste.
const wheelBlockLen = 31

type wheelBlock struct {
	next    *wheelBlock
	n       int
	entries [wheelBlockLen]wheelEntry
}

// maxFreeBlocks bounds the blocks kept for reuse: a burst of timers leaves
// at most this many (32 KiB) behind.
const maxFreeBlocks = 64

// newWheel returns a wheel of n slots of tick each, starting at now.
func newWheel(tick time.Duration, n int, now int64) *wheel {
	if tick <= 0 {
		tick = defaultTick
	}
	if n <= 0 {
		n = defaultWheelSlots
	}
	return &wheel{tick: int64(tick), slots: make([]*wheelBlock, n), cur: now / int64(tick)}
}

// Len is the number of entries held, stale ones included.
func (w *wheel) Len() int { return w.count }

// Add asks for fire(key, at) at or soon after at (at most one tick late).
func (w *wheel) Add(key uint64, at int64) {
	w.count++
	if w.Stale != nil {
		w.recent = w.pushBlock(w.recent, wheelEntry{key, at})
		if at < (w.cur+1)*w.tick {
			w.urgent = true
		}
		return
	}
	w.place(wheelEntry{key, at})
}

// place puts an entry in the slot of the first tick at or after its time.
func (w *wheel) place(e wheelEntry) {
	t := (e.at + w.tick - 1) / w.tick
	if t <= w.cur {
		t = w.cur + 1
	}
	w.push(int(t%int64(len(w.slots))), e)
}

func (w *wheel) push(i int, e wheelEntry) { w.slots[i] = w.pushBlock(w.slots[i], e) }

// pushBlock appends e to the block list whose first block is b and returns
// the list's (possibly new) first block.
func (w *wheel) pushBlock(b *wheelBlock, e wheelEntry) *wheelBlock {
	if b == nil || b.n == wheelBlockLen {
		nb := w.free
		if nb != nil {
			w.free, w.nfree = nb.next, w.nfree-1
		} else {
			nb = new(wheelBlock)
		}
		nb.next, nb.n = b, 0
		b = nb
	}
	b.entries[b.n] = e
	b.n++
	return b
}

func (w *wheel) release(b *wheelBlock) {
	if w.nfree >= maxFreeBlocks {
		return
	}
	b.n = 0
	b.next = w.free
	w.free = b
	w.nfree++
}

// Advance fires, in no particular order within a tick, every entry whose
// time is at or before now. fire may call Add, for any time.
func (w *wheel) Advance(now int64, fire func(key uint64, at int64)) {
	target := now / w.tick
	n := int64(len(w.slots))
	start := w.cur + 1
	if target-start >= n {
		start = target - n + 1 // one revolution visits every slot
	}
	passed := target > w.cur
	w.cur = target
	if passed {
		// fire may Add: those go to fresh lists
		old := w.aging
		w.aging, w.recent = w.recent, nil
		w.sweep(old, now, fire, true)
	}
	if w.urgent {
		w.urgent = false
		r, a := w.recent, w.aging
		w.recent, w.aging = nil, nil
		w.recent = w.keep(w.recent, w.sweep(r, now, fire, false))
		w.aging = w.keep(w.aging, w.sweep(a, now, fire, false))
	}
	for t := start; t <= target; t++ {
		w.runSlot(int(t%n), now, fire)
	}
}

// sweep goes through a list of recent entries: stale ones are dropped, due
// ones fired, the rest placed in their slots (place) or returned as a new
// list.
func (w *wheel) sweep(b *wheelBlock, now int64, fire func(key uint64, at int64), place bool) *wheelBlock {
	var rest *wheelBlock
	for b != nil {
		for j := 0; j < b.n; j++ {
			e := b.entries[j]
			switch {
			case w.Stale(e.key, e.at):
				w.count--
			case e.at <= now:
				w.count--
				fire(e.key, e.at)
			case place:
				w.place(e)
			default:
				rest = w.pushBlock(rest, e)
			}
		}
		next := b.next
		w.release(b)
		b = next
	}
	return rest
}

// keep appends the entries of list b (kept by a sweep) to list a (added
// meanwhile by fire), returning the joined list.
func (w *wheel) keep(a, b *wheelBlock) *wheelBlock {
	if a == nil {
		return b
	}
	for b != nil {
		for j := 0; j < b.n; j++ {
			a = w.pushBlock(a, b.entries[j])
		}
		next := b.next
		w.release(b)
		b = next
	}
	return a
}

func (w *wheel) runSlot(i int, now int64, fire func(key uint64, at int64)) {
	// Detach the list: entries fire adds to this slot go to a fresh list,
	// and entries of later revolutions are pushed back onto it.
	b := w.slots[i]
	w.slots[i] = nil
	for b != nil {
		for j := 0; j < b.n; j++ {
			e := b.entries[j]
			if e.at > now {
				w.push(i, e) // a later revolution's entry
				continue
			}
			w.count--
			fire(e.key, e.at)
		}
		next := b.next
		w.release(b)
		b = next
	}
}

// Next returns the time of the next tick whose slot holds an entry, or -1
// when the wheel is empty. It is when the owner should call Advance next.
func (w *wheel) Next() int64 {
	if w.count == 0 {
		return -1
	}
	if w.urgent {
		return w.cur * w.tick // due now: Advance at once
	}
	if w.recent != nil || w.aging != nil {
		return (w.cur + 1) * w.tick
	}
	n := int64(len(w.slots))
	for t := w.cur + 1; t <= w.cur+n; t++ {
		if w.slots[t%n] != nil {
			return t * w.tick
		}
	}
	return (w.cur + 1) * w.tick
}
