package session

import (
	"bytes"
	"encoding/binary"
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
			switch r.IntN(3) {
			case 0:
				_ = cc.WriteHTTP([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
				_ = cc.EndHTTP(r.IntN(4) != 0)
				answered++
			case 1: // an event stream: what follows in the input must cause no output
				if err := cc.StartStream(Accept{}); err != nil {
					t.Fatalf("StartStream: %v", err)
				}
			}
		}
		c = &tconn{}
		ft := &fakeTransport{conn: c}
		c.Init(cfg, ft, t0)
		for i := 0; i < len(data); {
			k := 1 + r.IntN(len(data)-i)
			stream, wrote := c.State() == StateStream, len(ft.out)
			c.Feed(data[i:i+k], t0)
			i += k
			if stream && len(ft.out) != wrote {
				t.Fatalf("input on a stream wrote %q", ft.out[wrote:])
			}
			if c.State() == StateStream && r.IntN(2) == 0 {
				c.do(func(cc *Conn) { _ = cc.Send(Text, data[:min(len(data), 9)]) })
			}
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

// FuzzInflate feeds arbitrary bytes as the payload of a compressed message
// (RSV1 on its first frame) to a Conn that negotiated permessage-deflate,
// cut into fragments and reads chosen by mode, in both roles. Invariants:
// no panic; a message is delivered exactly when compress/flate inflates the
// payload to at most MaxMessage bytes, and then with the same bytes (valid
// UTF-8 for text); otherwise the connection fails with 1007 or 1009; never
// more than MaxMessage bytes are inflated; no buffer is held afterwards.
//
// mode bits: 0 role (client), 1 text, 2 MaxMessage of 4 KiB (else 64 KiB),
// 3-4 fragment size (none, 1, 7, 100 bytes), 5-6 read size (whole, 1, 3,
// 64 bytes).
func FuzzInflate(f *testing.F) {
	f.Add(byte(0), stdDeflate([]byte("Hello, compressed world"), 6))
	f.Add(byte(2), stdDeflate(jsonData(3000), 1))
	f.Add(byte(4), stdDeflate(make([]byte, 100000), 9)) // a small bomb
	f.Add(byte(9), []byte{0xff, 0xfe, 0xfd})
	f.Add(byte(0x7b), stdDeflate([]byte("ok \xff"), 6))
	f.Fuzz(func(t *testing.T, mode byte, payload []byte) {
		role := Server
		if mode&1 != 0 {
			role = Client
		}
		op := byte(opBin)
		if mode&2 != 0 {
			op = opText
		}
		limit := 64 << 10
		if mode&4 != 0 {
			limit = 4 << 10
		}
		rec := &recorder{}
		c, ft := openDeflate(t, &Config{MaxMessage: limit, Compression: &Compression{}}, role, rec, group13[0])
		fs := []tframe{{fin: true, rsv: rsv1, op: op, payload: payload}}
		if k := []int{0, 1, 7, 100}[mode>>3&3]; k > 0 {
			fs = fragment(op, payload, k)
			fs[0].rsv = rsv1
		}
		in := encodeFrames(fs, role == Server, newRng())
		var before uint64
		if ft.io.fl != nil {
			before = ft.io.fl.inflated
		}
		feedSplit(c, in, []string{"whole", "chunk:1", "chunk:3", "chunk:64"}[mode>>5&3], nil)
		if ft.io.fl != nil && ft.io.fl.inflated-before > uint64(limit)+1 {
			t.Fatalf("%d bytes inflated, limit %d", ft.io.fl.inflated-before, limit)
		}
		want, err := stdInflate(payload)
		ok := err == nil && len(want) <= limit && (op != opText || utf8.Valid(want))
		if len(payload) == 0 {
			want, ok = nil, true // taken for an empty message
		}
		out, derr := decodeFrames(ft.out, role == Client)
		if derr != nil {
			t.Fatal(derr)
		}
		if ok {
			if len(rec.msgs) != 1 || !bytes.Equal(rec.msgs[0].payload, want) || len(out) != 0 {
				t.Fatalf("delivered %d messages, wrote %v; compress/flate inflates %d bytes", len(rec.msgs), out, len(want))
			}
		} else {
			if len(rec.msgs) != 0 || len(out) != 1 || out[0].op != opClose {
				t.Fatalf("delivered %d messages, wrote %v; compress/flate: %v, %d bytes", len(rec.msgs), out, err, len(want))
			}
			if code := binary.BigEndian.Uint16(out[0].payload); code != 1007 && code != 1009 {
				t.Fatalf("closed with %d", code)
			}
		}
		c.TransportClosed(io.EOF)
		if c.buf != nil {
			t.Fatal("buffer held")
		}
	})
}
