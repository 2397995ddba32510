//go:build linux || darwin || freebsd || netbsd || openbsd

package epoll

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/loop/internal/netpoll"
)

const (
	readBufferSize = 64 << 10
	// maxReadsPerEvent bounds the full buffers read from one socket per
	// readiness event, so a fast sender cannot starve the loop's other
	// connections (level-triggered: the rest is reported again).
	maxReadsPerEvent = 4
	// acceptBurst bounds accepts per readiness event, so a connection storm
	// does not starve the loop's established connections.
	acceptBurst = 256
	// acceptRetry is how long a loop waits before accepting again after
	// the process ran out of file descriptors for a reason it cannot see
	// end (another component's fds): it never spins on EMFILE.
	acceptRetry = 250 * time.Millisecond
)

// loop is the driver of one core loop: a poller, the loop's read buffer,
// and its share of the listening socket. Its fields are touched only on its
// goroutine, except acceptPaused.
type loop struct {
	core *core.Loop
	e    *engine
	p    *netpoll.Poller
	buf  []byte

	lfd          int // listening socket, -1: none
	ownsLfd      bool
	listening    bool // lfd is in the poller
	paused       bool
	acceptPaused atomic.Bool
	retryAt      int64 // when a paused-on-EMFILE loop tries accepting again; 0: on release only
	emfileLogged int64
	stop         bool
}

// ---- core.Driver ----

func (d *loop) Write(c *core.Conn, bufs [][]byte) (int, error) {
	return netpoll.Writev(c.FD(), bufs)
}

func (d *loop) Interest(c *core.Conn, read, write bool) error {
	return d.p.Mod(c.FD(), c.Slot(), read, write)
}

func (d *loop) Close(c *core.Conn) { unix.Close(c.FD()) } // also leaves the poller

// RemoteAddr asks the kernel (and allocates), so the engine keeps no
// address per connection; nil once the peer has reset.
func (d *loop) RemoteAddr(c *core.Conn) net.Addr { return netpoll.PeerAddr(c.FD()) }

// RemoteAddrPort is RemoteAddr without allocating.
func (d *loop) RemoteAddrPort(c *core.Conn) netip.AddrPort { return netpoll.PeerAddrPort(c.FD()) }

// ---- The loop ----

func (d *loop) run() {
	defer d.e.wg.Done()
	for !d.stop {
		d.core.Idle()
		n, err := d.p.Wait(d.timeout())
		d.core.Awake()
		if err != nil {
			d.e.fatal(fmt.Errorf("event loop %d: %w", d.core.Index(), err))
			break
		}
		for i := 0; i < n; i++ {
			tok, r, w := d.p.Event(i)
			switch {
			case tok >= 0:
				d.ioEvent(tok, r, w)
			case tok == netpoll.TokenWake:
				d.p.DrainWake()
			case tok == netpoll.TokenListen:
				d.acceptReady()
			}
		}
		if d.core.Pending() {
			d.core.RunTasks()
		}
		d.core.Advance()
		if d.paused && d.retryAt != 0 && core.Now() >= d.retryAt {
			d.retryAt = 0
			d.resumeAccept()
		}
	}
	d.core.Teardown()
	d.closeListener()
	if err := d.p.Close(); err != nil {
		d.e.log.Warn("wsloop: closing poller", "loop", d.core.Index(), "err", err)
	}
}

// timeout is how long the next wait may block.
func (d *loop) timeout() int {
	t := d.core.Timeout()
	if d.paused && d.retryAt != 0 {
		ms := int(max(0, (d.retryAt-core.Now()+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		if t < 0 || ms < t {
			t = ms
		}
	}
	return t
}

func (d *loop) ioEvent(slot int32, readable, writable bool) {
	c := d.core.Lookup(slot)
	if c == nil {
		return // closed earlier in this batch
	}
	if c.Connecting() {
		if readable || writable {
			d.connectDone(c)
		}
		return
	}
	if writable {
		d.core.Writable(c)
	}
	if readable {
		d.read(c)
	}
}

func (d *loop) read(c *core.Conn) {
	for reads := 0; reads < maxReadsPerEvent; {
		if d.core.Lookup(c.Slot()) != c {
			return // finished by what it read
		}
		n, err := unix.Read(c.FD(), d.buf)
		if n > 0 {
			d.core.Input(c, d.buf[:n])
			if n < len(d.buf) {
				return
			}
			reads++
			continue
		}
		switch err {
		case nil:
			d.core.Hangup(c, io.EOF)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			d.core.Hangup(c, os.NewSyscallError("read", err))
		}
		return
	}
}

// connectDone runs when a connecting socket turns writable (or fails).
func (d *loop) connectDone(c *core.Conn) {
	soerr, err := unix.GetsockoptInt(c.FD(), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err == nil {
		err = d.p.Mod(c.FD(), c.Slot(), true, false)
	}
	if err != nil {
		d.core.ConnectFailed(c, os.NewSyscallError("connect", err))
		return
	}
	d.core.Connected(c)
}

// ---- Accepting ----

func (d *loop) setListener(fd int, owns bool) {
	d.lfd, d.ownsLfd = fd, owns
	d.resumeListening()
}

func (d *loop) resumeListening() {
	if d.lfd < 0 || d.listening || d.stop {
		return
	}
	if err := d.p.Add(d.lfd, netpoll.TokenListen, true, false); err != nil {
		d.e.log.Error("wsloop: cannot watch the listener", "err", err)
		return
	}
	d.listening = true
}

func (d *loop) stopListening() {
	if d.listening {
		_ = d.p.Del(d.lfd)
		d.listening = false
	}
}

func (d *loop) closeListener() {
	d.stopListening()
	if d.paused {
		d.paused = false
		d.acceptPaused.Store(false)
		d.e.paused.Add(-1)
	}
	if d.lfd >= 0 && d.ownsLfd {
		unix.Close(d.lfd)
	}
	d.lfd = -1
}

// pauseAccept takes the listener out of the poller until a connection is
// released (or, after EMFILE, until retryAt): a full server never spins.
// Connections meanwhile wait in the kernel's listen backlog.
func (d *loop) pauseAccept(retryAt int64) {
	d.stopListening()
	if !d.paused {
		d.paused = true
		d.acceptPaused.Store(true)
		d.e.paused.Add(1)
	}
	if retryAt != 0 {
		d.retryAt = retryAt
		return
	}
	// A release that ran before we were marked paused did not see us; the
	// count it left tells us. (Both sides write, then read the other's
	// atomic: at least one of them sees the other.)
	g := d.core.Group()
	if g.Conns() < g.Capacity() {
		d.resumeAccept()
	}
}

func (d *loop) resumeAccept() {
	if !d.paused || d.stop || d.lfd < 0 {
		return
	}
	g := d.core.Group()
	if d.retryAt == 0 && g.Conns() >= g.Capacity() {
		return
	}
	d.paused = false
	d.acceptPaused.Store(false)
	d.e.paused.Add(-1)
	d.retryAt = 0
	d.resumeListening()
}

func (d *loop) acceptReady() {
	g := d.core.Group()
	for i := 0; i < acceptBurst && d.listening; i++ {
		if !g.Claim() {
			d.pauseAccept(0)
			return
		}
		fd, peer, err := d.e.accept(d.lfd)
		if err != nil {
			g.Unclaim()
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED:
				return
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				now := core.Now()
				if d.emfileLogged == 0 || now-d.emfileLogged > int64(10*time.Second) {
					d.emfileLogged = now
					d.e.log.Warn("wsloop: out of file descriptors; accepting paused",
						"err", err, "open", g.Conns(), "hint", "raise the open-file limit or lower MaxConns")
				}
				d.pauseAccept(now + int64(acceptRetry))
				return
			default:
				d.e.log.Error("wsloop: accept", "err", err)
				return
			}
		}
		d.core.Accepted()
		d.serve(fd, peer)
	}
}

// serve starts a server-role connection on an accepted socket.
func (d *loop) serve(fd int, peer netip.AddrPort) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if n := d.e.opts.SendBuffer; n > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n)
	}
	c := d.core.NewConn(fd)
	if err := d.p.Add(fd, c.Slot(), true, false); err != nil {
		unix.Close(fd)
		d.core.Discard(c)
		d.e.log.Error("wsloop: register connection", "err", err)
		return
	}
	d.core.StartServer(c, peer.Addr())
}

var errFamily = errors.New("wsloop: source and destination address families differ")
