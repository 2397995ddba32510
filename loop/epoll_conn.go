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
// needs. It is the Transport of its session. It is kept small (the idle
// cost per connection): no buffers while idle, the outbound buffer only
// while bytes wait for the socket, timers as two stamps.
type conn struct {
	ws      session.Conn
	loop    *eventLoop
	out     *outBuf // nil when everything written has reached the kernel
	timerAt int64   // the session's requested tick (engine clock), 0: none
	wheelAt int64   // the earliest live wheel entry for this conn, 0: none
	fd      int32
	slot    int32
	gen     uint32
	cause   uint16 // why the socket failed (flagDead): an errno or cause*
	flags   uint8
}

const (
	flagCloseReq   = 1 << iota // Transport.Close was called; closing once out drains
	flagDead                   // the socket failed (cause); close at the next settle
	flagClosed                 // the fd is closed and the slot released
	flagConnecting             // client: non-blocking connect in progress, no session yet
	flagDialing                // client: connected, session handshake in progress
)

const (
	causeEOF   uint16 = 0xffff
	causePanic uint16 = 0xfffe
)

// keyDial marks wheel keys of dial deadlines (the rest is the conn's id).
const keyDial = 1 << 63

var errTaskPanic = errors.New("wsloop: a task for this connection panicked")

func errnoCause(err error) uint16 {
	if e, ok := err.(unix.Errno); ok && e < 0xf000 {
		return uint16(e)
	}
	return uint16(unix.EIO)
}

func (c *conn) fail(cause uint16) {
	if c.flags&(flagDead|flagClosed) == 0 {
		c.flags |= flagDead
		c.cause = cause
	}
}

func (c *conn) err() error {
	switch c.cause {
	case 0:
		return nil
	case causeEOF:
		return io.EOF
	case causePanic:
		return errTaskPanic
	}
	return unix.Errno(c.cause)
}

func (c *conn) id() uint64 { return uint64(c.slot)<<32 | uint64(c.gen) }

// usable reports whether tasks may run on the session.
func (c *conn) usable() bool {
	return c.flags&(flagCloseReq|flagDead|flagClosed|flagConnecting) == 0
}

// Write implements session.Transport: straight to the socket, and a copy
// of what the kernel did not take.
func (c *conn) Write(p []byte) (int, error) {
	if c.flags&(flagDead|flagClosed) != 0 {
		return 0, session.ErrClosed
	}
	if c.out != nil {
		c.out.b = append(c.out.b, p...)
		return len(c.out.b) - c.out.off, nil
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
	l := c.loop
	c.out = l.getOut()
	c.out.b = append(c.out.b, p[n:]...)
	if err := l.p.mod(int(c.fd), c.slot, c.flags&flagCloseReq == 0, true); err != nil {
		c.fail(errnoCause(errors.Unwrap(err)))
	}
	return len(p) - n, nil
}

// Close implements session.Transport: the socket closes once what waits
// is written (at most lingerTimeout later); TransportClosed follows.
func (c *conn) Close() {
	if c.flags&(flagCloseReq|flagClosed) != 0 {
		return
	}
	c.flags |= flagCloseReq
	if c.out == nil || c.flags&flagDead != 0 {
		return // the loop's settle closes it as soon as the caller returns
	}
	l := c.loop
	_ = l.p.mod(int(c.fd), c.slot, false, true) // stop reading: the session is done
	c.timerAt = 0
	c.armTimer(l.g.now() + int64(lingerTimeout))
}

// SetTimer implements session.Transport.
func (c *conn) SetTimer(at int64) {
	if c.flags&(flagCloseReq|flagClosed) != 0 {
		return // after Close the timer is the engine's (linger)
	}
	c.armTimer(at)
}

// armTimer records at and makes sure a wheel entry fires at or
// before it; later entries of this conn become stale and are skipped.
func (c *conn) armTimer(at int64) {
	c.timerAt = at
	if at != 0 && (c.wheelAt == 0 || at < c.wheelAt) {
		c.wheelAt = at
		c.loop.w.Add(c.id(), at)
	}
}

// Handle implements session.Transport.
func (c *conn) Handle() session.Handle { return session.NewHandle(c.loop, c.id()) }

// RemoteAddr implements session.Transport; it asks the kernel (and
// allocates), so the engine keeps no address per connection.
func (c *conn) RemoteAddr() net.Addr {
	if c.flags&flagClosed != 0 {
		return nil
	}
	sa, err := unix.Getpeername(int(c.fd))
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

// LocalAddr is the socket's own address (nil once closed).
func (c *conn) LocalAddr() net.Addr {
	if c.flags&flagClosed != 0 {
		return nil
	}
	sa, err := unix.Getsockname(int(c.fd))
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
	o := c.out
	if o == nil {
		return
	}
	c.out = nil
	if cap(o.b) > outKeepLimit || len(l.outFree) >= outPoolMax {
		return
	}
	o.b, o.off = o.b[:0], 0
	l.outFree = append(l.outFree, o)
}

// flush writes what waits in c.out; once empty, write interest is dropped.
func (l *eventLoop) flush(c *conn) {
	o := c.out
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
	if c.flags&flagCloseReq != 0 {
		return // settle closes it
	}
	if err := l.p.mod(int(c.fd), c.slot, true, false); err != nil {
		c.fail(errnoCause(errors.Unwrap(err)))
	}
}
