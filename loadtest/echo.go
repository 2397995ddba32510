package loadtest

import (
	"context"
	"time"

	"github.com/wsloop/wsloop/session"
)

// sendEcho sends connection c its next message, unless the run is stopping
// or out of quota. It runs on c's loop: in OnMessage (closed loop) or in a
// task posted by the sender (open loop), and allocates nothing.
func (p *part) sendEcho(c *session.Conn) {
	if p.stopping.Load() {
		return
	}
	p.sendEchoNow(c)
}

// sendOpen is the open loop's task: the sender decided, so it sends even
// when the run has just begun stopping.
func (p *part) sendOpen(c *session.Conn) {
	p.sendEchoNow(c)
	p.pending.Add(-1)
}

func (p *part) sendEchoNow(c *session.Conn) {
	x, _ := c.Value().(*conn)
	if x == nil {
		return
	}
	if p.echoQuota() && p.quota.Add(-1) < 0 {
		return
	}
	bp := p.bufPool.Get().(*[]byte)
	b := appendEcho((*bp)[:0], !p.cfg.Binary, p.cfg.Size, uint64(x.id), uint64(x.a), p.clock())
	err := c.Send(p.echoOp, b)
	*bp = b
	p.bufPool.Put(bp)
	if err != nil {
		p.sendErrors.Add(1)
		p.note("send error", "conn %d: %v", x.id, err)
		return
	}
	x.a++
	p.sent.Add(1)
	p.bytesSent.Add(int64(len(b)))
}

// onEcho checks an echo against what connection x must have sent.
func (p *part) onEcho(x *conn, c *session.Conn, op session.Opcode, payload []byte) {
	ts, bad := checkEcho(payload, !p.cfg.Binary, p.cfg.Size, uint64(x.id), uint64(x.b))
	if bad == "" && op != p.echoOp {
		bad = "wrong opcode"
	}
	if bad != "" {
		p.mismatched.Add(1)
		p.note("payload mismatch", "conn %d message %d (%d bytes, opcode %d): %s", x.id, x.b, len(payload), op, bad)
	} else {
		p.lat.record(time.Duration(p.clock() - ts))
		p.echoed.Add(1)
	}
	x.b++
	if p.share.Rate == 0 { // closed loop: the echo is the signal to send again
		p.sendEcho(c)
	}
}

// echoTraffic starts the exchange on every connection and runs it for
// Duration (or until Messages are through), then drains the echoes still
// on their way.
func (p *part) echoTraffic(ctx context.Context, start time.Time) error {
	p.quota.Store(int64(p.share.Messages))
	p.handlesMu.Lock()
	hs := append([]session.Handle(nil), p.handles...)
	p.handlesMu.Unlock()
	byExec := groupByExecutor(hs)
	end := time.Now().Add(p.cfg.Duration)
	if p.share.Rate == 0 {
		for x, ids := range byExec {
			if err := x.ExecuteAll(ids, p.kick, 0); err != nil {
				return err
			}
		}
		for time.Now().Before(end) && ctx.Err() == nil && !p.quotaDone() {
			sleepCtx(ctx, 10*time.Millisecond)
		}
	} else if len(hs) > 0 {
		p.openLoop(ctx, hs, p.cfg.Duration)
	}
	p.stopping.Store(true)
	p.drain(ctx, start, func() bool { return p.pending.Load() == 0 && p.received.Load() >= p.sent.Load() }, p.received.Load)
	return nil
}

func (p *part) quotaDone() bool {
	return p.echoQuota() && p.quota.Load() <= 0 && p.received.Load() >= p.sent.Load()
}

// openLoop sends at Rate messages per second whatever the echoes do, to the
// connections in turn: Rate times Duration messages in all (fewer when
// Messages is smaller). Every 5 ms it posts one task per loop with the
// connections due; a late tick catches up, so a stall delays messages but
// does not lose them.
func (p *part) openLoop(ctx context.Context, hs []session.Handle, total time.Duration) {
	start := time.Now()
	var issued int64
	next := 0
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil && !(p.echoQuota() && p.quota.Load() <= 0) {
		elapsed := min(time.Since(start), total)
		if due := int64(p.share.Rate*elapsed.Seconds()) - issued; due > 0 {
			batch := make(map[session.Executor][]uint64)
			for range due {
				h := hs[next]
				next = (next + 1) % len(hs)
				batch[h.Executor()] = append(batch[h.Executor()], h.ID())
			}
			p.pending.Add(due)
			for x, ids := range batch {
				if x.ExecuteAll(ids, p.kickOpen, 0) != nil {
					p.pending.Add(-int64(len(ids)))
				}
			}
			issued += due
		}
		if elapsed == total {
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func groupByExecutor(hs []session.Handle) map[session.Executor][]uint64 {
	m := make(map[session.Executor][]uint64)
	for _, h := range hs {
		m[h.Executor()] = append(m[h.Executor()], h.ID())
	}
	return m
}

// echoQuota reports whether Messages bounds the echoes (the echo scenario;
// in the soak, Messages counts the room's messages).
func (p *part) echoQuota() bool { return p.cfg.Scenario == Echo && p.cfg.Messages > 0 }
