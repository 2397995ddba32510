package clientlimit

import "sync"

// entry is one tracked client address. Entries live in a shard's slab and
// never move, so a Ticket can name one by index while it has connections.
type entry struct {
	key [16]byte
	// tat is the GCRA "theoretical arrival time" of the address's next
	// handshake, in the caller's nanoseconds: its token bucket is full when
	// tat <= now, and a handshake is refused while tat - now exceeds the
	// burst tolerance.
	tat   int64
	conns int32  // open connections (Admit minus Release)
	hash  uint32 // the key's hash, low bits: the home slot in index
	next  int32  // free list link, when free
	live  bool
}

// idle reports whether e carries no state: nothing open, bucket full.
func (e *entry) idle(now int64) bool { return e.conns == 0 && e.tat <= now }

// shard is one part of the table: an open-addressing index (linear
// probing, backward-shift deletion, so no tombstones) of slab positions.
type shard struct {
	mu     sync.Mutex
	index  []int32 // slab position + 1; 0 is empty; len is a power of two
	slab   []entry
	free   int32 // first free slab position, -1: none
	n      int   // live entries
	max    int   // most live entries
	cursor int   // where the next sweep or eviction scan starts in slab
	_      [40]byte
}

// scanLen bounds the work of one sweep or eviction scan.
const scanLen = 64

func (s *shard) init(max int) {
	s.max = max
	s.free = -1
	s.index = make([]int32, indexLen(min(max, 16)))
}

// indexLen is the index size that keeps n entries at most 3/4 full.
func indexLen(n int) int {
	l := 8
	for l*3/4 < n {
		l *= 2
	}
	return l
}

// find returns the slab position of key, or -1.
func (s *shard) find(key *[16]byte, h uint32) int32 {
	mask := uint32(len(s.index) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		ref := s.index[i]
		if ref == 0 {
			return -1
		}
		if e := &s.slab[ref-1]; e.hash == h && e.key == *key {
			return ref - 1
		}
	}
}

// insert adds a new entry for key and returns its slab position, or -1
// when the shard is full of addresses with connections open.
func (s *shard) insert(key *[16]byte, h uint32, now int64) int32 {
	pos := s.alloc(now)
	if pos < 0 {
		return -1
	}
	e := &s.slab[pos]
	*e = entry{key: *key, hash: h, live: true}
	s.n++
	if s.n > len(s.index)*3/4 {
		s.grow() // places every live entry, this one included
	} else {
		s.place(pos)
	}
	return pos
}

// place puts slab position pos into the index at its key's first free slot.
func (s *shard) place(pos int32) {
	mask := uint32(len(s.index) - 1)
	i := s.slab[pos].hash & mask
	for s.index[i] != 0 {
		i = (i + 1) & mask
	}
	s.index[i] = pos + 1
}

// grow doubles the index; hashes are kept in the entries, so nothing is
// rehashed from the keys.
func (s *shard) grow() {
	s.index = make([]int32, len(s.index)*2)
	for p := range s.slab {
		if s.slab[p].live {
			s.place(int32(p))
		}
	}
}

// alloc returns a free slab position: a freed one, one reclaimed from an
// idle entry, a new one while under max, or, when full, one taken from an
// entry with no connection open (its rate state is lost). -1: none.
func (s *shard) alloc(now int64) int32 {
	if s.free < 0 {
		switch {
		case len(s.slab) == s.max:
			s.scan(now, true)
		case len(s.slab) == cap(s.slab) && len(s.slab) > 0:
			// Reclaim idle entries before growing, so that churn over
			// many addresses keeps the table at its working size.
			s.scan(now, false)
		}
	}
	if s.free < 0 && len(s.slab) < s.max {
		if len(s.slab) == cap(s.slab) {
			// Grow by doubling, but never past max: the bound on memory.
			grown := make([]entry, len(s.slab), min(max(2*cap(s.slab), 16), s.max))
			copy(grown, s.slab)
			s.slab = grown
		}
		s.slab = s.slab[:len(s.slab)+1]
		return int32(len(s.slab) - 1)
	}
	if s.free < 0 {
		return -1
	}
	pos := s.free
	s.free = s.slab[pos].next
	return pos
}

// scan looks at up to scanLen entries from the cursor and frees every idle
// one; with evict, when none was idle, it frees the one among them with no
// connection open whose bucket is closest to full (the least recently
// limited).
func (s *shard) scan(now int64, evict bool) {
	victim := int32(-1)
	freed := false
	for k := 0; k < scanLen && k < len(s.slab); k++ {
		if s.cursor >= len(s.slab) {
			s.cursor = 0
		}
		p := int32(s.cursor)
		s.cursor++
		e := &s.slab[p]
		if !e.live {
			continue
		}
		if e.idle(now) {
			s.remove(p)
			freed = true
			continue
		}
		if evict && e.conns == 0 && (victim < 0 || e.tat < s.slab[victim].tat) {
			victim = p
		}
	}
	if !freed && victim >= 0 {
		s.remove(victim)
	}
}

// remove deletes the entry at slab position pos from the index (shifting
// back the entries after it that would no longer be found) and frees it.
func (s *shard) remove(pos int32) {
	mask := uint32(len(s.index) - 1)
	i := s.slab[pos].hash & mask
	for s.index[i] != pos+1 {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		ref := s.index[j]
		if ref == 0 {
			break
		}
		// The entry at j may move to the hole at i when its home slot is
		// not in (i, j] (cyclically).
		home := s.slab[ref-1].hash & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			s.index[i] = ref
			i = j
		}
	}
	s.index[i] = 0
	s.slab[pos] = entry{next: s.free}
	s.free = pos
	s.n--
}
