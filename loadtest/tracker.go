package loadtest

// tracker verifies self-published broadcasts: for every subscriber and
// publisher it keeps which sequence numbers arrived (a bitmap) and the
// highest so far, so that each message is classified exactly: new, late
// (new, but after a higher one: reordered), again (duplicate) or out of
// range (corrupt). One slab for all of a process's subscribers; a
// subscriber's slots are touched only by its own loop (or SSE goroutine).
type tracker struct {
	pubs, words int // words of bitmap per (subscriber, publisher)
	messages    uint64
	stride      int // uint64s per subscriber: per publisher, 1 header + words
	slab        []uint64
}

// Verdicts of tracker.record.
const (
	vNew = iota
	vLate
	vAgain
	vRange
)

func newTracker(subs, pubs, messages int) *tracker {
	words := (messages + 63) / 64
	t := &tracker{pubs: pubs, words: words, messages: uint64(messages), stride: pubs * (1 + words)}
	t.slab = make([]uint64, subs*t.stride)
	return t
}

// region returns subscriber sub's slots for publisher pub; header word
// bits 0-31: highest seq + 1 seen, bit 63: the warm-up probe seen.
func (t *tracker) region(sub, pub int) []uint64 {
	o := sub*t.stride + pub*(1+t.words)
	return t.slab[o : o+1+t.words]
}

func (t *tracker) valid(sub, pub int) bool {
	return sub >= 0 && pub >= 0 && pub < t.pubs && (sub+1)*t.stride <= len(t.slab)
}

// record classifies message seq of publisher pub at subscriber sub.
func (t *tracker) record(sub, pub int, seq uint64) int {
	if !t.valid(sub, pub) || seq >= t.messages {
		return vRange
	}
	r := t.region(sub, pub)
	w, bit := 1+seq/64, uint64(1)<<(seq%64)
	if r[w]&bit != 0 {
		return vAgain
	}
	r[w] |= bit
	high := r[0] & 0xffffffff
	if seq+1 > high {
		r[0] = r[0]&^0xffffffff | (seq + 1)
		return vNew
	}
	return vLate
}

// warm records publisher pub's probe at sub and reports whether it is the
// first.
func (t *tracker) warm(sub, pub int) bool {
	if !t.valid(sub, pub) {
		return false
	}
	r := t.region(sub, pub)
	if r[0]&(1<<63) != 0 {
		return false
	}
	r[0] |= 1 << 63
	return true
}
