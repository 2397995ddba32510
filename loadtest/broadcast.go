package loadtest

import (
	"context"
	"strings"
	"time"

	"github.com/wsloop/wsloop/session"
)

// onBroadcast accounts for one message received by subscriber x.
func (p *part) onBroadcast(x *conn, payload []byte) {
	if p.cfg.Publish == PublishServer {
		p.onServerMessage(x, payload)
		return
	}
	seq, t, found, ok := parseToken(payload, p.tokenPrefix)
	switch {
	case !found:
		p.foreign.Add(1)
		return
	case !ok:
		p.corrupt.Add(1)
		p.note("corrupt broadcast", "conn %d: %.80q", x.id, payload)
		return
	}
	p.lat.record(time.Duration(time.Now().UnixNano() - t)) // only published during the traffic
	switch {
	case seq == uint64(x.a):
		p.delivered.Add(1)
		x.a++
	case seq > uint64(x.a): // the ones skipped are lost, unless they come later
		p.delivered.Add(1)
		p.note("broadcast gap", "conn %d: message %d after %d", x.id, seq, int64(x.a)-1)
		x.a = uint32(seq) + 1
	default:
		p.duplicates.Add(1)
		p.note("duplicate broadcast", "conn %d: message %d after %d", x.id, seq, x.a-1)
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

// broadcastTraffic publishes (PublishSelf, publisher process) Messages at
// Rate per second and waits until every subscriber has them all, or
// deliveries have stalled for Drain. With PublishServer it listens for
// Duration.
func (p *part) broadcastTraffic(ctx context.Context, start time.Time) error {
	if p.cfg.Publish == PublishServer {
		sleepCtx(ctx, p.cfg.Duration)
		return nil
	}
	n := p.cfg.Messages
	if h := p.pubH.Load(); h != nil {
		p.publish(ctx, *h, n)
	} else { // another process publishes: give it the time it needs before counting stalls
		send := time.Duration(float64(n) / p.cfg.Rate * float64(time.Second))
		sleepCtx(ctx, min(send, p.cfg.Duration))
	}
	want := int64(n) * p.heldAtStart
	p.drain(ctx, start, func() bool { return p.delivered.Load() >= want }, p.received.Load)
	return nil
}

// publish sends n messages at Rate through the publisher connection.
func (p *part) publish(ctx context.Context, h session.Handle, n int) {
	before, after, _ := strings.Cut(p.cfg.PublishTemplate, "%s")
	start := time.Now()
	end := start.Add(p.cfg.Duration)
	for i := 0; i < n && ctx.Err() == nil && time.Now().Before(end); i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / p.cfg.Rate * float64(time.Second)))); d > 0 {
			sleepCtx(ctx, d)
		}
		msg := append([]byte(before), appendToken(nil, p.cfg.RunID, uint64(i), time.Now().UnixNano())...)
		msg = append(msg, after...)
		err := h.Do(func(c *session.Conn) {
			if err := c.Send(session.Text, msg); err != nil {
				p.sendErrors.Add(1)
				p.note("publish error", "%v", err)
				return
			}
			p.sent.Add(1)
			p.bytesSent.Add(int64(len(msg)))
		})
		if err != nil {
			p.note("publish error", "%v", err)
			return
		}
	}
}
