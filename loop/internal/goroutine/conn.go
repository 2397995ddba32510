package goroutine

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
)

// gloop is the driver of one core loop. mu serializes every call into the
// core loop: readers, writers, the accept loop and the loop goroutine take
// it.
type gloop struct {
	e    *engine
	core *core.Loop
	mu   sync.Mutex
	wake chan struct{}
	stop bool // under mu
	// wakeAt is when the loop goroutine will next look at its timers
	// (engine clock, under mu): a call that arms an earlier timer wakes it.
	wakeAt int64

	conns []*goConn // by driver handle (core.Conn.FD); nil: free
	free  []int32
	// caller is the connection whose reader or writer is in a core call
	// now, and callerRole which: output the core hands that connection is
	// written by that goroutine once the call returns.
	caller     *goConn
	callerRole uint8
}

// Who writes a connection's wbuf.
const (
	ownerNone   uint8 = iota
	ownerReader       // its reader, once its call returns
	ownerWriter       // its writer goroutine
)

// goConn is one connection's socket and goroutines. Fields are under its
// loop's mu unless noted.
type goConn struct {
	l  *gloop
	nc net.Conn
	c  *core.Conn // nil once the core is done with it

	wbuf       []byte // handed by the core, being written by owner
	owner      uint8
	wantWrite  bool // the core waits to hear that wbuf is written
	closeAfter bool // the core closed it while wbuf was still being written
	writer     bool // a writer goroutine runs
	wsignal    chan struct{}
	closed     bool
}

func (l *gloop) signal() error {
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// run is the loop goroutine: tasks and timers.
func (l *gloop) run() {
	defer l.e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		if l.core.Pending() {
			l.core.RunTasks()
		}
		l.core.Advance()
		if l.stop {
			l.core.Teardown()
			l.mu.Unlock()
			return
		}
		d := l.core.Timeout()
		if d < 0 {
			d = int(time.Hour / time.Millisecond)
		}
		l.wakeAt = core.Now() + int64(d)*int64(time.Millisecond)
		l.mu.Unlock()
		timer.Reset(time.Duration(d) * time.Millisecond)
		select {
		case <-l.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// unlock ends a call into the core from a reader, a writer or the accept
// loop: if the call armed a timer earlier than the loop goroutine's next
// look, that goroutine is woken.
func (l *gloop) unlock() {
	if d := l.core.Timeout(); d >= 0 && core.Now()+int64(d)*int64(time.Millisecond) < l.wakeAt {
		l.wakeAt = 0
		_ = l.signal()
	}
	l.mu.Unlock()
}

// serve starts a connection on this loop (from the accept loop).
func (l *gloop) serve(nc net.Conn) {
	gc := &goConn{l: l, nc: nc}
	if n := l.e.opts.SendBuffer; n > 0 {
		if tc, ok := nc.(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(n)
		} else if tc, ok := nc.(*tls.Conn); ok {
			if raw, ok := tc.NetConn().(*net.TCPConn); ok {
				_ = raw.SetWriteBuffer(n)
			}
		}
	}
	l.mu.Lock()
	if l.stop {
		l.mu.Unlock()
		nc.Close()
		l.e.g.Unclaim()
		return
	}
	var fd int32
	if n := len(l.free); n > 0 {
		fd = l.free[n-1]
		l.free = l.free[:n-1]
		l.conns[fd] = gc
	} else {
		fd = int32(len(l.conns))
		l.conns = append(l.conns, gc)
	}
	gc.c = l.core.NewConn(int(fd))
	l.e.wg.Add(1)
	var peer netip.Addr
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr().Unmap()
	}
	l.core.StartServer(gc.c, peer)
	l.unlock()
	go gc.read()
}

// read is the connection's reader goroutine.
func (gc *goConn) read() {
	l := gc.l
	defer l.e.wg.Done()
	buf := make([]byte, readBuffer)
	for {
		n, err := gc.nc.Read(buf)
		l.mu.Lock()
		if gc.c == nil {
			l.mu.Unlock()
			return
		}
		if n > 0 {
			l.caller, l.callerRole = gc, ownerReader
			l.core.Input(gc.c, buf[:n])
			l.caller = nil
		}
		if err != nil && gc.c != nil {
			if errors.Is(err, net.ErrClosed) {
				err = io.EOF
			}
			l.core.Hangup(gc.c, err)
		}
		mine := gc.owner == ownerReader
		l.unlock()
		if mine {
			gc.flush(ownerReader)
		}
		if err != nil {
			return
		}
	}
}

// flush writes wbuf and what the core hands on after it, until the core has
// nothing more; who is the goroutine that owns wbuf (the reader after its
// call, or the writer).
func (gc *goConn) flush(who uint8) {
	l := gc.l
	for {
		wt := l.e.opts.Config.WriteTimeoutOrDefault()
		if wt > 0 {
			_ = gc.nc.SetWriteDeadline(time.Now().Add(wt))
		} else {
			_ = gc.nc.SetWriteDeadline(time.Time{})
		}
		_, err := gc.nc.Write(gc.wbuf)
		l.mu.Lock()
		gc.owner = ownerNone
		gc.wbuf = gc.wbuf[:0]
		if cap(gc.wbuf) > readBuffer {
			gc.wbuf = nil // an idle connection keeps no large buffer
		}
		if gc.closeAfter {
			gc.nc.Close()
			l.mu.Unlock()
			return
		}
		if err != nil {
			if gc.c != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = core.ErrWriteTimeout
				}
				l.core.Hangup(gc.c, err)
			}
			l.mu.Unlock()
			return
		}
		if gc.wantWrite && gc.c != nil {
			l.caller, l.callerRole = gc, who
			l.core.Writable(gc.c) // may hand over more: ours to write
			l.caller = nil
		}
		more := gc.owner == who
		l.unlock()
		if !more {
			return
		}
	}
}

// writeLoop is the connection's writer goroutine, started the first time
// the core hands it bytes outside the connection's own calls.
func (gc *goConn) writeLoop() {
	l := gc.l
	defer l.e.wg.Done()
	for range gc.wsignal {
		l.mu.Lock()
		mine := gc.owner == ownerWriter
		l.mu.Unlock()
		if mine {
			gc.flush(ownerWriter)
		}
	}
}

// ---- core.Driver (under mu) ----

func (l *gloop) conn(c *core.Conn) *goConn { return l.conns[c.FD()] }

func (l *gloop) Write(c *core.Conn, bufs [][]byte) (int, error) {
	gc := l.conn(c)
	if gc.owner != ownerNone {
		return 0, nil
	}
	n := 0
	for _, b := range bufs {
		k := min(len(b), writeChunk-n)
		gc.wbuf = append(gc.wbuf, b[:k]...)
		n += k
		if n == writeChunk {
			break
		}
	}
	if n == 0 {
		return 0, nil
	}
	if l.caller == gc {
		gc.owner = l.callerRole
		return n, nil
	}
	gc.owner = ownerWriter
	if !gc.writer {
		gc.writer = true
		gc.wsignal = make(chan struct{}, 1)
		l.e.wg.Add(1)
		go gc.writeLoop()
	}
	select {
	case gc.wsignal <- struct{}{}:
	default:
	}
	return n, nil
}

func (l *gloop) Interest(c *core.Conn, read, write bool) error {
	gc := l.conn(c)
	gc.wantWrite = write
	if write && gc.owner == ownerNone {
		// Idle already: say so on the loop (never from inside the call).
		_ = l.core.Post(func() {
			if gc.c != nil && gc.wantWrite && gc.owner == ownerNone {
				l.core.Writable(gc.c)
			}
		})
	}
	return nil
}

func (l *gloop) Close(c *core.Conn) {
	gc := l.conn(c)
	gc.c = nil
	l.conns[c.FD()] = nil
	l.free = append(l.free, int32(c.FD()))
	if gc.writer {
		close(gc.wsignal)
	}
	if gc.owner != ownerNone && !l.stop {
		// Its last bytes (a close frame, an HTTP answer) are being written:
		// the socket closes when they are out or the write times out.
		gc.closeAfter = true
		_ = gc.nc.SetReadDeadline(time.Now())
		return
	}
	gc.nc.Close()
}

func (l *gloop) RemoteAddr(c *core.Conn) net.Addr { return l.conn(c).nc.RemoteAddr() }

// TLS reports whether c came through the TLS listener.
func (l *gloop) TLS(c *core.Conn) bool {
	_, ok := l.conn(c).nc.(*tls.Conn)
	return ok
}
