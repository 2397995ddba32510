package session

import (
	"errors"
	"io"

	"github.com/gobwas/ws"
	"github.com/klauspost/compress/flate"
	"github.com/wsloop/wsloop/codec"
)

// permessage-deflate (RFC 7692) in the frame path, with no context
// takeover in either direction: every message is compressed and inflated on
// its own, so one compressor and one decompressor per loop serve every
// connection of the loop, and a connection keeps only bits in its flags
// (negotiated, its peer's window limit) and, in msgOp, whether the message
// being received is compressed.
//
// A compressed message that arrives in pieces (fragments, or one frame over
// several reads) is kept compressed in the connection's pooled buffer, like
// any partial message, and inflated at once when its last frame is in: the
// decompressor is never left in the middle of a message between two engine
// calls, so the messages of many connections interleaved on one loop cannot
// disturb each other, and what a message in flight holds is its compressed
// bytes (usually fewer than the inflated ones), not a decompressor's
// window (about 40 KB). The inflated size is bounded by MaxMessage while
// inflating: a bomb is refused with 1009 after at most MaxMessage bytes.
//
// The library is github.com/klauspost/compress/flate: against the standard
// library's compress/flate (see BenchmarkFlateLibraries) it compresses the
// same JSON at level 1 1.5-2x faster to the same size, inflates without
// allocating (compress/flate allocates per message once a message carries
// dynamic Huffman blocks past its first), its level-1 compressor is
// 0.82 MB against 1.17 MB, and it can compress within a smaller window,
// which a peer may ask for (server_max_window_bits, client_max_window_bits)
// and compress/flate cannot do.

// rsv1 is the header's RSV1 bit in ws.Header.Rsv: "compressed" on the
// first frame of a message (RFC 7692 6).
const rsv1 = 4

// msgDeflated marks Conn.msgOp: the message being received is compressed.
const msgDeflated = 0x80

// DefaultCompressThreshold is the default Compression.Threshold: below it
// deflate without context takeover rarely gains anything (a 64-byte JSON
// reading grows by a few bytes).
const DefaultCompressThreshold = 128

// Compression turns on permessage-deflate (RFC 7692). A server accepts the
// first offer it can honour and answers "permessage-deflate;
// server_no_context_takeover; client_no_context_takeover" (with the
// server_max_window_bits the client asked for, if any); a client offers
// "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover; client_max_window_bits". Neither end keeps a
// compression context between messages, so a connection costs nothing for
// it; each loop that compresses keeps one compressor and one decompressor
// (about 0.86 MB), made when first needed.
type Compression struct {
	// Threshold is the smallest payload in bytes sent compressed; 0 means
	// DefaultCompressThreshold, negative compresses every message. A
	// message that does not shrink is sent as it is either way.
	Threshold int
}

func (c *Compression) threshold() int {
	switch {
	case c.Threshold < 0:
		return 0
	case c.Threshold == 0:
		return DefaultCompressThreshold
	}
	return c.Threshold
}

// Errors of compressed input.
var (
	errDeflateData      = &codec.ProtocolError{Code: 1007, Reason: "compressed message does not inflate"}
	errRsv1Continuation = &codec.ProtocolError{Code: 1002, Reason: "RSV1 on a continuation frame"}
)

// flateState is a loop's compression state, reached through the IO the
// engine passes to every call (one per loop). It is made on first use.
type flateState struct {
	w   *flate.Writer    // full window, reset per message
	win [7]*flate.Writer // windows of 2^8 .. 2^14 bytes, made when a peer asks for one
	r   io.ReadCloser    // the decompressor, reset per message
	src inflateSource    // what r reads: a message and the tail
	dst sliceWriter      // where the compressors write
	one [1]byte          // probe for bytes past the limit

	inflated uint64 // bytes the decompressor produced, in all (tests bound a bomb's)
}

func (io *IO) loopFlate() *flateState {
	if io.fl == nil {
		io.fl = &flateState{}
	}
	return io.fl
}

// writer returns the compressor for a payload of n bytes sent within a
// window of 2^bits bytes: the full-window one when the window is 15 bits
// or the payload is no longer than the window (without context takeover no
// match can reach further back than the payload's own start).
func (fs *flateState) writer(bits uint8, n int) *flate.Writer {
	if bits >= 15 || n <= 1<<bits {
		if fs.w == nil {
			fs.w, _ = flate.NewWriter(nil, flate.BestSpeed)
		}
		return fs.w
	}
	i := bits - 8
	if fs.win[i] == nil {
		fs.win[i], _ = flate.NewWriterWindow(nil, 1<<bits)
	}
	return fs.win[i]
}

// deflateTail ends every sync-flushed message (RFC 7692 7.2.1).
const deflateTail = "\x00\x00\xff\xff"

// appendDeflated appends p compressed (no context takeover) within a
// window of 2^bits bytes to dst, without the tail, and reports whether it
// came out shorter than p.
func (fs *flateState) appendDeflated(dst []byte, p []byte, bits uint8) ([]byte, bool) {
	start := len(dst)
	w := fs.writer(bits, len(p))
	fs.dst.b = dst
	w.Reset(&fs.dst)
	_, _ = w.Write(p) // sliceWriter never fails
	_ = w.Flush()
	dst = fs.dst.b
	fs.dst.b = nil
	if len(dst)-start < len(deflateTail) || string(dst[len(dst)-len(deflateTail):]) != deflateTail {
		return dst[:start], false // cannot happen with a sync flush; be safe
	}
	dst = dst[:len(dst)-len(deflateTail)]
	return dst, len(dst)-start < len(p)
}

// sliceWriter appends what it is given to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// inflateTail is the sync-flush tail RFC 7692 7.2.2 says to append, then
// an empty final stored block, so that the decompressor ends the message
// with io.EOF rather than waiting for more.
const inflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// inflateSource reads a compressed message and then inflateTail, as a
// flate.Reader (io.Reader and io.ByteReader), so that the decompressor
// reads it without a buffer of its own.
type inflateSource struct {
	p    []byte
	tail int // bytes of inflateTail already read
}

func (s *inflateSource) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	n := copy(b, inflateTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		b := s.p[0]
		s.p = s.p[1:]
		return b, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	s.tail++
	return inflateTail[s.tail-1], nil
}

var errInflateTooBig = errors.New("inflated message over the limit")

// inflate inflates the compressed payload p into a pooled buffer of at
// most limit bytes. It stops as soon as the output would pass limit
// (errInflateTooBig), so at most limit bytes are ever held, and returns
// any other error for input that is not a valid compressed message.
func (fs *flateState) inflate(p []byte, limit int) (*[]byte, error) {
	fs.src = inflateSource{p: p}
	if fs.r == nil {
		fs.r = flate.NewReader(&fs.src)
	} else if err := fs.r.(flate.Resetter).Reset(&fs.src, nil); err != nil {
		return nil, err
	}
	defer func() { fs.src.p = nil }()
	size := min(limit, max(4*len(p), 256))
	bp := getBuf(size)
	for {
		b := *bp
		if len(b) == limit {
			// At the limit: anything more is over it.
			n, err := fs.r.Read(fs.one[:])
			fs.inflated += uint64(n)
			if n > 0 {
				putBuf(bp)
				return nil, errInflateTooBig
			}
			if err == io.EOF {
				return bp, nil
			}
			putBuf(bp)
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, err
		}
		if len(b) == cap(b) {
			bp = growBuf(bp, min(limit, 2*cap(b)), 0)
			b = *bp
		}
		n, err := fs.r.Read(b[len(b):min(cap(b), limit)])
		fs.inflated += uint64(n)
		*bp = b[:len(b)+n]
		switch {
		case err == io.EOF:
			return bp, nil
		case err != nil:
			putBuf(bp)
			return nil, err
		}
	}
}

// ---- The connection's side ----

// Compressed reports whether the connection negotiated permessage-deflate.
func (c *Conn) Compressed() bool { return c.flags&fDeflate != 0 }

// rsvAllowed is the reserved bits the negotiated extensions define.
func (c *Conn) rsvAllowed() byte {
	if c.flags&fDeflate != 0 {
		return rsv1
	}
	return 0
}

// The deflate bits of Conn.flags (3 bits: what the flags have left) code
// the window this end may compress within: 0 off, 1 15 bits, 2-6 14 to 10
// bits, 7 8 bits. A peer that asks for 9 bits gets 8: a smaller window than
// asked for is always allowed (RFC 7692 7.1.2).
func deflateCode(bits uint8) uint16 {
	switch {
	case bits >= 15:
		return 1
	case bits <= 9:
		return 7
	}
	return 16 - uint16(bits)
}

// sendWindow is the window, in bits, this end may compress within (15 when
// compression is off).
func (c *Conn) sendWindow() uint8 {
	switch code := c.flags & fDeflate >> fDeflateShift; code {
	case 0, 1:
		return 15
	case 7:
		return 8
	default:
		return uint8(16 - code)
	}
}

// setSendWindow records that compression is on, within 2^bits bytes.
func (c *Conn) setSendWindow(bits uint8) {
	c.flags = c.flags&^fDeflate | deflateCode(bits)<<fDeflateShift
}

// shouldDeflate reports whether a payload of n bytes is sent compressed.
func (c *Conn) shouldDeflate(n int) bool {
	return c.flags&fDeflate != 0 && c.cfg.Compression != nil && n >= c.cfg.Compression.threshold()
}

// appendDeflatedFrame encodes p as one compressed final data frame into
// the call's output and reports whether it did: a payload that does not
// shrink is left to the caller to send as it is.
func (c *Conn) appendDeflatedFrame(op Opcode, p []byte) bool {
	io := c.io
	client := c.flags&fClient != 0
	hmax := codec.MaxHeaderSize - 4
	if client {
		hmax = codec.MaxHeaderSize
	}
	start := len(io.Out)
	// Compress behind room for the largest header, then move the body up
	// to the header's real size.
	out := append(io.Out, make([]byte, hmax)...)
	out, shrank := io.loopFlate().appendDeflated(out, p, c.sendWindow())
	if !shrank {
		io.Out = out[:start]
		return false
	}
	body := len(out) - start - hmax
	h := ws.Header{Fin: true, Rsv: rsv1, OpCode: ws.OpCode(op), Length: int64(body)}
	if client {
		h.Masked = true
		h.Mask = codec.NewMask()
	}
	hs := codec.HeaderSize(h)
	copy(out[start+hs:], out[start+hmax:])
	codec.AppendHeader(out[start:start], h)
	io.Out = out[:start+hs+body]
	if client {
		codec.Unmask(io.Out[start+hs:], h.Mask, 0)
	}
	if st := c.cfg.Stats; st != nil {
		st.Deflated.Add(1)
	}
	return true
}

// deliverDeflated inflates a complete compressed message and hands it to
// the handler; false when the connection failed instead.
func (c *Conn) deliverDeflated(op ws.OpCode, p []byte) bool {
	if len(p) == 0 {
		// Not a deflate stream at all, but what zlib-based peers and
		// receivers take for an empty message (zlib does not complain
		// about "00 00 ff ff" alone): so do we.
		if st := c.cfg.Stats; st != nil {
			st.Inflated.Add(1)
		}
		c.deliver(op, nil)
		return true
	}
	bp, err := c.io.loopFlate().inflate(p, c.cfg.maxMessage())
	if err != nil {
		if err == errInflateTooBig {
			c.protocolError(errTooBig)
		} else {
			c.protocolError(errDeflateData)
		}
		return false
	}
	defer putBuf(bp)
	if op == ws.OpText {
		c.utf8.Reset()
		if !(c.utf8.Write(*bp) && c.utf8.Complete()) {
			c.protocolError(codec.ErrInvalidUTF8)
			return false
		}
	}
	if st := c.cfg.Stats; st != nil {
		st.Inflated.Add(1)
	}
	c.deliver(op, *bp)
	return true
}

// maxCompressed bounds the compressed bytes of a message: MaxMessage plus
// what deflate may add to incompressible data (5 bytes per stored block of
// up to 64 KiB; 1/4096 is ample), so that a message within MaxMessage is
// never refused for its compressed size.
func (c *Conn) maxCompressed() int {
	m := c.cfg.maxMessage()
	return int(min(int64(m)+int64(m/4096)+64, maxMessageCap))
}
