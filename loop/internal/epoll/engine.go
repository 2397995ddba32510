//go:build linux || darwin || freebsd || netbsd || openbsd

// Package epoll is the default engine: N event loops on epoll (kqueue on
// the BSDs and macOS), each a core.Loop with a poller driving it.
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
//   - Reads go through one 64 KiB buffer per loop; everything else (writes,
//     queues, timers, tasks, closing) is the core's.
//   - Other goroutines reach a loop through its task queue and one
//     coalesced wake-up (eventfd, EVFILT_USER).
package epoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/loop/internal/netpoll"
)

func init() {
	core.Register("epoll", New)
}

// engine is the epoll engine: the server, and (with no listener) the
// Dialer's loops.
type engine struct {
	opts  core.Options
	log   *slog.Logger
	g     *core.Group
	loops []*loop
	wg    sync.WaitGroup

	paused atomic.Int32 // loops whose listener is out of their poller

	mu        sync.Mutex
	bound     net.Addr
	listening bool
	stopped   bool
	stopOnce  sync.Once
	done      chan struct{}
	err       error
	sharedLfd int // a listener all loops share (kqueue), closed after them; -1: none

	// accept is accept(2); tests replace it to simulate EMFILE.
	accept func(lfd int) (int, netip.AddrPort, error)
}

// New makes an epoll engine with its loops (not yet running).
func New(o *core.Options) (core.Engine, error) {
	e, err := newEngine(o)
	if err != nil {
		return nil, err
	}
	e.log.Info("wsloop: epoll engine ready", "loops", len(e.loops), "max_connections", e.g.Capacity())
	return e, nil
}

func newEngine(o *core.Options) (*engine, error) {
	if o.TLS != nil {
		return nil, errors.New("TLS is not supported by the epoll engine yet: use -engine goroutine (Options.Engine \"goroutine\") or terminate TLS in a proxy")
	}
	capacity, err := core.ConnLimit(o.MaxConns, o.Loops)
	if err != nil {
		return nil, fmt.Errorf("wsloop: %w", err)
	}
	e := &engine{opts: *o, log: o.Logger, done: make(chan struct{}), sharedLfd: -1, accept: netpoll.AcceptAddr}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.g = core.NewGroup(o.Config, capacity, e.log)
	e.g.OnRelease = e.released
	for i := 0; i < max(o.Loops, 1); i++ {
		p, err := netpoll.NewPoller()
		if err != nil {
			for _, d := range e.loops {
				d.p.Close()
			}
			return nil, err
		}
		d := &loop{e: e, p: p, buf: make([]byte, readBufferSize), lfd: -1}
		d.core = e.g.AddLoop(d, p.Wake)
		e.loops = append(e.loops, d)
	}
	return e, nil
}

// start runs the loops.
func (e *engine) start() {
	for _, d := range e.loops {
		e.wg.Add(1)
		go d.run()
	}
}

func (e *engine) Group() *core.Group { return e.g }

func (e *engine) Listen(addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stopped:
		return errors.New("wsloop: engine stopped")
	case e.listening:
		return errors.New("wsloop: already listening")
	}
	n := 1
	if netpoll.ReusePortListeners {
		n = len(e.loops)
	}
	fds, bound, err := netpoll.Listen(addr, n)
	if err != nil {
		return err
	}
	for i, d := range e.loops {
		if len(fds) == len(e.loops) {
			d.setListener(fds[i], true)
		} else {
			// One socket in every loop's poller: it is closed only once
			// all loops are gone, so that no loop ever deregisters a
			// reused descriptor number.
			d.setListener(fds[0], false)
			e.sharedLfd = fds[0]
		}
	}
	e.bound, e.listening = bound, true
	e.start()
	return nil
}

func (e *engine) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bound
}

// released runs on loop l when one of its connections gave its place back:
// loops that paused accepting at capacity take up again.
func (e *engine) released(l *core.Loop) {
	if e.paused.Load() == 0 {
		return
	}
	for _, d := range e.loops {
		if !d.acceptPaused.Load() {
			continue
		}
		if d.core == l {
			d.resumeAccept()
		} else {
			_ = d.core.Post(d.resumeAccept)
		}
	}
}

// fatal stops the engine after a loop cannot go on (its poller failed).
func (e *engine) fatal(err error) {
	e.log.Error("wsloop: event loop failed", "err", err)
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	go e.Shutdown(context.Background())
}

func (e *engine) Shutdown(ctx context.Context) error {
	var err error
	ran := false
	e.stopOnce.Do(func() {
		ran = true
		err = e.shutdown(ctx)
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

func (e *engine) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.stopped = true
	started := e.listening
	e.mu.Unlock()
	defer close(e.done)
	if !started {
		for _, d := range e.loops {
			d.p.Close()
		}
		return nil
	}
	if _, ok := ctx.Deadline(); !ok && e.opts.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.ShutdownTimeout)
		defer cancel()
	}
	err := e.g.Shutdown(ctx, func() {
		for _, d := range e.loops {
			_ = d.core.Post(d.closeListener)
		}
	}, e.stopLoops)
	if e.sharedLfd >= 0 {
		unix.Close(e.sharedLfd)
	}
	return err
}

// stopLoops makes every loop tear down and waits for their goroutines.
func (e *engine) stopLoops() {
	for _, d := range e.loops {
		_ = d.core.Post(func() { d.stop = true })
	}
	e.wg.Wait()
}

// Wait returns nil after a shutdown, or the error that stopped a loop.
func (e *engine) Wait() error {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// SetAccept replaces accept(2) for an engine that is not listening yet:
// tests simulate EMFILE with it.
func SetAccept(e core.Engine, accept func(lfd int) (int, error)) {
	e.(*engine).accept = func(lfd int) (int, netip.AddrPort, error) {
		fd, err := accept(lfd)
		if err != nil {
			return fd, netip.AddrPort{}, err
		}
		return fd, netpoll.PeerAddrPort(fd), nil
	}
}
