package core

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/session"
)

// DefaultLinger bounds how long a closing connection's queued bytes may
// take to drain before its socket is closed anyway.
const DefaultLinger = 5 * time.Second

// Group is the loops of one engine (a server or a Dialer) and what they
// share: the Config, the connection count against the capacity, shutdown.
type Group struct {
	cfg    *session.Config
	log    *slog.Logger
	loops  []*Loop
	count  atomic.Int64 // connections holding a place (claimed), on every loop
	max    int64
	linger time.Duration

	// OnRelease, when set, is called on a loop's goroutine each time one of
	// its connections gives its place back (the epoll engine resumes
	// accepting there).
	OnRelease func(l *Loop)

	obs    Observer // nil: nothing is reported
	limits Limits   // nil: no per-client limits
}

// Observe makes the group report to o; call it before the loops run.
func (g *Group) Observe(o Observer) { g.obs = o }

// Limit makes the group enforce lim; call it before the loops run.
func (g *Group) Limit(lim Limits) {
	g.limits = lim
	for _, l := range g.loops {
		l.io.Admit = l.admitRequest
	}
}

// LoopSnapshot is the state of one loop at one moment.
type LoopSnapshot struct {
	Sockets     int
	QueuedBytes int64
	QueuedTasks int
}

// Snapshot reports what loop i holds now (from any goroutine).
func (g *Group) Snapshot(i int) LoopSnapshot {
	if i < 0 || i >= len(g.loops) {
		return LoopSnapshot{}
	}
	l := g.loops[i]
	return LoopSnapshot{Sockets: int(l.sockets.Load()), QueuedBytes: l.queued.Load(), QueuedTasks: int(l.q.n.Load())}
}

// NewGroup returns a group for connections of cfg, at most capacity open.
func NewGroup(cfg *session.Config, capacity int, log *slog.Logger) *Group {
	if log == nil {
		log = slog.Default()
	}
	return &Group{cfg: cfg, log: log, max: int64(capacity), linger: DefaultLinger}
}

// SetLinger replaces DefaultLinger (tests shorten it).
func (g *Group) SetLinger(d time.Duration) { g.linger = d }

// AddLoop adds a loop whose driver is drv; wake must make the loop's
// goroutine call RunTasks soon (from any goroutine).
func (g *Group) AddLoop(drv Driver, wake func() error) *Loop {
	l := &Loop{
		g:    g,
		idx:  len(g.loops),
		drv:  drv,
		t:    newTable(int(min(g.max, 1<<24))),
		w:    newWheel(defaultTick, defaultWheelSlots, Now()),
		outs: make(map[int32]*outQueue),
		iov:  make([][]byte, 0, maxIovecs),
	}
	l.q = newTaskQueue(wake)
	if g.limits != nil {
		l.io.Admit = l.admitRequest
	}
	l.fireFn = l.fire
	l.w.Stale = l.staleTimer
	l.taskFn = l.runTask
	g.loops = append(g.loops, l)
	return l
}

// Loops returns the group's loops.
func (g *Group) Loops() []*Loop { return g.loops }

// Config is the group's connection Config.
func (g *Group) Config() *session.Config { return g.cfg }

// Log is the group's logger.
func (g *Group) Log() *slog.Logger { return g.log }

// Capacity is the most connections the group holds at once.
func (g *Group) Capacity() int { return int(g.max) }

// Conns is the number of connections holding a place.
func (g *Group) Conns() int { return int(g.count.Load()) }

// Claim takes a place for a new connection; false at capacity.
func (g *Group) Claim() bool {
	if g.count.Add(1) > g.max {
		g.count.Add(-1)
		return false
	}
	return true
}

// Unclaim gives back a place claimed for a connection that never got a
// slot (its accept or socket failed).
func (g *Group) Unclaim() { g.count.Add(-1) }

func (g *Group) release(l *Loop) {
	g.count.Add(-1)
	if g.OnRelease != nil {
		g.OnRelease(l)
	}
}

// Broadcast sends m to every open connection: one task per loop.
func (g *Group) Broadcast(m *session.Prepared) error {
	var first error
	start := Now()
	for _, l := range g.loops {
		l := l
		if err := l.Post(func() { l.broadcast(m, start) }); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown ends the group gracefully: stopAccept (the engine closes its
// listeners), then every open connection gets the close handshake with 1001
// and those still in their opening handshake are dropped; it waits for the
// connections to end until ctx is done, then stopLoops (the engine makes
// each loop Teardown and waits for its goroutines). It returns ctx's error
// when connections were still open at the deadline.
func (g *Group) Shutdown(ctx context.Context, stopAccept, stopLoops func()) error {
	if stopAccept != nil {
		stopAccept()
	}
	for _, l := range g.loops {
		_ = l.Post(l.goAway)
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
	stopLoops()
	return err
}

// Queued returns what the group's connections have queued and not yet
// written: pending bytes (pongs included) and the memory of the blocks that
// hold them. Safe from any goroutine.
func (g *Group) Queued() (pending, memory int64) {
	for _, l := range g.loops {
		pending += l.queued.Load()
		memory += l.queueMem.Load()
	}
	return pending, memory
}
