package session

import (
	"io"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// FuzzFeed feeds arbitrary bytes, in arbitrary pieces, to a Conn that has
// completed its handshake (or, with mode bit 1, to one still in it), in
// both roles, with several handler behaviours and an occasional Tick.
// Invariants: no panic escapes, OnClose at most once (exactly once for an
// opened connection once the transport is gone), nothing is written after
// Transport.Close, the state only moves forward, Text messages are valid
// UTF-8, and no buffer is held after TransportClosed.
//
// mode bits: 0 role (client), 1 start in the handshake, 2-3 handler
// behaviour (echo, close in OnMessage, panic on the 3rd message, nothing),
// 4 MaxMessage of 64 bytes, 5 ticks between pieces.
func FuzzFeed(f *testing.F) {
	rng := newRng()
	for _, cc := range conformanceCases() {
		if cc.big {
			continue
		}
		for _, role := range []byte{0, 1} {
			// Small seeds only: the fuzzer minimizes what it finds, which
			// is slow on large inputs.
			if in := encodeFrames(cc.in, role == 0, rng); len(in) <= 2048 {
				f.Add(role|byte(len(cc.name)%4)<<2, uint64(len(cc.name)), in)
			}
		}
	}
	f.Add(byte(2), uint64(1), []byte(upgradeRequest("")+"\x81\x85abcd"))
	f.Add(byte(3), uint64(1), []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
	f.Fuzz(func(t *testing.T, mode byte, seed uint64, data []byte) {
		role := Server
		if mode&1 != 0 {
			role = Client
		}
		cfg := &Config{PingInterval: 3e9, IdleTimeout: 20e9, CloseTimeout: 2e9}
		if mode&16 != 0 {
			cfg.MaxMessage = 64
		}
		rec := &recorder{}
		n := 0
		rec.onMessage = func(c *Conn, op Opcode, p []byte) {
			n++
			if op == Text && !utf8.Valid(p) {
				t.Fatalf("invalid UTF-8 delivered: %q", p)
			}
			switch mode >> 2 & 3 {
			case 0:
				_ = c.Send(op, p)
			case 1:
				_ = c.Close(StatusNormal, "bye")
			case 2:
				if n == 3 {
					panic("handler bug")
				}
			}
		}
		var c *tconn
		var ft *fakeTransport
		if mode&2 != 0 {
			c = &tconn{}
			ft = &fakeTransport{conn: c}
			if role == Server {
				cfg.Handler = rec
				c.Init(cfg, ft, t0)
			} else {
				c.InitClient(cfg, ft, &ClientRequest{Host: "h"}, rec, t0)
			}
		} else {
			c, ft = openConn(t, cfg, role, rec)
		}
		r := rand.New(rand.NewPCG(seed, 3))
		now := t0
		prev := c.State()
		for i := 0; i < len(data); {
			k := 1 + r.IntN(len(data)-i)
			if r.IntN(2) == 0 {
				k = min(k, 1+r.IntN(8))
			}
			now += int64(r.IntN(1e9))
			c.Feed(data[i:i+k], now)
			i += k
			if mode&32 != 0 && r.IntN(3) == 0 {
				now += int64(r.Int64N(5e9))
				c.Tick(now)
			}
			if s := c.State(); s < prev {
				t.Fatalf("state went back from %v to %v", prev, s)
			} else {
				prev = s
			}
			if rec.closes > 1 {
				t.Fatalf("OnClose called %d times", rec.closes)
			}
			if ft.afterClose != 0 {
				t.Fatalf("wrote after Transport.Close")
			}
		}
		c.TransportClosed(io.EOF)
		if c.buf != nil {
			t.Fatalf("buffer held after TransportClosed")
		}
		if c.flags&fOpened != 0 && rec.closes != 1 {
			t.Fatalf("opened connection got OnClose %d times", rec.closes)
		}
		if rec.closes > 1 || ft.afterClose != 0 {
			t.Fatalf("OnClose %d, writes after close %d", rec.closes, ft.afterClose)
		}
	})
}

// FuzzHTTPSide feeds arbitrary bytes, in arbitrary pieces, to a server
// Conn whose plain requests are answered (at once or in a later task, kept
// alive or not), mixed with upgrades. Invariants: no panic escapes,
// nothing is written after the close was asked for, a request's body is
// exactly its Content-Length, the state only moves forward within a
// request, and no buffer is held after the transport is gone.
func FuzzHTTPSide(f *testing.F) {
	f.Add(uint64(1), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add(uint64(2), []byte("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"+upgradeRequest("")+"\x81\x85abcd"))
	f.Add(uint64(3), []byte("GET / HTTP/1.0\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, seed uint64, data []byte) {
		r := rand.New(rand.NewPCG(seed, 5))
		var c *tconn
		answered := 0
		cfg := &Config{MaxRequestBody: 64, MaxRequestHeader: 512, Handler: &recorder{echo: true}}
		cfg.HTTP = func(cc *Conn, req *Request) {
			if cl := req.req.ContentLength; cl > 0 && int64(len(req.Body())) != cl {
				t.Fatalf("body of %d bytes for Content-Length %d", len(req.Body()), cl)
			}
			if r.IntN(2) == 0 {
				_ = cc.WriteHTTP([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
				_ = cc.EndHTTP(r.IntN(4) != 0)
				answered++
			}
		}
		c = &tconn{}
		ft := &fakeTransport{conn: c}
		c.Init(cfg, ft, t0)
		for i := 0; i < len(data); {
			k := 1 + r.IntN(len(data)-i)
			c.Feed(data[i:i+k], t0)
			i += k
			if c.State() == StateHTTP && r.IntN(2) == 0 {
				c.do(func(cc *Conn) { // the answer comes later, from a task
					_ = cc.WriteHTTP([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
					_ = cc.EndHTTP(r.IntN(4) != 0)
				})
			}
			if ft.afterClose != 0 {
				t.Fatal("wrote after the close was asked for")
			}
		}
		c.TransportClosed(io.EOF)
		if c.buf != nil || c.flags&fBody != 0 {
			t.Fatal("buffer held after TransportClosed")
		}
		_ = answered
	})
}
