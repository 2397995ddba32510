//go:build linux || darwin || freebsd || netbsd || openbsd

package epoll

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/loop/internal/netpoll"
	"github.com/wsloop/wsloop/session"
)

// Dialer runs client connections on event loops: non-blocking connects,
// then the session's client handshake.
type Dialer struct {
	e       *engine
	timeout time.Duration
	next    atomic.Uint32
	once    sync.Once
}

// NewDialer starts loops for client connections of cfg (completed, Role
// Client); timeout bounds connect plus handshake.
func NewDialer(o *core.Options, timeout time.Duration) (*Dialer, error) {
	o.MaxConns = 0
	e, err := newEngine(o)
	if err != nil {
		return nil, err
	}
	e.listening = true // no listener: the loops run from now on
	e.start()
	return &Dialer{e: e, timeout: timeout}, nil
}

// Dial starts connecting to raddr from src (nil: the kernel's choice), then
// the handshake for r; see loop.Dialer.Dial.
func (d *Dialer) Dial(raddr *net.TCPAddr, src net.IP, r *session.ClientRequest, h session.Handler) error {
	if raddr == nil || h == nil || r == nil {
		return errors.New("wsloop: Dial needs an address, a request and a handler")
	}
	family, sa := netpoll.SockaddrOf(raddr.IP, raddr.Port)
	if sa == nil {
		return fmt.Errorf("wsloop: dial: bad address %v", raddr)
	}
	var srcSa unix.Sockaddr
	if src != nil {
		var sf int
		if sf, srcSa = netpoll.SockaddrOf(src, 0); srcSa == nil || sf != family {
			return errFamily
		}
	}
	g := d.e.g
	if !g.Claim() {
		return fmt.Errorf("wsloop: dial: %d connections open, the most this process can hold", g.Conns())
	}
	fd, err := netpoll.NewSocket(family)
	if err != nil {
		g.Unclaim()
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	var cerr error
	if srcSa != nil {
		netpoll.BindNoPort(fd)
		if err := unix.Bind(fd, srcSa); err != nil {
			cerr = os.NewSyscallError("bind", err)
		}
	}
	if cerr == nil {
		if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
			cerr = os.NewSyscallError("connect", err)
		}
	}
	l := d.e.loops[int(d.next.Add(1))%len(d.e.loops)]
	deadline := core.Now() + int64(d.timeout)
	if err := l.core.Post(func() { l.startDial(fd, r, h, deadline, cerr) }); err != nil {
		unix.Close(fd)
		g.Unclaim()
		return err
	}
	return nil
}

// startDial takes a connecting socket into the loop; cerr is a failure the
// connect already reported.
func (d *loop) startDial(fd int, r *session.ClientRequest, h session.Handler, deadline int64, cerr error) {
	if cerr == nil && d.stop {
		cerr = session.ErrClosed
	}
	var c *core.Conn
	if cerr == nil {
		c = d.core.NewConn(fd)
		if err := d.p.Add(fd, c.Slot(), false, true); err != nil {
			d.core.Discard(c)
			cerr = err
		}
	}
	if cerr != nil {
		unix.Close(fd)
		if c == nil {
			d.core.Group().Unclaim()
		}
		d.core.FailDial(h, cerr)
		return
	}
	d.core.Connecting(c, r, h, deadline)
}

// Conns is the number of connections open or being opened.
func (d *Dialer) Conns() int { return d.e.g.Conns() }

// Close closes every connection (no close handshake) and stops the loops.
func (d *Dialer) Close() error {
	d.once.Do(func() {
		d.e.mu.Lock()
		d.e.stopped = true
		d.e.mu.Unlock()
		d.e.stopLoops()
		close(d.e.done)
	})
	return nil
}
