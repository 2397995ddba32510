package loop

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
// Times are engine-clock nanoseconds (monotonic, from the engine's start).
type wheel struct {
	tick  int64
	slots [][]wheelEntry
	cur   int64 // the last tick index processed
	count int   // entries in all slots, stale ones included
}

type wheelEntry struct {
	key uint64
	at  int64
}

// shrinkCap is the slot capacity above which an emptied slot gives its
// memory back: a burst of connections leaves no lasting cost.
const shrinkCap = 256

// newWheel returns a wheel of n slots of tick each, starting at now.
func newWheel(tick time.Duration, n int, now int64) *wheel {
	if tick <= 0 {
		tick = defaultTick
	}
	if n <= 0 {
		n = defaultWheelSlots
	}
	return &wheel{tick: int64(tick), slots: make([][]wheelEntry, n), cur: now / int64(tick)}
}

// Len is the number of entries held, stale ones included.
func (w *wheel) Len() int { return w.count }

// Add asks for fire(key, at) at or soon after at (at most one tick late).
func (w *wheel) Add(key uint64, at int64) {
	t := (at + w.tick - 1) / w.tick // first tick boundary at or after at
	if t <= w.cur {
		t = w.cur + 1
	}
	i := int(t % int64(len(w.slots)))
	w.slots[i] = append(w.slots[i], wheelEntry{key, at})
	w.count++
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
	w.cur = target
	for t := start; t <= target; t++ {
		w.runSlot(int(t%n), now, fire)
	}
}

func (w *wheel) runSlot(i int, now int64, fire func(key uint64, at int64)) {
	n0 := len(w.slots[i])
	if n0 == 0 {
		return
	}
	kept := 0
	for j := 0; j < n0; j++ {
		e := w.slots[i][j] // re-read: fire may have grown the slot
		if e.at > now {
			w.slots[i][kept] = e // a later revolution's entry
			kept++
			continue
		}
		w.count--
		fire(e.key, e.at)
	}
	s := w.slots[i]
	added := copy(s[kept:], s[n0:]) // entries fire added to this slot
	s = s[:kept+added]
	if len(s) == 0 && cap(s) > shrinkCap {
		s = nil
	}
	w.slots[i] = s
}

// Next returns the time of the next tick whose slot holds an entry, or -1
// when the wheel is empty. It is when the owner should call Advance next.
func (w *wheel) Next() int64 {
	if w.count == 0 {
		return -1
	}
	n := int64(len(w.slots))
	for t := w.cur + 1; t <= w.cur+n; t++ {
		if len(w.slots[t%n]) > 0 {
			return t * w.tick
		}
	}
	return (w.cur + 1) * w.tick
}
