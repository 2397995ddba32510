package core

import (
	"sort"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

type firing struct {
	key    uint64
	at, by int64
}

// collect advances w in steps of step until end and records every firing
// with the time at which it happened.
func collect(w *wheel, start, end, step int64) []firing {
	var got []firing
	for now := start; now <= end; now += step {
		w.Advance(now, func(key uint64, at int64) {
			got = append(got, firing{key, at, now})
		})
	}
	return got
}

func TestWheelFiresEachEntryOnceNotEarlyAtMostOneTickLate(t *testing.T) {
	tick := 100 * ms
	w := newWheel(time.Duration(tick), 8, 0)
	ats := map[uint64]int64{1: 50 * ms, 2: 100 * ms, 3: 101 * ms, 4: 799 * ms, 5: 250 * ms, 6: 1 * ms}
	for k, at := range ats {
		w.Add(k, at)
	}
	if w.Len() != len(ats) {
		t.Fatalf("Len = %d, want %d", w.Len(), len(ats))
	}
	got := collect(w, 0, 2000*ms, 7*ms)
	if len(got) != len(ats) {
		t.Fatalf("fired %d entries, want %d: %+v", len(got), len(ats), got)
	}
	seen := map[uint64]bool{}
	for _, f := range got {
		if seen[f.key] {
			t.Fatalf("key %d fired twice", f.key)
		}
		seen[f.key] = true
		if f.at != ats[f.key] {
			t.Fatalf("key %d fired with at %d, want %d", f.key, f.at, ats[f.key])
		}
		if f.by < f.at {
			t.Fatalf("key %d fired early: at %d, now %d", f.key, f.at, f.by)
		}
		if f.by > f.at+tick+7*ms {
			t.Fatalf("key %d fired more than a tick late: at %d, now %d", f.key, f.at, f.by)
		}
	}
	if w.Len() != 0 || w.Next() != -1 {
		t.Fatalf("after all fired: Len %d Next %d, want 0 and -1", w.Len(), w.Next())
	}
}

func TestWheelOrdersAcrossTicks(t *testing.T) {
	w := newWheel(10*time.Millisecond, 16, 0)
	for k := uint64(1); k <= 100; k++ {
		w.Add(k, int64(101-k)*7*ms) // reverse order, spread over ~5 revolutions
	}
	got := collect(w, 0, 1000*ms, 10*ms)
	if len(got) != 100 {
		t.Fatalf("fired %d, want 100", len(got))
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].by < got[j].by }) {
		t.Fatal("firings out of time order")
	}
	for i := 1; i < len(got); i++ {
		// entries of different ticks fire in tick order
		if got[i].at/(10*ms) < got[i-1].at/(10*ms)-1 {
			t.Fatalf("entry at %d fired after entry at %d", got[i].at, got[i-1].at)
		}
	}
}

func TestWheelFarDeadlinesWaitTheirRevolution(t *testing.T) {
	w := newWheel(100*time.Millisecond, 4, 0) // one revolution: 400 ms
	w.Add(1, 1050*ms)                         // same slot as 250 ms... but 2+ revolutions later
	w.Add(2, 250*ms)
	got := collect(w, 0, 1000*ms, 50*ms)
	if len(got) != 1 || got[0].key != 2 {
		t.Fatalf("before 1050 ms fired %+v, want only key 2", got)
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d, want the far entry kept", w.Len())
	}
	got = collect(w, 1050*ms, 1300*ms, 50*ms)
	if len(got) != 1 || got[0].key != 1 || got[0].by < 1050*ms {
		t.Fatalf("far entry: fired %+v", got)
	}
}

func TestWheelLongSleepFiresEverything(t *testing.T) {
	w := newWheel(100*time.Millisecond, 8, 0)
	for k := uint64(0); k < 50; k++ {
		w.Add(k, int64(k+1)*37*ms)
	}
	n := 0
	w.Advance(int64(time.Hour), func(uint64, int64) { n++ })
	if n != 50 || w.Len() != 0 {
		t.Fatalf("after a long sleep fired %d, Len %d; want 50, 0", n, w.Len())
	}
}

// The owner's pattern: a current deadline per key, stale entries ignored.
func TestWheelLazyDeletion(t *testing.T) {
	w := newWheel(100*time.Millisecond, 16, 0)
	current := map[uint64]int64{}
	set := func(k uint64, at int64) { current[k] = at; w.Add(k, at) }
	set(1, 300*ms)
	set(1, 900*ms) // replaces: the 300 ms entry is stale
	set(2, 500*ms)
	delete(current, 2) // cancelled
	var live []firing
	stale := 0
	for now := int64(0); now <= 2000*ms; now += 50 * ms {
		w.Advance(now, func(k uint64, at int64) {
			if current[k] != at {
				stale++
				return
			}
			delete(current, k)
			live = append(live, firing{k, at, now})
		})
	}
	if len(live) != 1 || live[0].key != 1 || live[0].at != 900*ms {
		t.Fatalf("live firings %+v, want key 1 at 900ms only", live)
	}
	if stale != 2 {
		t.Fatalf("stale firings %d, want 2", stale)
	}
}

func TestWheelAddDuringFire(t *testing.T) {
	w := newWheel(100*time.Millisecond, 4, 0)
	w.Add(1, 100*ms)
	added, fired := 1, 0
	for now := int64(0); now <= 5000*ms; now += 100 * ms {
		w.Advance(now, func(k uint64, at int64) {
			if at > now {
				t.Fatalf("key %d due at %d fired at %d", k, at, now)
			}
			fired++
			if added < 20 {
				w.Add(k+1, at+400*ms) // lands in the slot being run, next revolution
				w.Add(k+1000, now)    // due already: fires at the next tick
				added += 2
			}
		})
	}
	if fired != added || w.Len() != 0 {
		t.Fatalf("fired %d of %d added (Len %d)", fired, added, w.Len())
	}
}

func TestWheelNext(t *testing.T) {
	w := newWheel(100*time.Millisecond, 512, 0)
	if w.Next() != -1 {
		t.Fatalf("empty wheel Next = %d, want -1", w.Next())
	}
	w.Add(7, 1234*ms)
	if n := w.Next(); n < 1234*ms || n > 1334*ms {
		t.Fatalf("Next = %d ms, want within a tick after 1234 ms", n/ms)
	}
}

func TestWheelGivesBackBurstMemory(t *testing.T) {
	w := newWheel(100*time.Millisecond, 8, 0)
	for k := uint64(0); k < 10000; k++ {
		w.Add(k, 150*ms)
	}
	w.Advance(300*ms, func(uint64, int64) {})
	if w.nfree > maxFreeBlocks {
		t.Fatalf("%d free blocks kept after a burst, want at most %d", w.nfree, maxFreeBlocks)
	}
	for i, b := range w.slots {
		if b != nil {
			t.Fatalf("slot %d still holds a block after its burst fired", i)
		}
	}
}

func TestWheelAddAllocatesNothingInSteadyState(t *testing.T) {
	w := newWheel(100*time.Millisecond, 64, 0)
	now := int64(0)
	fire := func(uint64, int64) {}
	step := func() {
		now += 10 * ms
		w.Add(1, now+500*ms)
		w.Advance(now, fire)
	}
	for i := 0; i < 1000; i++ {
		step() // let the slots reach their working capacity
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Fatalf("steady-state Add+Advance: %v allocations per run, want 0", a)
	}
}

// With Stale set, entries that went stale within a tick of being added are
// dropped, never stored in a slot; live ones fire as before.
func TestWheelDropsRecentStaleEntries(t *testing.T) {
	w := newWheel(100*time.Millisecond, 16, 0)
	current := map[uint64]int64{}
	w.Stale = func(k uint64, at int64) bool { return current[k] != at }
	for k := uint64(0); k < 1000; k++ {
		current[k] = 5000 * ms
		w.Add(k, 5000*ms)
	}
	for k := uint64(0); k < 990; k++ {
		delete(current, k) // cancelled soon after (a handshake that arrived)
	}
	fired := 0
	fire := func(k uint64, at int64) {
		if current[k] == at {
			fired++
			delete(current, k)
		}
	}
	w.Advance(100*ms, fire)
	w.Advance(200*ms, fire)
	if w.Len() != 10 {
		t.Fatalf("Len after two ticks = %d, want the 10 live entries", w.Len())
	}
	for now := int64(200 * ms); now <= 6000*ms; now += 100 * ms {
		w.Advance(now, fire)
	}
	if fired != 10 || w.Len() != 0 {
		t.Fatalf("fired %d (Len %d), want 10 and 0", fired, w.Len())
	}
}

// Entries added and cancelled within one tick are dropped without ever
// being placed, however often Advance runs in that tick; an entry already
// due fires at the next Advance, without waiting for the tick.
func TestWheelRecentEntriesWaitForTheTick(t *testing.T) {
	w := newWheel(100*time.Millisecond, 16, 0)
	live := map[uint64]int64{}
	w.Stale = func(k uint64, at int64) bool { return live[k] != at }
	var fired []uint64
	fire := func(k uint64, at int64) {
		if live[k] == at {
			fired = append(fired, k)
			delete(live, k)
		}
	}
	for k := uint64(0); k < 100; k++ {
		live[k] = 10_000 * ms
		w.Add(k, 10_000*ms)
		w.Advance(int64(k)*ms/2, fire) // many loop iterations within the first tick
		delete(live, k)                // the request arrived
	}
	for i, b := range w.slots {
		if b != nil {
			t.Fatalf("slot %d holds entries before the tick ended", i)
		}
	}
	live[500] = 1
	w.Add(500, 1) // as soon as possible
	if next := w.Next(); next > 60*ms {
		t.Fatalf("Next = %d ms with an entry due, want now", next/ms)
	}
	w.Advance(60*ms, fire)
	if len(fired) != 1 || fired[0] != 500 {
		t.Fatalf("fired %v, want [500] at once", fired)
	}
	w.Advance(100*ms, fire)
	w.Advance(200*ms, fire) // a whole tick later: the cancelled entries are dropped
	if w.Len() != 0 {
		t.Fatalf("Len = %d after the tick, want 0", w.Len())
	}
	for i, b := range w.slots {
		if b != nil {
			t.Fatalf("slot %d holds entries after the tick", i)
		}
	}
}

// An entry added just before a tick boundary and cancelled just after it
// still never takes a place in a slot: every entry waits a whole tick.
func TestWheelEntryNearABoundaryWaitsAWholeTick(t *testing.T) {
	w := newWheel(100*time.Millisecond, 16, 0)
	live := map[uint64]int64{1: 10_000 * ms}
	w.Stale = func(k uint64, at int64) bool { return live[k] != at }
	w.Add(1, 10_000*ms)
	w.Advance(99*ms, func(uint64, int64) {})
	w.Advance(101*ms, func(uint64, int64) {}) // the boundary passed: not placed yet
	for i, b := range w.slots {
		if b != nil {
			t.Fatalf("slot %d holds the entry 2 ms after it was added", i)
		}
	}
	delete(live, 1) // the request arrived
	w.Advance(200*ms, func(uint64, int64) {})
	if w.Len() != 0 {
		t.Fatalf("Len %d: the cancelled entry was kept", w.Len())
	}
}
