package session

import (
	"math/bits"
	"sync"
)

// Buffers for partial handshakes, partial frames, fragmented messages and
// outgoing frames come from power-of-two size-class pools, from 64 B to
// 64 MiB, and go back the moment they are no longer needed: an idle
// connection holds none. Pools hold *[]byte so that Get and Put allocate
// nothing.
const (
	minClassShift = 6  // 64 B
	maxClassShift = 26 // 64 MiB; larger buffers are allocated and left to the GC
)

var bufPools [maxClassShift - minClassShift + 1]sync.Pool

// sizeClass returns the pool index for a buffer of capacity at least n, or -1
// when n is beyond the largest class.
func sizeClass(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxClassShift {
		return -1
	}
	return s - minClassShift
}

// getBuf returns an empty buffer with capacity at least n.
func getBuf(n int) *[]byte {
	cls := sizeClass(n)
	if cls < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v := bufPools[cls].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, 1<<(cls+minClassShift))
	return &b
}

// putBuf returns bp to its pool; buffers of no class are dropped.
func putBuf(bp *[]byte) {
	c := cap(*bp)
	if c < 1<<minClassShift || c > 1<<maxClassShift || c&(c-1) != 0 {
		return
	}
	*bp = (*bp)[:0]
	bufPools[bits.Len(uint(c))-1-minClassShift].Put(bp)
}

// growBuf returns a buffer holding the bytes of bp (which may be nil) with
// capacity at least need, preferring hint (the expected final size) and at
// least doubling, so that a message that grows piece by piece is copied
// O(log n) times. The old buffer goes back to its pool.
func growBuf(bp *[]byte, need, hint int) *[]byte {
	if bp != nil && cap(*bp) >= need {
		return bp
	}
	size := need
	if bp != nil {
		if d := 2 * cap(*bp); d > size {
			size = d
		}
	}
	if hint > size {
		// Do not trust a peer's announced length for more than a doubling:
		// a header announcing 1 MiB followed by silence must not pin 1 MiB.
		size = min(hint, max(size, 2*need))
	}
	nb := getBuf(size)
	if bp != nil {
		*nb = append(*nb, *bp...)
		putBuf(bp)
	}
	return nb
}
