package loadtest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// onBroadcast accounts for one message received by subscriber x.
func (p *part) onBroadcast(x *conn, payload []byte) {
	if p.cfg.Publish == PublishServer {
		p.onServerMessage(x, payload)
		return
	}
	t := parseAnyToken(payload, p.tokenPrefix)
	switch {
	case !t.found:
		p.foreign.Add(1)
		return
	case !t.ok:
		p.corrupt.Add(1)
		p.note("corrupt broadcast", "conn %d: %.80q", x.id, payload)
		return
	case t.probe:
		if p.track.warm(int(x.b), t.pub) {
			p.warmed.Add(1)
		}
		return
	}
	p.lat.record(time.Duration(time.Now().UnixNano() - t.unixNano)) // only published during the traffic
	switch p.track.record(int(x.b), t.pub, t.seq) {
	case vNew:
		p.delivered.Add(1)
	case vLate:
		p.delivered.Add(1)
		p.reordered.Add(1)
		p.note("reordered broadcast", "conn %d: publisher %d's message %d after a later one", x.id, t.pub, t.seq)
	case vAgain:
		p.duplicates.Add(1)
		p.note("duplicate broadcast", "conn %d: publisher %d's message %d again", x.id, t.pub, t.seq)
	default:
		p.corrupt.Add(1)
		p.note("corrupt broadcast", "conn %d: publisher %d, message %d: no such message", x.id, t.pub, t.seq)
	}
}

// recordDelivery records the latency of a server message sent at t (Unix
// ns). Messages sent before the traffic started are not timed: a feed that
// replays its latest message to a new subscriber would otherwise report the
// replay's age as latency. Nor are those that arrive after it.
func (p *part) recordDelivery(t int64) {
	if start := p.trafficUnix.Load(); p.phase.Load() == phaseTraffic && t >= start {
		p.lat.record(time.Duration(time.Now().UnixNano() - t))
	}
}

// onServerMessage times a server-originated message by its time field and
// checks its sequence field, when it has one, for gaps.
func (p *part) onServerMessage(x *conn, payload []byte) {
	t, ok := parseStamp(payload, p.stampKey, p.cfg.StampUnit)
	if !ok {
		p.foreign.Add(1)
		return
	}
	p.recordDelivery(t)
	p.delivered.Add(1)
	seq, ok := parseSeq(payload, p.seqKey)
	if !ok {
		return
	}
	s := uint32(seq)
	switch {
	case x.flags&fSeqSeen == 0:
		x.flags |= fSeqSeen
	case s == x.a:
	case s > x.a:
		p.gaps.Add(int64(s - x.a))
		p.note("server message gap", "conn %d: %s %d after %d", x.id, p.cfg.SeqField, s, x.a-1)
	default:
		p.duplicates.Add(1)
		p.note("duplicate server message", "conn %d: %s %d after %d", x.id, p.cfg.SeqField, s, x.a-1)
	}
	x.a = s + 1
}

// broadcastTraffic publishes (PublishSelf: each of this process's
// publishers) Messages at Rate per second and waits until every subscriber
// has them all, or deliveries have stalled for Drain. With PublishServer
// it listens for Duration.
func (p *part) broadcastTraffic(ctx context.Context, start time.Time) error {
	if p.cfg.Publish == PublishServer {
		sleepCtx(ctx, p.cfg.Duration)
		return nil
	}
	n := p.cfg.Messages
	p.publishAll(ctx, n, p.cfg.Rate, p.cfg.Duration)
	want := int64(n) * int64(p.cfg.Publishers) * p.heldAtStart
	p.drain(ctx, start, func() bool { return p.delivered.Load() >= want }, p.received.Load)
	return nil
}

// publishAll runs this process's publishers, n messages each at rate, for
// at most d. A process without publishers waits for the time the others
// need, before counting stalls.
func (p *part) publishAll(ctx context.Context, n int, rate float64, d time.Duration) {
	p.pubMu.Lock()
	hs := make(map[int]session.Handle, len(p.pubHs))
	for k, h := range p.pubHs {
		hs[k] = h
	}
	p.pubMu.Unlock()
	if len(hs) == 0 {
		send := time.Duration(float64(n) / rate * float64(time.Second))
		sleepCtx(ctx, min(send, d))
		return
	}
	var wg sync.WaitGroup
	for k, h := range hs {
		wg.Go(func() { p.publish(ctx, h, k, n, rate, d) })
	}
	wg.Wait()
}

// publish sends n messages at rate through publisher k's connection.
func (p *part) publish(ctx context.Context, h session.Handle, k, n int, rate float64, d time.Duration) {
	before, after, _ := strings.Cut(p.cfg.PublishTemplate, "%s")
	multi := p.cfg.Publishers > 1
	pad := 0
	if p.cfg.Scenario == Soak { // room messages of Size bytes: they fill slow readers' buffers
		pad = p.cfg.Size
	}
	start := time.Now()
	end := start.Add(d)
	for i := 0; i < n && ctx.Err() == nil && time.Now().Before(end); i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			sleepCtx(ctx, d)
		}
		msg := []byte(before)
		if multi {
			msg = appendPubToken(msg, p.cfg.RunID, k, uint64(i), time.Now().UnixNano())
		} else {
			msg = appendToken(msg, p.cfg.RunID, uint64(i), time.Now().UnixNano())
		}
		for len(msg) < pad-len(after) {
			msg = append(msg, ' ', 'x')
		}
		msg = append(msg, after...)
		err := h.Do(func(c *session.Conn) {
			if err := c.Send(session.Text, msg); err != nil {
				p.sendErrors.Add(1)
				p.note("publish error", "%v", err)
				return
			}
			if p.cfg.Scenario == Soak {
				p.published.Add(1)
			} else {
				p.sent.Add(1)
			}
			p.bytesSent.Add(int64(len(msg)))
		})
		if err != nil {
			p.note("publish error", "%v", err)
			return
		}
	}
}

// probeBudget bounds the deliveries per second that warm-up probes ask of
// the servers: every probe goes to every member of the room, and probes
// faster than the servers deliver them only build a backlog in front of
// the probes that matter.
const probeBudget = 50_000

// probeInterval is the time between a publisher's warm-up probes: 100 ms,
// longer once a round of probes (every publisher's, to every subscriber)
// would take more than the probe budget.
func (c *Config) probeInterval() time.Duration {
	round := float64(c.Conns) * float64(max(1, c.Publishers)) / probeBudget
	return max(100*time.Millisecond, time.Duration(round*float64(time.Second)))
}

// probe sends every publisher's warm-up probe every probeInterval until
// the traffic starts: subscribers in other processes count the first they
// hear from each publisher, and the parent starts the traffic when all
// have heard all.
func (p *part) probe(ctx context.Context) {
	before, after, _ := strings.Cut(p.cfg.PublishTemplate, "%s")
	t := time.NewTicker(p.cfg.probeInterval())
	defer t.Stop()
	for p.phase.Load() == phaseSetup && ctx.Err() == nil {
		p.pubMu.Lock()
		for k, h := range p.pubHs {
			msg := append(appendProbe([]byte(before), p.cfg.RunID, k), after...)
			_ = h.Send(session.Text, msg)
		}
		p.pubMu.Unlock()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
