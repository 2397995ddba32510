//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gnet

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsloop/wsloop/loop/internal/core"
)

// gloop is the driver of one core loop, bound to one gnet event loop on its
// first connection. Apart from the atomics, its fields are touched only on
// that gnet loop.
type gloop struct {
	e    *engine
	core *core.Loop
	el   atomic.Pointer[gnet.EventLoop]

	refs []*gref // by driver handle (core.Conn.FD); nil: free
	free []int32
	// inCall is the connection whose gnet callback is calling the core: a
	// close it asks for is carried out by the callback's return action.
	inCall *gref
	// closing are connections the core finished while gnet still held
	// bytes for them: closed once gnet's buffer is empty (or at teardown).
	closing map[*gref]struct{}

	drainTask  gnet.Runnable
	tickTask   gnet.Runnable
	tickQueued atomic.Bool
}

// gref is gnet's Conn context: our handle on the connection.
type gref struct {
	l          *gloop
	gc         gnet.Conn
	c          *core.Conn // nil once the core is done with it
	fd         int32
	wantWrite  bool
	closeNow   bool // the core closed it inside a callback
	gnetClosed bool
}

// wake makes the loop run its tasks (from any goroutine). Before the loop is
// bound to a gnet loop there is nobody to wake: binding runs them.
func (l *gloop) wake() error {
	el := l.el.Load()
	if el == nil {
		return nil
	}
	return (*el).Execute(context.Background(), l.drainTask)
}

func (l *gloop) add(gc gnet.Conn) *gref {
	var fd int32
	if n := len(l.free); n > 0 {
		fd = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		fd = int32(len(l.refs))
		l.refs = append(l.refs, nil)
	}
	ref := &gref{l: l, gc: gc, fd: fd}
	l.refs[fd] = ref
	ref.c = l.core.NewConn(int(fd))
	gc.SetContext(ref)
	return ref
}

// afterCall is the action a gnet callback returns for ref.
func (l *gloop) afterCall(ref *gref) gnet.Action {
	if ref.closeNow && !ref.gnetClosed {
		ref.closeNow = false
		if ref.gc.OutboundBuffered() > 0 {
			l.closeLater(ref)
			return gnet.None
		}
		return gnet.Close
	}
	return gnet.None
}

func (l *gloop) closeLater(ref *gref) {
	if l.closing == nil {
		l.closing = make(map[*gref]struct{})
	}
	l.closing[ref] = struct{}{}
}

// tick is the loop's timer task: the wheel, then connections waiting for
// gnet's buffer to drain.
func (l *gloop) tick(context.Context) error {
	l.tickQueued.Store(false)
	l.core.Advance()
	for _, ref := range l.refs {
		if ref != nil && ref.c != nil && ref.wantWrite && ref.gc.OutboundBuffered() == 0 {
			l.core.Writable(ref.c)
		}
	}
	for ref := range l.closing {
		if ref.gc.OutboundBuffered() == 0 {
			delete(l.closing, ref)
			_ = (*l.el.Load()).Close(ref.gc)
		}
	}
	return nil
}

// ---- core.Driver ----

func (l *gloop) Write(c *core.Conn, bufs [][]byte) (int, error) {
	ref := l.refs[c.FD()]
	if ref.gnetClosed {
		return 0, net.ErrClosed
	}
	if ref.gc.OutboundBuffered() > 0 {
		return 0, nil // gnet holds a write's worth already
	}
	var n int
	var err error
	if len(bufs) == 1 {
		n, err = ref.gc.Write(bufs[0])
	} else {
		n, err = ref.gc.Writev(bufs)
	}
	if err != nil || ref.gnetClosed {
		return 0, net.ErrClosed
	}
	return n, nil
}

func (l *gloop) Interest(c *core.Conn, read, write bool) error {
	l.refs[c.FD()].wantWrite = write
	return nil
}

func (l *gloop) Close(c *core.Conn) {
	ref := l.refs[c.FD()]
	ref.c = nil
	l.refs[ref.fd] = nil
	l.free = append(l.free, ref.fd)
	switch {
	case ref.gnetClosed:
	case l.inCall == ref:
		ref.closeNow = true
	case ref.gc.OutboundBuffered() > 0:
		l.closeLater(ref)
	default:
		_ = (*l.el.Load()).Close(ref.gc)
	}
}

func (l *gloop) RemoteAddr(c *core.Conn) net.Addr { return l.refs[c.FD()].gc.RemoteAddr() }
