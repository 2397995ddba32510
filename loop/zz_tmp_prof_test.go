//go:build linux

package loop

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

func TestZZTmpProf(t *testing.T) {
	h := session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) }}
	s := startEpoll(t, h, nil, nil)
	d := newTestDialer(t, 0)
	addr := s.Addr().(*net.TCPAddr)
	var echoed atomic.Int64
	msg := bytes.Repeat([]byte("m"), 64)
	ch := session.HandlerFuncs{
		Open:    func(c *session.Conn) { _ = c.Send(session.Binary, msg) },
		Message: func(c *session.Conn, op session.Opcode, p []byte) { echoed.Add(1) },
	}
	for i := 0; i < 2000; i++ {
		_ = d.Dial(addr, nil, &session.ClientRequest{Host: "x"}, ch)
		if i%200 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually(t, "echo", func() bool { return echoed.Load() == 2000 })
}
