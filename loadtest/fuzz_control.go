package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// control is the fuzzer's healthy connection: it echoes a message every
// controlEvery while the cases run, each within ControlTimeout. When it
// fails it says how and connects again, so that one failure does not hide
// the rest of the run.
type control struct {
	f      *fuzzer
	conn   *net.TCPConn
	s      *serverStream
	seq    int
	echoes int64
	maxRTT time.Duration
}

const controlEvery = 100 * time.Millisecond

func (c *control) connect() error {
	conn, err := c.f.dial(c.f.cfg.ControlTimeout)
	if err != nil {
		return err
	}
	key := newKey(randFor(c.f.cfg.Seed, -1))
	conn.SetDeadline(time.Now().Add(c.f.cfg.ControlTimeout))
	if _, err := conn.Write(handshakeRequest(c.f.tgt.path, c.f.tgt.host, c.f.cfg.Origin, key)); err != nil {
		conn.Close()
		return err
	}
	h, rest, err := readHead(conn)
	if err == nil && (h.status != 101 || h.header["sec-websocket-accept"] != acceptFor(key)) {
		err = fmt.Errorf("handshake answered %d", h.status)
	}
	if err != nil {
		conn.Close()
		return err
	}
	c.conn, c.s = conn, &serverStream{maxMsg: 1 << 16, keep: true}
	c.s.feed(rest)
	return nil
}

func (c *control) run(ctx context.Context) {
	defer func() {
		if c.conn != nil {
			c.conn.SetDeadline(time.Now().Add(c.f.cfg.ControlTimeout))
			c.conn.Write(appendFrame(nil, frame(opClose, closePayload(1000, "")), randFor(c.f.cfg.Seed, -2)))
			c.conn.Close()
		}
	}()
	r := randFor(c.f.cfg.Seed, -3)
	tick := time.NewTicker(controlEvery)
	defer tick.Stop()
	buf := make([]byte, 4096)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.conn == nil {
			if err := c.connect(); err != nil {
				c.f.failf(-1, nil, "control", "reconnecting: %v", err)
				continue
			}
		}
		c.seq++
		msg := []byte("control " + strconv.Itoa(c.seq))
		start := time.Now()
		c.conn.SetDeadline(start.Add(c.f.cfg.ControlTimeout))
		err := error(nil)
		if _, err = c.conn.Write(appendFrame(nil, frame(opText, msg), r)); err == nil {
			for len(c.s.messages) == 0 && c.s.err == nil && !c.s.closed {
				var n int
				n, err = c.conn.Read(buf)
				c.s.feed(buf[:n])
				if err != nil {
					break
				}
			}
		}
		switch {
		case c.s.err != nil:
			err = c.s.err
		case c.s.closed:
			err = fmt.Errorf("the server closed it with %d", c.s.closeCode)
		case err == nil && !bytes.Equal(c.s.messages[0], msg):
			err = fmt.Errorf("echo %q for %q", c.s.messages[0], msg)
		}
		if err != nil {
			c.f.failf(-1, nil, "control", "echo %d: %v", c.seq, err)
			c.conn.Close()
			c.conn = nil
			continue
		}
		c.s.messages = c.s.messages[1:]
		c.echoes++
		c.maxRTT = max(c.maxRTT, time.Since(start))
	}
}
