//go:build linux || darwin || freebsd || netbsd || openbsd

package loop

import (
	"context"
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

// listenBacklog is asked of listen(2); the kernel caps it (somaxconn).
// Connections beyond capacity wait there until the server has room.
const listenBacklog = 4096

// epollEngine is the default engine: N event loops on epoll (kqueue on the
// BSDs and macOS), each owning a share of the connections.
//
// How it is built, and why:
//
//   - Accept: on Linux every loop has its own SO_REUSEPORT listener, so the
//     kernel spreads connections and no loop wakes for another's. The BSDs
//     do not balance SO_REUSEPORT, so there one listener sits in every
//     loop's kqueue. accept4 is called without an address buffer (x/sys
//     allocates a Sockaddr per call); RemoteAddr asks getpeername lazily.
//   - Capacity: RLIMIT_NOFILE is raised to the hard limit; capacity is what
//     it allows less a reserve, or MaxConns. At capacity, or on EMFILE, a
//     loop takes its listener out of the poller (connections wait in the
//     kernel's backlog) and puts it back when a connection is released, or
//     after acceptRetry for an EMFILE it cannot see end: it never spins.
//   - Per connection: one 112-byte conn (session.Conn plus fd, slot,
//     generation, flags and a timer stamp), stored in the
//     loop's connection table itself, 64 KiB chunks of conns allocated as
//     the loop's count grows and dropped as it falls (see connChunk): no
//     allocation per connection, no garbage as connections come and go,
//     and nothing for the GC to trace per connection. Handles are (slot, generation). Reads go
//     through one 64 KiB buffer per loop; writes go straight to the socket
//     and only what the kernel refuses is copied to a pooled buffer, with
//     EPOLLOUT armed until it drains. An idle connection costs about 150
//     bytes of the server's RSS (loop/epoll_rss_test.go measures it).
//   - Timers: one timing wheel per loop (100 ms ticks, see wheel.go), fed
//     by Transport.SetTimer; the next due slot bounds epoll_wait.
//   - Other goroutines reach a loop through its task queue and one
//     coalesced wake-up (eventfd, EVFILT_USER).
type epollEngine struct {
	opts  *Options
	cfg   *session.Config
	log   *slog.Logger
	loops int
	cap   int

	mu      sync.Mutex
	g       *group // nil until listen
	bound   net.Addr
	stopped bool
	stop    sync.Once
	done    chan struct{}
	err     error

	sharedLfd  int                        // a listener all loops share (kqueue), closed after them; -1: none
	acceptHook func(lfd int) (int, error) // tests: replaces accept(2)
	linger     time.Duration              // tests: replaces lingerTimeout
}

func newEpollEngine(opts *Options, cfg *session.Config) (engine, error) {
	e := &epollEngine{opts: opts, cfg: cfg, done: make(chan struct{})}
	e.log = opts.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.loops = opts.Loops
	if e.loops <= 0 {
		e.loops = runtime.GOMAXPROCS(0)
	}
	// connLimit raises the soft open-file limit to the hard one and keeps a
	// reserve for listeners, pollers and the application.
	c, err := connLimit(opts.MaxConns, e.loops)
	if err != nil {
		return nil, fmt.Errorf("wsloop: %w", err)
	}
	e.cap = c
	e.log.Info("wsloop: epoll engine ready", "loops", e.loops, "max_connections", e.cap)
	return e, nil
}

func (e *epollEngine) listen(addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return session.ErrClosed
	}
	if e.g != nil {
		return errors.New("wsloop: already listening")
	}
	n := 1
	if reusePortListeners {
		n = e.loops
	}
	fds, bound, err := listenSockets(addr, n)
	if err != nil {
		return err
	}
	g, err := newGroup(e.loops, e.cap, e.cfg, e.log)
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return err
	}
	if e.acceptHook != nil {
		g.accept = e.acceptHook
	}
	if e.linger > 0 {
		g.linger = e.linger
	}
	e.sharedLfd = -1
	for i, l := range g.loops {
		switch {
		case len(fds) == len(g.loops):
			l.setListener(fds[i], true)
		default:
			// One socket in every loop's poller: it is closed only once
			// all loops are gone, so that no loop ever deregisters a
			// reused descriptor number.
			l.setListener(fds[0], false)
			e.sharedLfd = fds[0]
		}
	}
	g.onFatal = func(err error) {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
		go e.shutdown(context.Background())
	}
	e.g, e.bound = g, bound
	g.startLoops()
	return nil
}

func (e *epollEngine) addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bound
}

func (e *epollEngine) capacity() int { return e.cap }

func (e *epollEngine) conns() int {
	e.mu.Lock()
	g := e.g
	e.mu.Unlock()
	if g == nil {
		return 0
	}
	return int(g.count.Load())
}

func (e *epollEngine) group() *group {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.g
}

func (e *epollEngine) broadcast(m *session.Prepared) {
	g := e.group()
	if g == nil {
		return
	}
	for _, l := range g.loops {
		l := l
		_ = l.post(func() { l.broadcast(m) })
	}
}

// broadcast writes m to every open connection of the loop.
func (l *eventLoop) broadcast(m *session.Prepared) {
	for _, ch := range l.chunks {
		for i := range ch.top {
			c := &ch.conns[i]
			if !c.usable() || c.ws.State() != session.StateOpen {
				continue
			}
			_ = c.ws.SendPrepared(m)
			l.settle(c)
		}
	}
}

// goAway starts the close handshake (1001) on every open connection and
// drops those still in their opening handshake.
func (l *eventLoop) goAway() {
	l.closeListener()
	for _, ch := range l.chunks {
		for i := range ch.top {
			c := &ch.conns[i]
			if !c.usable() {
				continue
			}
			switch c.ws.State() {
			case session.StateOpen:
				_ = c.ws.Close(session.StatusGoingAway, "server shutting down")
			case session.StateHandshake:
				c.Close()
			}
			l.settle(c)
		}
	}
}

func (e *epollEngine) shutdown(ctx context.Context) error {
	var err error
	ran := false
	e.stop.Do(func() {
		ran = true
		err = e.doShutdown(ctx)
	})
	if !ran {
		select {
		case <-e.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (e *epollEngine) doShutdown(ctx context.Context) error {
	e.mu.Lock()
	e.stopped = true
	g := e.g
	e.mu.Unlock()
	defer close(e.done)
	if g == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		d := e.opts.ShutdownTimeout
		if d <= 0 {
			d = 5 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	for _, l := range g.loops {
		_ = l.post(l.goAway)
	}
	var err error
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for g.count.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-tick.C:
		}
	}
	g.stopLoops()
	if e.sharedLfd >= 0 {
		unix.Close(e.sharedLfd)
	}
	return err
}

// wait returns nil after a shutdown, or the error that stopped a loop.
func (e *epollEngine) wait() error {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// listenSockets binds n listening sockets to addr (n > 1: SO_REUSEPORT,
// all on the port the first one got).
func listenSockets(addr string, n int) (fds []int, bound *net.TCPAddr, err error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("wsloop: listen address %q: %w", addr, err)
	}
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			fds = nil
		}
	}()
	port := ta.Port
	for i := 0; i < n; i++ {
		fd, err := listenSocket(ta.IP, port)
		if err != nil {
			return fds, nil, fmt.Errorf("wsloop: listen on %s: %w", addr, err)
		}
		fds = append(fds, fd)
		if i == 0 {
			sa, err := unix.Getsockname(fd)
			if err != nil {
				return fds, nil, os.NewSyscallError("getsockname", err)
			}
			bound = sockaddrToTCP(sa)
			port = bound.Port
		}
	}
	return fds, bound, nil
}

func listenSocket(ip net.IP, port int) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	dual := false
	switch {
	case ip == nil || (ip.IsUnspecified() && ip.To4() == nil):
		family, dual = unix.AF_INET6, true
		sa = &unix.SockaddrInet6{Port: port}
	case ip.To4() != nil:
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip.To4())
		sa = s
	default:
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip.To16())
		sa = s
	}
	fd, err := newSocket(family)
	if err != nil && dual {
		// no IPv6 here: serve IPv4 only
		family, dual = unix.AF_INET, false
		sa = &unix.SockaddrInet4{Port: port}
		fd, err = newSocket(family)
	}
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if reusePortListeners {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return -1, os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}
	if family == unix.AF_INET6 {
		v6only := 1
		if dual {
			v6only = 0
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return -1, os.NewSyscallError("listen", err)
	}
	ok = true
	return fd, nil
}
