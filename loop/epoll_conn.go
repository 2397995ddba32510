//go:build linux || darwin || freebsd || netbsd || openbsd

package loop

import (
	"errors"
	"io"
	"net"

	"github.com/wsloop/wsloop/session"
	"golang.org/x/sys/unix"
)

// conn is one socket of an event loop: the session plus what the engine
// needs. It is the Transport of its session. It is kept small, 112 bytes,
// since it is what an idle connection costs: it lives in its loop's
// connection table (see connChunk), keeps its timer as one stamp and
// generation and flags in one word, finds its loop through its chunk, and
// holds no pointer for what only a busy connection has: the bytes the
// kernel has not taken yet wait in the loop's outs map (flagOut).
type conn struct {
	ws    session.Conn
	timer uint32 // the requested tick in engine milliseconds (0: none); once flagDead, the cause
	fd    int32
	slot  int32
	bits  uint32 // generation << 8 | flags
}

const (
	flagCloseReq   = 1 << iota // Transport.Close was called; closing once out drains
	flagDead                   // the socket failed (cause in timer); close at the next settle
	flagClosed                 // the fd is closed and the slot released
	flagConnecting             // client: non-blocking connect in progress, no session yet
	flagDialing                // client: connected, session handshake in progress
	flagOut                    // bytes wait for the socket in the loop's outs[slot]
)

// genBits is the width of a connection's generation: a handle names
// (slot, generation), so a stale handle is confused with a new connection
// only after 2^24 connections have come and gone on that very slot.
const genBits = 24

func (c *conn) has(f uint32) bool { return c.bits&f != 0 }
func (c *conn) set(f uint32)      { c.bits |= f }
func (c *conn) clear(f uint32)    { c.bits &^= f }
func (c *conn) gen() uint32       { return c.bits >> 8 }

const (
	causeEOF   = 0xffff
	causePanic = 0xfffe
)

// msStamp is an engine time in wrapping milliseconds, never 0 (0 means none).
func msStamp(at int64) uint32 {
	s := uint32(at / int64(1e6))
	if s == 0 {
		s = 1
	}
	return s
}

// keyDial marks wheel keys of dial deadlines (the rest is the conn's id).
const keyDial = 1 << 63

var errTaskPanic = errors.New("wsloop: a task for this connection panicked")

func errnoCause(err error) uint32 {
	if e, ok := err.(unix.Errno); ok && e < 0xf000 {
		return uint32(e)
	}
	return uint32(unix.EIO)
}

func (c *conn) fail(cause uint32) {
	if !c.has(flagDead | flagClosed) {
		c.set(flagDead)
		c.timer = cause
	}
}

func (c *conn) err() error {
	switch c.timer {
	case 0:
		return nil
	case causeEOF:
		return io.EOF
	case causePanic:
		return errTaskPanic
	}
	return unix.Errno(c.timer)
}

func (c *conn) id() uint64 { return uint64(c.slot)<<32 | uint64(c.gen()) }

// usable reports whether tasks may run on the session.
func (c *conn) usable() bool {
	return !c.has(flagCloseReq | flagDead | flagClosed | flagConnecting)
}

// Write implements session.Transport: straight to the socket, and a copy
// of what the kernel did not take.
func (c *conn) Write(p []byte) (int, error) {
	if c.has(flagDead | flagClosed) {
		return 0, session.ErrClosed
	}
	if c.has(flagOut) {
		o := c.loop().outs[c.slot]
		o.b = append(o.b, p...)
		return len(o.b) - o.off, nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	for {
		m, err := unix.Write(int(c.fd), p)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			c.fail(errnoCause(err))
			return 0, err
		}
		n = m
		break
	}
	if n == len(p) {
		return 0, nil
	}
	l := c.loop()
	o := l.getOut()
	o.b = append(o.b, p[n:]...)
	l.outs[c.slot] = o
	c.set(flagOut)
	if err := l.p.mod(int(c.fd), c.slot, !c.has(flagCloseReq), true); err != nil {
		c.fail(errnoCause(errors.Unwrap(err)))
	}
	return len(p) - n, nil
}

// Close implements session.Transport: the socket closes once what waits
// is written (at most lingerTimeout later); TransportClosed follows.
func (c *conn) Close() {
	if c.has(flagCloseReq | flagClosed) {
		return
	}
	c.set(flagCloseReq)
	if !c.has(flagOut) || c.has(flagDead) {
		return // the loop's settle closes it as soon as the caller returns
	}
	l := c.loop()
	_ = l.p.mod(int(c.fd), c.slot, false, true) // stop reading: the session is done
	c.armTimer(l.g.now() + int64(l.g.linger))
}

// SetTimer implements session.Transport.
func (c *conn) SetTimer(at int64) {
	if c.has(flagCloseReq | flagClosed | flagDead) {
		return // after Close the timer is the engine's (linger)
	}
	c.armTimer(at)
}

// armTimer records at and adds a wheel entry for it; the entries of
// earlier requests become stale (their time is no longer c.timer).
func (c *conn) armTimer(at int64) {
	if at == 0 {
		c.timer = 0
		return
	}
	s := msStamp(at)
	if s == c.timer {
		return // an entry for this very millisecond is in the wheel
	}
	c.timer = s
	c.loop().w.Add(c.id(), at)
}

// Handle implements session.Transport.
func (c *conn) Handle() session.Handle { return session.NewHandle(c.loop(), c.id()) }

// RemoteAddr implements session.Transport; it asks the kernel (and
// allocates), so the engine keeps no address per connection.
func (c *conn) RemoteAddr() net.Addr {
	if c.has(flagClosed) {
		return nil
	}
	sa, err := unix.Getpeername(int(c.fd))
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, a.Addr[:])
		var zone string
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: ip, Port: a.Port, Zone: zone}
	}
	return nil
}

// outBuf holds the bytes a socket did not take yet.
type outBuf struct {
	b   []byte
	off int
}

const (
	outPoolMax   = 64       // buffers kept per loop
	outKeepLimit = 64 << 10 // larger buffers are not kept
)

func (l *eventLoop) getOut() *outBuf {
	if n := len(l.outFree); n > 0 {
		o := l.outFree[n-1]
		l.outFree[n-1] = nil
		l.outFree = l.outFree[:n-1]
		return o
	}
	return new(outBuf)
}

func (l *eventLoop) releaseOut(c *conn) {
	if !c.has(flagOut) {
		return
	}
	o := l.outs[c.slot]
	delete(l.outs, c.slot)
	c.clear(flagOut)
	if cap(o.b) > outKeepLimit || len(l.outFree) >= outPoolMax {
		return
	}
	o.b, o.off = o.b[:0], 0
	l.outFree = append(l.outFree, o)
}

// flush writes what waits for c (flagOut); once empty, write interest is
// dropped.
func (l *eventLoop) flush(c *conn) {
	o := l.outs[c.slot]
	for o.off < len(o.b) {
		n, err := unix.Write(int(c.fd), o.b[o.off:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			c.fail(errnoCause(err))
			return
		}
		o.off += n
	}
	l.releaseOut(c)
	if c.has(flagCloseReq) {
		return // settle closes it
	}
	if err := l.p.mod(int(c.fd), c.slot, true, false); err != nil {
		c.fail(errnoCause(errors.Unwrap(err)))
	}
}
