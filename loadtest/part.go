package loadtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// shareSpec is one process's share of a run.
type shareSpec struct {
	Index      int      `json:"index"`      // process number, 0..Procs-1
	Procs      int      `json:"procs"`      // processes in the run
	Conns      int      `json:"conns"`      // connections this process opens (not churn: its Rate says)
	Offset     int      `json:"offset"`     // global number of its first connection
	Messages   int      `json:"messages"`   // echo: its share of Config.Messages
	Rate       float64  `json:"rate"`       // its share of Config.Rate (broadcast: the whole rate, publisher only)
	Ramp       float64  `json:"ramp"`       // its share of Config.Ramp
	Src        []string `json:"src"`        // source addresses it binds to
	Publishers []int    `json:"publishers"` // broadcast, sse, soak: the publishers it runs (global numbers)
	Subs       int      `json:"subs"`       // soak: its room subscribers (part of Conns)
	Slow       int      `json:"slow"`       // soak: its slow readers (part of Conns)
	Churn      float64  `json:"churn"`      // soak: its share of the churn rate
}

// Phases of a part.
const (
	phaseSetup    int32 = iota // opening the scenario's connections
	phaseTraffic               // the scenario runs
	phaseHeld                  // traffic over, connections still held (server RSS is sampled)
	phaseTeardown              // the generator closes everything; closes are not drops
)

// part is what one process does: its share of the connections on its own
// Dialer. Its counters are updated by the Dialer's loops and read by the
// progress ticker, hence atomics.
type part struct {
	cfg   *Config
	share shareSpec
	src   []net.IP

	tgts []endpoint // connection i goes to tgts[i mod n]
	pubs []endpoint // publisher k goes to pubs[k mod n]
	d    *loop.Dialer
	base time.Time // origin of the process clock

	phase    atomic.Int32
	stopping atomic.Bool // echo: send nothing more

	attempted, opened, resolved, active atomic.Int64
	compressed                          atomic.Int64
	failed, dropped                     [numCauses]atomic.Int64
	closedClean                         atomic.Int64
	sent, received, bytesSent, bytesRcv atomic.Int64
	sendErrors, mismatched              atomic.Int64
	delivered, duplicates, gaps         atomic.Int64
	corrupt, foreign, reordered         atomic.Int64
	published, echoed, heartbeats       atomic.Int64
	warmed, subsOpen, slowOpen          atomic.Int64 // warm-up probes first heard per (subscriber, publisher); subscribers and slow readers open
	quota                               atomic.Int64 // echo: messages left to send when Messages bounds the run
	firstDial, lastOpen                 atomic.Int64 // process clock
	trafficUnix                         atomic.Int64 // wall clock at traffic start, Unix ns

	heldAtStart, heldAtEnd   int64
	subsAtStart              int64 // soak: room subscribers open when the traffic started
	rcvAtStart, bytesAtStart int64 // received before the traffic (setup, a chat's join notices)
	rcvTraffic, bytesTraffic int64 // received during the traffic
	trafficSecs              float64
	rss                      int64

	hs, lat *recorder

	notesMu   sync.Mutex
	notes     []string
	noteSeen  map[string]bool
	handlesMu sync.Mutex
	handles   []session.Handle // echo: open connections, for the sender
	pubMu     sync.Mutex
	pubHs     map[int]session.Handle // this process's open publishers, by global number
	track     *tracker               // self-published broadcasts, per subscriber and publisher

	streamsMu sync.Mutex
	streams   []net.Conn     // sse connections and soak slow readers, closed at teardown
	streamWG  sync.WaitGroup // sse reader goroutines

	tokenPrefix      []byte
	stampKey, seqKey []byte
	echoOp           session.Opcode
	bufPool          sync.Pool             // *[]byte of Size, for building echo payloads on the loops
	kick, kickOpen   func(c *session.Conn) // sendEcho and sendOpen as func values made once, for tasks
	pending          atomic.Int64          // open loop: sends posted to the loops and not yet done
}

// conn is the whole per-connection state of the generator: 32 bytes. It is
// the connection's Handler, so that the Dialer holds it and nothing else
// needs a table of connections.
type conn struct {
	p     *part
	start int64  // process clock at dial; handshake latency
	id    uint32 // global connection number (echo payloads carry it)
	a, b  uint32 // echo: next seq to send, next to receive; broadcast: next seq expected
	flags uint8
}

const (
	fOpen      uint8 = 1 << iota // OnOpen ran
	fByUs                        // the generator closed it
	fPublisher                   // a publisher connection (a: its number)
	fSeqSeen                     // broadcast from the server: a sequence number was seen
	fChurn                       // closed as soon as it is open
	fSub                         // a broadcast subscriber (b: its index in the tracker)
)

func newPart(cfg *Config, share shareSpec) (*part, error) {
	tgts, err := resolveEndpoints(cfg.URL, cfg.Origin)
	if err != nil {
		return nil, err
	}
	var pubs []endpoint
	if cfg.PublishURL != "" {
		if pubs, err = resolveEndpoints(cfg.PublishURL, cfg.Origin); err != nil {
			return nil, err
		}
	}
	p := &part{cfg: cfg, share: share, tgts: tgts, pubs: pubs, base: time.Now(), pubHs: map[int]session.Handle{},
		hs: newRecorder(), lat: newRecorder(), noteSeen: map[string]bool{}}
	for _, s := range share.Src {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("source address %q is not an IP address", s)
		}
		p.src = append(p.src, ip)
	}
	if cfg.Publish == PublishSelf && (cfg.Scenario == Broadcast || cfg.Scenario == SSE || cfg.Scenario == Soak) {
		subs := share.Conns
		if cfg.Scenario == Soak {
			subs = share.Subs
		}
		p.track = newTracker(subs, cfg.Publishers, cfg.Messages)
	}
	p.tokenPrefix = tokenPrefix(cfg.RunID)
	p.stampKey = []byte(`"` + cfg.StampField + `"`)
	p.seqKey = []byte(`"` + cfg.SeqField + `"`)
	p.echoOp = session.Text
	if cfg.Binary {
		p.echoOp = session.Binary
	}
	size := cfg.Size
	p.bufPool.New = func() any { b := make([]byte, 0, size); return &b }
	p.kick, p.kickOpen = p.sendEcho, p.sendOpen
	maxMsg := 1 << 20
	if cfg.Size*2 > maxMsg {
		maxMsg = cfg.Size * 2
	}
	ping := cfg.Ping
	if ping == 0 {
		ping = -1 // the generator pings only when asked to; it answers the server's pings
	}
	p.d, err = loop.NewDialer(loop.DialerOptions{
		Loops:          cfg.Loops,
		ConnectTimeout: cfg.ConnectTimeout,
		Logger:         cfg.Logger,
		Session: session.Config{
			MaxMessage:   maxMsg,
			PingInterval: ping,
			Compression:  compression(cfg.Compress),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the dialer: %w", err)
	}
	return p, nil
}

func (p *part) clock() int64 { return int64(time.Since(p.base)) }

// compression is the connections' permessage-deflate offer: every message
// the generator sends is worth compressing in a compression run.
func compression(on bool) *session.Compression {
	if !on {
		return nil
	}
	return &session.Compression{Threshold: -1}
}

// note keeps the first occurrence of each kind of failure, with its detail.
func (p *part) note(kind, format string, a ...any) {
	p.notesMu.Lock()
	defer p.notesMu.Unlock()
	if p.noteSeen[kind] || len(p.notes) > 20 {
		return
	}
	p.noteSeen[kind] = true
	p.notes = append(p.notes, fmt.Sprintf("proc %d: first %s: ", p.share.Index, kind)+fmt.Sprintf(format, a...))
}

// ---- the Handler: one small value per connection, one set of methods ----

func (x *conn) OnOpen(c *session.Conn) {
	p := x.p
	now := p.clock()
	p.hs.record(time.Duration(now - x.start))
	x.flags |= fOpen
	c.SetValue(x)
	p.opened.Add(1)
	if c.Compressed() {
		p.compressed.Add(1)
	}
	p.resolved.Add(1)
	p.active.Add(1)
	p.lastOpen.Store(now)
	switch {
	case x.flags&fPublisher != 0:
		p.pubMu.Lock()
		p.pubHs[int(x.a)] = c.Handle()
		p.pubMu.Unlock()
	case p.cfg.Scenario == Churn || x.flags&fChurn != 0:
		x.flags |= fByUs
		_ = c.Close(session.StatusNormal, "wsload churn")
	case x.flags&fSub != 0:
		p.subsOpen.Add(1)
	case p.cfg.Scenario == Echo || p.cfg.Scenario == Soak:
		p.handlesMu.Lock()
		p.handles = append(p.handles, c.Handle())
		p.handlesMu.Unlock()
	}
}

func (x *conn) OnMessage(c *session.Conn, op session.Opcode, payload []byte) {
	p := x.p
	p.received.Add(1)
	p.bytesRcv.Add(int64(len(payload)))
	switch {
	case x.flags&fPublisher != 0: // a chat room's publisher hears the room too
	case x.flags&fSub != 0 || p.cfg.Scenario == Broadcast:
		p.onBroadcast(x, payload)
	case p.cfg.Scenario == Echo || p.cfg.Scenario == Soak && x.flags&fChurn == 0:
		p.onEcho(x, c, op, payload)
	default:
		p.foreign.Add(1)
	}
}

func (x *conn) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	p := x.p
	if x.flags&fOpen == 0 {
		cs := classify(err)
		p.failed[cs].Add(1)
		p.resolved.Add(1)
		p.note("connect failure "+cs.String(), "%v", err)
		return
	}
	p.active.Add(-1)
	if x.flags&fSub != 0 {
		p.subsOpen.Add(-1)
	}
	if x.flags&fByUs != 0 {
		if err == nil && (code == session.StatusNormal || code == session.StatusNoStatus) {
			p.closedClean.Add(1)
		} else {
			cs := classify(err)
			p.dropped[cs].Add(1)
			p.note("unclean close "+cs.String(), "code %d %q: %v", code, reason, err)
		}
		return
	}
	if p.phase.Load() == phaseTeardown {
		return
	}
	cs := classify(err)
	p.dropped[cs].Add(1)
	p.note("drop "+cs.String(), "conn %d: code %d %q: %v", x.id, code, reason, err)
}

// ---- dialing ----

// srcFor is the source address of connection id.
func (p *part) srcFor(id uint32) net.IP {
	if len(p.src) == 0 {
		return nil
	}
	return p.src[int(id)%len(p.src)]
}

// target is the endpoint of connection id.
func (p *part) target(id uint32) endpoint { return p.tgts[int(id)%len(p.tgts)] }

func (p *part) dial(x *conn, ep endpoint) {
	x.start = p.clock()
	p.firstDial.CompareAndSwap(0, x.start)
	p.attempted.Add(1)
	if err := p.d.Dial(ep.raddr, p.srcFor(x.id), ep.req, x); err != nil {
		cs := classify(err)
		p.failed[cs].Add(1)
		p.resolved.Add(1)
		p.note("dial error "+cs.String(), "%v", err)
	}
}

// dialN starts connects 0..n-1 (start(i) begins connect i) at rate per
// second (0: as fast as InFlight allows) until n are started, deadline
// passes or ctx ends, and waits for the connects in flight. It returns how
// many were started.
func (p *part) dialN(ctx context.Context, n int, rate float64, deadline time.Time, begin func(i int)) int {
	start := time.Now()
	i := 0
	for i < n && ctx.Err() == nil && time.Now().Before(deadline) {
		allowed := n
		if rate > 0 {
			allowed = min(n, int(rate*time.Since(start).Seconds())+1)
		}
		for i < allowed && p.attempted.Load()-p.resolved.Load() < int64(p.cfg.InFlight) {
			begin(i)
			i++
		}
		sleepCtx(ctx, time.Millisecond)
	}
	p.waitResolved(ctx)
	return i
}

// waitResolved waits until every connect started has opened or failed; the
// Dialer bounds each by ConnectTimeout, so this is bounded too.
func (p *part) waitResolved(ctx context.Context) {
	limit := time.Now().Add(p.cfg.ConnectTimeout + 2*time.Second)
	for p.attempted.Load() > p.resolved.Load() && ctx.Err() == nil && time.Now().Before(limit) {
		sleepCtx(ctx, 5*time.Millisecond)
	}
}

// drain waits until done reports true, or until count has not moved for
// Config.Drain (what is still missing then is lost), or until the traffic's
// budget is spent. A slow but steady stream is waited for; a stalled one
// is not.
func (p *part) drain(ctx context.Context, start time.Time, done func() bool, count func() int64) {
	hard := start.Add(p.cfg.Duration + p.cfg.Drain + 2*p.cfg.ConnectTimeout)
	last, lastMove := count(), time.Now()
	for !done() && ctx.Err() == nil && time.Now().Before(hard) {
		if n := count(); n != last {
			last, lastMove = n, time.Now()
		} else if time.Since(lastMove) > p.cfg.Drain {
			return
		}
		sleepCtx(ctx, 5*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (p *part) newConn(i int) *conn { return &conn{p: p, id: uint32(p.share.Offset + i)} }

// dialConn starts connection i of the share to its endpoint; broadcast
// subscribers get their tracker slot.
func (p *part) dialConn(i int) {
	x := p.newConn(i)
	if p.cfg.Scenario == Broadcast && p.track != nil {
		x.flags, x.b = fSub, uint32(i)
	}
	p.dial(x, p.target(x.id))
}

// setupBudget bounds the setup phase of a share.
func setupBudget(cfg *Config, s *shareSpec) time.Duration {
	d := 3*cfg.ConnectTimeout + 10*time.Second
	if s.Ramp > 0 {
		d += time.Duration(float64(s.Conns) / s.Ramp * float64(time.Second))
	}
	return d + time.Duration(s.Conns)*time.Millisecond // 1000/s at the very least
}

// trafficBudget bounds the traffic phase.
func trafficBudget(cfg *Config) time.Duration {
	return cfg.Duration + cfg.Drain + 2*cfg.ConnectTimeout + 10*time.Second
}

// setup opens the connections the traffic needs.
func (p *part) setup(ctx context.Context) error {
	switch p.cfg.Scenario {
	case Connect, Churn:
		return nil // their connects are the traffic
	}
	deadline := time.Now().Add(setupBudget(p.cfg, &p.share))
	switch p.cfg.Scenario {
	case SSE:
		p.dialN(ctx, p.share.Conns, p.share.Ramp, deadline, p.dialSSE)
	case Soak:
		p.soakSetup(ctx, deadline)
	default:
		p.dialN(ctx, p.share.Conns, p.share.Ramp, deadline, p.dialConn)
	}
	if p.cfg.Publish == PublishSelf && len(p.share.Publishers) > 0 {
		for _, k := range p.share.Publishers {
			x := &conn{p: p, id: uint32(1<<31 - 1 - k), a: uint32(k), flags: fPublisher}
			p.dial(x, p.pubs[k%len(p.pubs)])
		}
		p.waitResolved(ctx)
		p.pubMu.Lock()
		n := len(p.pubHs)
		p.pubMu.Unlock()
		if n < len(p.share.Publishers) {
			return fmt.Errorf("%d of %d publisher connections to %s did not open (see the connect failures)", len(p.share.Publishers)-n, len(p.share.Publishers), p.cfg.PublishURL)
		}
		if p.cfg.crossChecked() {
			go p.probe(ctx)
		}
	}
	return ctx.Err()
}

// traffic runs the scenario; it returns when its traffic is over, with the
// connections still held.
func (p *part) traffic(ctx context.Context) error {
	p.heldAtStart = p.active.Load() - int64(p.openPublishers())
	p.subsAtStart = p.subsOpen.Load()
	p.rcvAtStart, p.bytesAtStart = p.received.Load(), p.bytesRcv.Load()
	p.trafficUnix.Store(time.Now().UnixNano())
	p.phase.Store(phaseTraffic)
	start := time.Now()
	var err error
	switch p.cfg.Scenario {
	case Connect:
		p.dialN(ctx, p.share.Conns, p.share.Rate, start.Add(p.cfg.Duration), p.dialConn)
	case Idle:
		sleepCtx(ctx, p.cfg.Duration)
	case Echo:
		err = p.echoTraffic(ctx, start)
	case Broadcast, SSE:
		err = p.broadcastTraffic(ctx, start)
	case Churn:
		n := int(p.share.Rate * p.cfg.Duration.Seconds())
		p.dialN(ctx, n, p.share.Rate, start.Add(p.cfg.Duration), p.dialConn)
		p.drain(ctx, start, func() bool { return p.active.Load() == 0 }, p.closedClean.Load)
	case Soak:
		err = p.soakTraffic(ctx, start)
	}
	p.trafficSecs = time.Since(start).Seconds()
	p.rcvTraffic, p.bytesTraffic = p.received.Load()-p.rcvAtStart, p.bytesRcv.Load()-p.bytesAtStart
	p.heldAtEnd = p.active.Load() - int64(p.openPublishers())
	p.phase.Store(phaseHeld)
	if rss, rerr := readRSS(os.Getpid()); rerr == nil {
		p.rss = rss
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// finish closes every connection and reports.
func (p *part) finish() *partResult {
	p.phase.Store(phaseTeardown)
	if err := p.d.Close(); err != nil {
		p.note("dialer close", "%v", err)
	}
	p.closeStreams()
	r := &partResult{
		Counts: Counts{
			Attempted:     p.attempted.Load(),
			Opened:        p.opened.Load(),
			Compressed:    p.compressed.Load(),
			HeldAtStart:   p.heldAtStart,
			HeldAtEnd:     p.heldAtEnd,
			ClosedClean:   p.closedClean.Load(),
			Sent:          p.sent.Load(),
			Received:      p.received.Load(),
			BytesSent:     p.bytesSent.Load(),
			BytesReceived: p.bytesRcv.Load(),
			SendErrors:    p.sendErrors.Load(),
			Mismatched:    p.mismatched.Load(),
			Delivered:     p.delivered.Load(),
			Duplicates:    p.duplicates.Load(),
			Gaps:          p.gaps.Load(),
			Corrupt:       p.corrupt.Load(),
			Foreign:       p.foreign.Load(),
			Reordered:     p.reordered.Load(),
			Published:     p.published.Load(),
			Heartbeats:    p.heartbeats.Load(),
			SlowReaders:   p.slowOpen.Load(),
			Subscribers:   p.subsAtStart,
		},
		Handshake:    p.hs.snapshot(),
		Latency:      p.lat.snapshot(),
		RSS:          p.rss,
		Traffic:      p.trafficSecs,
		TrafficMsgs:  p.rcvTraffic,
		TrafficBytes: p.bytesTraffic,
	}
	switch p.cfg.Scenario {
	case Echo:
		r.Missing = max(0, r.Sent-r.Received)
	case Soak:
		r.Missing = max(0, r.Sent-p.echoed.Load())
	}
	for i := range numCauses {
		if n := p.failed[i].Load(); n > 0 {
			r.Failed = addMap(r.Failed, map[string]int64{i.String(): n})
		}
		if n := p.dropped[i].Load(); n > 0 {
			r.Dropped = addMap(r.Dropped, map[string]int64{i.String(): n})
		}
	}
	if first, last := p.firstDial.Load(), p.lastOpen.Load(); last > first {
		r.Ramp = time.Duration(last - first).Seconds()
	}
	p.notesMu.Lock()
	r.Notes = append(r.Notes, p.notes...)
	p.notesMu.Unlock()
	return r
}

// progress is a part's counters for the live progress line.
type progress struct {
	Active   int64 `json:"active"`
	Opened   int64 `json:"opened"`
	Received int64 `json:"received"`
	Errors   int64 `json:"errors"`
	P99      int64 `json:"p99_us"`
	Warmed   int64 `json:"warmed,omitempty"` // warm-up: (subscriber, publisher) pairs heard
	Subs     int64 `json:"subs,omitempty"`   // subscribers open
}

func (p *part) progress() progress {
	var errs int64
	for i := range numCauses {
		errs += p.failed[i].Load() + p.dropped[i].Load()
	}
	errs += p.mismatched.Load() + p.corrupt.Load() + p.duplicates.Load() + p.gaps.Load() + p.sendErrors.Load() + p.reordered.Load()
	p99, n := p.lat.quantile(99)
	if n == 0 {
		p99, _ = p.hs.quantile(99)
	}
	return progress{Active: p.active.Load(), Opened: p.opened.Load(), Received: p.received.Load(), Errors: errs, P99: p99,
		Warmed: p.warmed.Load(), Subs: p.subsOpen.Load()}
}

// openPublishers is the number of this process's publishers that are open.
func (p *part) openPublishers() int {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	return len(p.pubHs)
}

// keepStream registers an sse connection or slow reader for teardown;
// false: teardown has begun, and c is closed.
func (p *part) keepStream(c net.Conn) bool {
	p.streamsMu.Lock()
	defer p.streamsMu.Unlock()
	if p.phase.Load() == phaseTeardown {
		c.Close()
		return false
	}
	p.streams = append(p.streams, c)
	return true
}

// closeStreams closes the sse connections and slow readers and waits for
// the sse readers.
func (p *part) closeStreams() {
	p.streamsMu.Lock()
	for _, c := range p.streams {
		c.Close()
	}
	p.streams = nil
	p.streamsMu.Unlock()
	p.streamWG.Wait()
}
