package core

// What a connection could not send yet. A connection that keeps pace with
// its traffic has no queue at all: a loop writes each call's output straight
// to the socket and only the bytes the kernel did not take are copied here.
// A queue is a list of fixed-size blocks from the loop's pool: it grows by
// a block at a time and gives each block back as soon as it is written, so
// its memory follows the bytes actually pending (at most one partly used
// block at each end beyond them), whatever the peer's pace.

// blockSize is the unit of queued memory.
const blockSize = 16 << 10

// maxFreeOutBlocks bounds the blocks a loop keeps for reuse (2 MiB).
const maxFreeOutBlocks = 128

// maxIovecs bounds the buffers handed to one Driver.Write.
const maxIovecs = 16

type outQueue struct {
	blocks [][]byte // blocks[0][off:] is the next byte to send; every block but the last is full
	off    int
	n      int // bytes pending in blocks
	// pong is an encoded pong to send once blocks is empty (only the latest
	// waits; see session.IO.Pong); pongLen 0: none.
	pong    [136]byte
	pongLen uint8
	// since is when the peer last took bytes (or the queue began): the
	// write timeout counts from it. closeBy is when a connection that asked
	// to close stops waiting for the peer to take the rest (0: not closing).
	since   int64
	closeBy int64
}

// pending is what the queue holds, pong included.
func (q *outQueue) pending() int { return q.n + int(q.pongLen) }

func (q *outQueue) empty() bool { return q.n == 0 && q.pongLen == 0 }

// blockPool is a loop's free blocks; inUse counts those held by queues.
type blockPool struct {
	free  [][]byte
	inUse int
}

func (p *blockPool) get() []byte {
	p.inUse++
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, blockSize)
}

func (p *blockPool) put(b []byte) {
	p.inUse--
	if len(p.free) < maxFreeOutBlocks {
		p.free = append(p.free, b[:0])
	}
}

// append queues p behind what waits.
func (q *outQueue) append(p []byte, pool *blockPool) {
	q.n += len(p)
	for len(p) > 0 {
		if len(q.blocks) == 0 || len(q.blocks[len(q.blocks)-1]) == blockSize {
			q.blocks = append(q.blocks, pool.get())
		}
		last := &q.blocks[len(q.blocks)-1]
		k := min(len(p), blockSize-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
}

// setPong makes p (at most 135 bytes, a pong frame) the pong that waits,
// replacing any earlier one.
func (q *outQueue) setPong(p []byte) {
	q.pongLen = uint8(copy(q.pong[:], p))
}

// commitPong moves a waiting pong into the byte queue, so that what is
// appended next (a close frame) follows it.
func (q *outQueue) commitPong(pool *blockPool) {
	if q.pongLen > 0 {
		n := q.pongLen
		q.pongLen = 0
		q.append(q.pong[:n], pool)
	}
}

// iovecs returns the next buffers to write, at most maxIovecs, into dst.
func (q *outQueue) iovecs(dst [][]byte) [][]byte {
	dst = dst[:0]
	for i, b := range q.blocks {
		if len(dst) == maxIovecs {
			return dst
		}
		if i == 0 {
			b = b[q.off:]
		}
		dst = append(dst, b)
	}
	if q.pongLen > 0 && len(dst) < maxIovecs {
		dst = append(dst, q.pong[:q.pongLen])
	}
	return dst
}

// advance drops n written bytes from the front, giving written blocks back
// to pool; the pong goes once the blocks before it are gone.
func (q *outQueue) advance(n int, pool *blockPool) {
	for n > 0 && len(q.blocks) > 0 {
		b := q.blocks[0]
		k := min(n, len(b)-q.off)
		q.off += k
		q.n -= k
		n -= k
		if q.off == len(b) {
			pool.put(b)
			q.blocks[0] = nil
			q.blocks = q.blocks[1:]
			q.off = 0
		}
	}
	if len(q.blocks) == 0 {
		q.blocks = q.blocks[:0:0] // the header array goes too: an idle queue keeps nothing
	}
	if n > 0 && q.pongLen > 0 {
		if n >= int(q.pongLen) {
			q.pongLen = 0
		} else {
			// A pong partly written: keep its tail as bytes, in order.
			rest := append([]byte(nil), q.pong[n:q.pongLen]...)
			q.pongLen = 0
			q.append(rest, pool)
		}
	}
}

// release gives every block back.
func (q *outQueue) release(pool *blockPool) {
	for _, b := range q.blocks {
		pool.put(b)
	}
	*q = outQueue{}
}
