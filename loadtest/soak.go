package loadtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// The soak scenario, one process's share: echo connections, room
// subscribers and slow readers held for Duration while the echoes, the
// room's publisher and the churn run side by side.

// soakSetup opens the share's echo connections, subscribers and slow
// readers.
func (p *part) soakSetup(ctx context.Context, deadline time.Time) {
	room := p.pubs[0]
	echo := p.share.Conns - p.share.Subs - p.share.Slow
	p.dialN(ctx, echo, p.share.Ramp, deadline, p.dialConn)
	p.dialN(ctx, p.share.Subs, p.share.Ramp, deadline, func(i int) {
		x := p.newConn(echo + i)
		x.flags, x.b = fSub, uint32(i)
		p.dial(x, room)
	})
	var wg sync.WaitGroup
	p.dialN(ctx, p.share.Slow, p.share.Ramp, deadline, func(i int) {
		id := uint32(p.share.Offset + echo + p.share.Subs + i)
		p.attempted.Add(1)
		wg.Go(func() {
			defer p.resolved.Add(1)
			if err := p.slowReader(id, room); err != nil {
				cs := classify(err)
				p.failed[cs].Add(1)
				p.note("slow reader "+cs.String(), "%v", err)
			}
		})
	})
	wg.Wait()
}

// slowReader connects to the room, completes the handshake and never reads
// again: the server's messages pile up in the kernel's buffers and then in
// the server's, until its overflow policy deals with the connection.
func (p *part) slowReader(id uint32, ep endpoint) error {
	d := net.Dialer{Timeout: p.cfg.ConnectTimeout}
	if src := p.srcFor(id); src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", ep.raddr.String())
	if err != nil {
		return err
	}
	if !p.keepStream(c) {
		return nil
	}
	_ = c.SetDeadline(time.Now().Add(p.cfg.ConnectTimeout))
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + ep.path + " HTTP/1.1\r\nHost: " + ep.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	// Read the response head one byte at a time, so that nothing after it
	// is taken from the socket.
	br := bufio.NewReaderSize(&oneByte{c}, 16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("slow reader handshake: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	p.opened.Add(1)
	p.slowOpen.Add(1)
	return nil
}

// oneByte reads at most one byte per call.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return o.r.Read(b)
}

// soakTraffic runs the echoes (open loop at the share's Rate), the room's
// publisher and the churn for Duration, then drains.
func (p *part) soakTraffic(ctx context.Context, start time.Time) error {
	p.handlesMu.Lock()
	hs := append([]session.Handle(nil), p.handles...)
	p.handlesMu.Unlock()
	var wg sync.WaitGroup
	if len(hs) > 0 && p.share.Rate > 0 {
		wg.Go(func() { p.openLoop(ctx, hs, p.cfg.Duration) })
	}
	wg.Go(func() { p.publishAll(ctx, p.cfg.Messages, p.cfg.Soak.BroadcastRate, p.cfg.Duration) })
	if p.share.Churn > 0 {
		wg.Go(func() {
			n := int(p.share.Churn * p.cfg.Duration.Seconds())
			p.dialN(ctx, n, p.share.Churn, start.Add(p.cfg.Duration), func(i int) {
				x := &conn{p: p, id: uint32(1<<30 + p.share.Index*(1<<24) + i%(1<<24)), flags: fChurn}
				p.dial(x, p.target(x.id))
			})
		})
	}
	wg.Wait()
	p.stopping.Store(true)
	// The publisher's process knows how many went out; the others expect
	// all but the last, which the clock may have cut, and otherwise wait
	// for deliveries to stall for Drain.
	want := int64(p.cfg.Messages-1) * p.subsAtStart
	if p.openPublishers() > 0 {
		want = p.published.Load() * p.subsAtStart
	}
	p.drain(ctx, start, func() bool {
		return p.pending.Load() == 0 && p.echoed.Load()+p.mismatched.Load() >= p.sent.Load() && p.delivered.Load() >= want
	}, p.received.Load)
	return nil
}
