//go:build linux || darwin || freebsd || netbsd || openbsd

package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
	"golang.org/x/sys/unix"
)

// dialState is what a client connection needs until its handshake is done.
type dialState struct {
	req      *session.ClientRequest
	h        session.Handler
	deadline int64 // engine clock: connect plus handshake must finish by then
}

// dialEngine runs client connections on event loops (the Dialer's body).
type dialEngine struct {
	g       *group
	cfg     session.Config
	timeout time.Duration
	once    sync.Once
}

func newDialEngine(opts DialerOptions) (*dialEngine, error) {
	d := &dialEngine{cfg: opts.Session, timeout: opts.ConnectTimeout}
	d.cfg.Role = session.Client
	completeConfig(&d.cfg)
	if d.timeout <= 0 {
		d.timeout = 10 * time.Second
	}
	n := opts.Loops
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	limit, err := raiseOpenFileLimit()
	if err != nil {
		return nil, fmt.Errorf("wsloop: reading the open-file limit: %w", err)
	}
	g, err := newGroup(n, limit, &d.cfg, log)
	if err != nil {
		return nil, err
	}
	d.g = g
	g.startLoops()
	return d, nil
}

var errFamily = errors.New("wsloop: source and destination address families differ")

func (d *dialEngine) dial(raddr *net.TCPAddr, src net.IP, r *session.ClientRequest, h session.Handler) error {
	if raddr == nil || h == nil || r == nil {
		return errors.New("wsloop: Dial needs an address, a request and a handler")
	}
	family, sa := sockaddrOf(raddr.IP, raddr.Port)
	if sa == nil {
		return fmt.Errorf("wsloop: dial: bad address %v", raddr)
	}
	var srcSa unix.Sockaddr
	if src != nil {
		var sf int
		if sf, srcSa = sockaddrOf(src, 0); srcSa == nil || sf != family {
			return errFamily
		}
	}
	fd, err := newSocket(family)
	if err != nil {
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	var cerr error
	if srcSa != nil {
		bindNoPort(fd)
		if err := unix.Bind(fd, srcSa); err != nil {
			cerr = os.NewSyscallError("bind", err)
		}
	}
	if cerr == nil {
		if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
			cerr = os.NewSyscallError("connect", err)
		}
	}
	ds := &dialState{req: r, h: h}
	d.g.count.Add(1)
	l := d.g.loops[int(d.g.next.Add(1))%len(d.g.loops)]
	ds.deadline = d.g.now() + int64(d.timeout)
	if err := l.post(func() { l.startDial(fd, ds, cerr) }); err != nil {
		unix.Close(fd)
		d.g.count.Add(-1)
		return err
	}
	return nil
}

func sockaddrOf(ip net.IP, port int) (int, unix.Sockaddr) {
	if ip4 := ip.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip4)
		return unix.AF_INET, s
	}
	if len(ip) == net.IPv6len {
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip)
		return unix.AF_INET6, s
	}
	return 0, nil
}

func (d *dialEngine) conns() int { return int(d.g.count.Load()) }

func (d *dialEngine) close() error {
	d.once.Do(d.g.stopLoops)
	return nil
}

// startDial takes a connecting socket into the loop; cerr is a failure
// the connect already reported.
func (l *eventLoop) startDial(fd int, ds *dialState, cerr error) {
	if cerr == nil && l.stopped {
		cerr = session.ErrClosed
	}
	var c *conn
	if cerr == nil {
		c, cerr = l.newConn(fd, false, true)
	}
	if cerr != nil {
		unix.Close(fd)
		l.g.released(l)
		// The connection never had a slot: the handler hears of it on a
		// Conn of its own (rare, so allocated).
		ds.h.OnClose(new(session.Conn), session.StatusAbnormal, "", cerr)
		return
	}
	c.set(flagConnecting)
	if l.dials == nil {
		l.dials = make(map[int32]*dialState)
	}
	l.dials[c.slot] = ds
	l.w.Add(c.id()|keyDial, ds.deadline)
}

// connectDone runs when a connecting socket turns writable (or fails).
func (l *eventLoop) connectDone(c *conn, now int64) {
	soerr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		l.failDial(c, os.NewSyscallError("connect", err))
		return
	}
	ds := l.dials[c.slot]
	c.clear(flagConnecting)
	c.set(flagDialing)
	if err := l.p.mod(int(c.fd), c.slot, true, false); err != nil {
		l.failDial(c, err)
		return
	}
	// On failure InitClient has reported OnClose and closed the transport.
	_ = c.ws.InitClient(l.g.cfg, c, ds.req, ds.h, now)
	l.settle(c)
}

// failDial ends a connection whose connect failed: there is no session yet,
// so the handler hears of it directly.
func (l *eventLoop) failDial(c *conn, err error) {
	ds := l.dials[c.slot]
	delete(l.dials, c.slot)
	unix.Close(int(c.fd))
	l.unslot(c)
	l.g.released(l)
	if ds != nil {
		ds.h.OnClose(&c.ws, session.StatusAbnormal, "", err)
	}
}

// dialTimeout fails a connection whose connect or handshake outlived the
// Dialer's ConnectTimeout.
func (l *eventLoop) dialTimeout(id uint64, at int64) {
	c := l.lookup(id)
	if c == nil || c.has(flagClosed) {
		return
	}
	ds := l.dials[c.slot]
	if ds == nil || ds.deadline != at {
		return
	}
	if c.has(flagConnecting) {
		l.failDial(c, os.NewSyscallError("connect", unix.ETIMEDOUT))
		return
	}
	if c.has(flagDialing) && c.ws.State() == session.StateHandshake {
		c.fail(uint32(unix.ETIMEDOUT))
		l.settle(c)
	}
}
