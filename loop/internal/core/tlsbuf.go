package core

import (
	"bytes"
	"crypto/tls"
	"math/bits"
	"reflect"
	"sync"
	"unsafe"
)

// What crypto/tls keeps between reads, and how the core keeps it small.
//
// A tls.Conn reads records into its rawInput (a bytes.Buffer), decrypts
// them there in place (input, a bytes.Reader, is a view of the plaintext),
// and collects handshake messages in hand (another bytes.Buffer). None of
// the three ever shrinks (Go issue 43563): after one 16 KiB record a
// connection keeps a 16-24 KiB rawInput for the rest of its life, and even
// small messages leave the 0.5-2 KiB the handshake grew it to, plus hand's
// 1.5 KiB (a post-quantum ClientHello).
//
// The core therefore lends each connection its loop's record buffer while
// it reads (attach) and takes it back when the read would block (detach):
// an empty rawInput becomes a zero bytes.Buffer again, a partial record is
// moved into a pooled buffer of its own size, and empty input and hand
// views are dropped. An idle connection keeps none of them, and reading a
// complete record allocates nothing.
//
// crypto/tls exports no way to do this, so tlsInternals finds the three
// fields by name and type through reflect, once, and touches them only
// when all three are exactly where and what it expects; otherwise it does
// nothing (the connection keeps crypto/tls's own buffers: correct, larger).
// TestTLSInternalsLayout fails loudly when a Go release moves them.

// tlsLayout is where the fields live in a tls.Conn, or ok false.
type tlsLayout struct {
	ok                 bool
	rawInput, input    uintptr
	hand               uintptr
	rawInputT, handT   reflect.Type
	inputT             reflect.Type
	reasonNotAvailable string
}

var tlsInternals = findTLSLayout()

func findTLSLayout() tlsLayout {
	t := reflect.TypeOf(tls.Conn{})
	bufT, rdrT := reflect.TypeOf(bytes.Buffer{}), reflect.TypeOf(bytes.Reader{})
	var l tlsLayout
	field := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		if !ok || f.Type != want || len(f.Index) != 1 {
			if l.reasonNotAvailable == "" {
				l.reasonNotAvailable = "tls.Conn has no field " + name + " of type " + want.String()
			}
			return 0, false
		}
		return f.Offset, true
	}
	var ok1, ok2, ok3 bool
	l.rawInput, ok1 = field("rawInput", bufT)
	l.input, ok2 = field("input", rdrT)
	l.hand, ok3 = field("hand", bufT)
	l.ok = ok1 && ok2 && ok3
	return l
}

func (l *tlsLayout) rawInputOf(tc *tls.Conn) *bytes.Buffer {
	return (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), l.rawInput))
}

func (l *tlsLayout) inputOf(tc *tls.Conn) *bytes.Reader {
	return (*bytes.Reader)(unsafe.Add(unsafe.Pointer(tc), l.input))
}

func (l *tlsLayout) handOf(tc *tls.Conn) *bytes.Buffer {
	return (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), l.hand))
}

// recordBuf is a loop's buffer for the records of one read: a driver's
// read (at most 64 KiB on epoll) plus a partial record carried over.
const recordBufSize = 64<<10 + maxRecord

// maxRecord is the largest TLS record on the wire (header, 16 KiB of
// plaintext and the most expansion RFC 5246 allows).
const maxRecord = 5 + 16<<10 + 2048

// attach makes rec (empty, the loop's record buffer) tc's rawInput for the
// reads that follow, holding the partial record the connection kept and
// then p, the bytes just read; the partial record's buffer goes back to
// its pool. With the input already in rawInput, crypto/tls reads whole
// records without calling memConn (its readFromUntil allocates a reader
// each time it must read), and readable says when a Read has something to
// work on. It reports false, doing nothing, when the layout is unknown.
func (t *tlsConn) attach(rec, p []byte) bool {
	if !tlsInternals.ok {
		return false
	}
	raw := tlsInternals.rawInputOf(t.tc)
	rec = append(append(rec[:0], raw.Bytes()...), p...)
	*raw = *bytes.NewBuffer(rec)
	if t.partial != nil {
		putRecordBuf(t.partial)
		t.partial = nil
	}
	t.attached = true
	return true
}

// readable reports whether a tls.Conn.Read would find something without
// reading from memConn: plaintext left from a record, or a whole record.
func (t *tlsConn) readable() bool {
	if tlsInternals.inputOf(t.tc).Len() > 0 {
		return true
	}
	b := tlsInternals.rawInputOf(t.tc).Bytes()
	return len(b) >= 5 && len(b) >= 5+(int(b[3])<<8|int(b[4]))
}

// detach takes the loop's record buffer back once a read would block: what
// is left of a partial record moves to a pooled buffer of its own size, and
// views of the loop's buffer are dropped. It also drops hand when it is
// empty (it is only ever used again by post-handshake messages).
func (t *tlsConn) detach() {
	if !tlsInternals.ok {
		return
	}
	if !t.attached {
		return
	}
	t.attached = false
	raw := tlsInternals.rawInputOf(t.tc)
	if n := raw.Len(); n == 0 {
		*raw = bytes.Buffer{}
	} else {
		bp := getRecordBuf(n)
		*bp = append(*bp, raw.Bytes()...)
		t.partial = bp
		*raw = *bytes.NewBuffer(*bp)
	}
	if in := tlsInternals.inputOf(t.tc); in.Len() == 0 {
		*in = bytes.Reader{}
	}
	if h := tlsInternals.handOf(t.tc); h.Len() == 0 && h.Cap() > 0 {
		*h = bytes.Buffer{}
	}
}

// trimHandshake drops what the handshake left in tc's buffers that is
// empty (rawInput is handed to the first read as it is).
func (t *tlsConn) trimHandshake() {
	if !tlsInternals.ok {
		return
	}
	if h := tlsInternals.handOf(t.tc); h.Len() == 0 {
		*h = bytes.Buffer{}
	}
}

// Partial records wait in buffers from power-of-two pools (64 B to 32
// KiB), so that a connection holds about what it has read and a steady
// flow of split records allocates nothing.
const (
	recMinShift = 6
	recMaxShift = 15
)

var recordPools [recMaxShift - recMinShift + 1]sync.Pool

func getRecordBuf(n int) *[]byte {
	cls := 0
	if n > 1<<recMinShift {
		cls = bits.Len(uint(n-1)) - recMinShift
	}
	if cls >= len(recordPools) {
		b := make([]byte, 0, n)
		return &b
	}
	if v := recordPools[cls].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, 1<<(cls+recMinShift))
	return &b
}

func putRecordBuf(bp *[]byte) {
	c := cap(*bp)
	if c < 1<<recMinShift || c > 1<<recMaxShift || c&(c-1) != 0 {
		return
	}
	*bp = (*bp)[:0]
	recordPools[bits.Len(uint(c))-1-recMinShift].Put(bp)
}
