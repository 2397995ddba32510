package session

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// Negotiation, frame rules, limits, sharing and allocation of
// permessage-deflate. The conformance groups 12 and 13 are in
// conformance_deflate_test.go.

// serverHandshake runs a server-role handshake with extra request header
// lines and returns the conn, the response and its transport.
func serverHandshake(t *testing.T, cfg *Config, extra string) (*tconn, *fakeTransport, *recorder, string) {
	t.Helper()
	rec := &recorder{echo: true}
	if cfg.Handler == nil {
		cfg.Handler = rec
	}
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	c.Init(cfg, ft, t0)
	c.Feed([]byte(upgradeRequest(extra)), t0)
	resp := string(ft.out)
	if !strings.HasPrefix(resp, "HTTP/1.1 101 ") {
		t.Fatalf("response %q", resp)
	}
	ft.out = ft.out[:0]
	return c, ft, rec, resp
}

// extensionsOf returns the Sec-WebSocket-Extensions lines of a head.
func extensionsOf(head string) []string {
	var exts []string
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Extensions") {
			exts = append(exts, strings.TrimSpace(v))
		}
	}
	return exts
}

const acceptAll = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// TestDeflateServerNegotiation: RFC 7692 5 and 7.1 from the server's side:
// the first offer it can honour is accepted; offers with unknown or
// repeated parameters or invalid values are declined (not the handshake:
// the next offer is considered, and without one the connection opens
// uncompressed); a declined connection's RSV1 is a protocol error.
func TestDeflateServerNegotiation(t *testing.T) {
	cases := []struct {
		name, header string // header: complete request lines
		want         string // the answer's extension line; "" for none
	}{
		{"no offer", "", ""},
		{"other extension", "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", ""},
		{"plain", "Sec-WebSocket-Extensions: permessage-deflate\r\n", acceptAll},
		{"browser", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", acceptAll},
		{"client window value", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n", acceptAll},
		{"server window", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=11\r\n", acceptAll + "; server_max_window_bits=11"},
		{"after another extension", "Sec-WebSocket-Extensions: x-foo; a=1, permessage-deflate\r\n", acceptAll},
		{"window 7 declined", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n", ""},
		{"window 16 declined", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=16\r\n", ""},
		{"window without value declined", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits\r\n", ""},
		{"leading zero declined", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=09\r\n", ""},
		{"unknown parameter declined", "Sec-WebSocket-Extensions: permessage-deflate; mystery\r\n", ""},
		{"value on a flag declined", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover=yes\r\n", ""},
		{"repeated parameter declined", "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_no_context_takeover\r\n", ""},
		{"empty parameter declined", "Sec-WebSocket-Extensions: permessage-deflate;\r\n", ""},
		{"declined then accepted", "Sec-WebSocket-Extensions: permessage-deflate; bad, permessage-deflate; server_max_window_bits=9\r\n", acceptAll + "; server_max_window_bits=9"},
		{"two headers", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=1\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", acceptAll},
		{"quoted", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"13\"\r\n", acceptAll + "; server_max_window_bits=13"},
		{"name is case-sensitive", "Sec-WebSocket-Extensions: Permessage-Deflate\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ft, rec, resp := serverHandshake(t, &Config{Compression: &Compression{}}, tc.header)
			exts := extensionsOf(resp)
			switch {
			case tc.want == "" && len(exts) != 0:
				t.Fatalf("answered %q, want no extension", exts)
			case tc.want != "" && (len(exts) != 1 || exts[0] != tc.want):
				t.Fatalf("answered %q, want %q", exts, tc.want)
			}
			if c.Compressed() != (tc.want != "") {
				t.Fatalf("Compressed() = %v", c.Compressed())
			}
			// A compressed frame is fine exactly when compression was agreed.
			c.Feed(encodeFrames([]tframe{{fin: true, rsv: rsv1, op: opText, payload: stdDeflate([]byte("hello"), 6)}}, true, newRng()), t0)
			fs, _ := decodeFrames(ft.out, false)
			if tc.want != "" {
				if len(rec.msgs) != 1 || string(rec.msgs[0].payload) != "hello" {
					t.Fatalf("compressed message not delivered: %v", rec.msgs)
				}
			} else if len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != 1002 {
				t.Fatalf("RSV1 without compression: wrote %v, want a 1002 close", fs)
			}
		})
	}

	// Without Compression nothing is accepted; a route's Config decides
	// for its connections.
	_, _, _, resp := serverHandshake(t, &Config{}, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	if exts := extensionsOf(resp); len(exts) != 0 {
		t.Fatalf("accepted %q without Compression", exts)
	}
	route := &Config{Compression: &Compression{}}
	cfg := &Config{Upgrade: func(r *Request) (Accept, error) { return Accept{Config: route}, nil }}
	c, _, _, resp := serverHandshake(t, cfg, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	if exts := extensionsOf(resp); len(exts) != 1 || !c.Compressed() {
		t.Fatalf("route with Compression: answered %q", exts)
	}
	cfg = &Config{Compression: &Compression{}, Upgrade: func(r *Request) (Accept, error) { return Accept{Config: &Config{}}, nil }}
	c, _, _, resp = serverHandshake(t, cfg, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	if exts := extensionsOf(resp); len(exts) != 0 || c.Compressed() {
		t.Fatalf("route without Compression: answered %q", exts)
	}
}

// TestDeflateClientNegotiation: RFC 6455 4.1 and RFC 7692 5 from the
// client's side: a response that accepts an extension the client did not
// offer, or that the client cannot work with, fails the connection.
func TestDeflateClientNegotiation(t *testing.T) {
	cases := []struct {
		name, header string // the response's extension lines
		compress     bool   // the client offers compression
		ok           bool
		window       int
	}{
		{"declined", "", true, true, 15},
		{"accepted", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", true, true, 15},
		{"client window", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n", true, true, 10},
		{"client window 9, honoured with 8", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=9\r\n", true, true, 8},
		{"server window", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=8\r\n", true, true, 15},
		{"context takeover kept by the server", "Sec-WebSocket-Extensions: permessage-deflate\r\n", true, false, 0},
		{"client window without value", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits\r\n", true, false, 0},
		{"unknown parameter", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; x=1\r\n", true, false, 0},
		{"invalid value", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=16\r\n", true, false, 0},
		{"repeated parameter", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n", true, false, 0},
		{"accepted twice", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover\r\n", true, false, 0},
		{"not offered", "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", true, false, 0},
		{"no compression offered", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", false, false, 0},
		{"no compression, nothing accepted", "", false, true, 15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{}
			if tc.compress {
				cfg.Compression = &Compression{}
			}
			rec := &recorder{}
			c := &tconn{}
			ft := &fakeTransport{conn: c}
			c.InitClient(cfg, ft, &ClientRequest{Host: "example.com", Path: "/"}, rec, t0)
			offers := extensionsOf(string(ft.out))
			if tc.compress != (len(offers) == 1) {
				t.Fatalf("offers %q", offers)
			}
			c.Feed([]byte(switchingResponse(keyOf(t, ft.out), tc.header)), t0)
			if !tc.ok {
				var he *HandshakeError
				if c.State() == StateOpen || rec.closes != 1 || !errors.As(rec.err, &he) || ft.closed != 1 {
					t.Fatalf("state %v, OnClose %d (%v), closed %d: want a failed handshake", c.State(), rec.closes, rec.err, ft.closed)
				}
				return
			}
			if c.State() != StateOpen {
				t.Fatalf("state %v (%v)", c.State(), rec.err)
			}
			if c.Compressed() != (tc.header != "") || int(c.sendWindow()) != tc.window {
				t.Fatalf("Compressed %v, window %d", c.Compressed(), c.sendWindow())
			}
		})
	}
}

// TestDeflateFrameRules: RSV1 only on a compressed message's first frame,
// never on control frames; input that does not inflate, or inflates to
// invalid text, fails the connection; uncompressed messages stay allowed.
func TestDeflateFrameRules(t *testing.T) {
	hello := stdDeflate([]byte("hello"), 6)
	var final bytes.Buffer // a sender may end with a final block (BFINAL) instead of a sync flush
	w, _ := flate.NewWriter(&final, 6)
	w.Write([]byte("final block"))
	w.Close()
	cases := []struct {
		name string
		in   []tframe
		want []string // delivered messages
		code uint16   // fail code, 0: none
	}{
		{"uncompressed message", []tframe{txt("plain")}, []string{"plain"}, 0},
		{"compressed empty message", []tframe{{fin: true, rsv: rsv1, op: opBin}}, []string{""}, 0},
		{"compressed empty fragments", []tframe{{rsv: rsv1, op: opBin}, {op: opCont}, {fin: true, op: opCont}}, []string{""}, 0},
		{"final block", []tframe{{fin: true, rsv: rsv1, op: opText, payload: final.Bytes()}}, []string{"final block"}, 0},
		{"mixed", []tframe{{fin: true, rsv: rsv1, op: opText, payload: hello}, txt("raw"), {fin: true, rsv: rsv1, op: opText, payload: hello}},
			[]string{"hello", "raw", "hello"}, 0},
		{"RSV1 on ping", []tframe{{fin: true, rsv: rsv1, op: opPing, payload: []byte("x")}}, nil, 1002},
		{"RSV1 on close", []tframe{{fin: true, rsv: rsv1, op: opClose, payload: []byte{3, 232}}}, nil, 1002},
		{"RSV1 on continuation", []tframe{{rsv: rsv1, op: opText, payload: hello[:2]}, {fin: true, rsv: rsv1, op: opCont, payload: hello[2:]}}, nil, 1002},
		{"RSV1 on continuation of an uncompressed message", []tframe{frag(opText, false, "a"), {fin: true, rsv: rsv1, op: opCont, payload: []byte("b")}}, nil, 1002},
		{"RSV2", []tframe{{fin: true, rsv: 2, op: opText, payload: hello}}, nil, 1002},
		{"RSV1 and RSV3", []tframe{{fin: true, rsv: 5, op: opText, payload: hello}}, nil, 1002},
		{"not deflate", []tframe{{fin: true, rsv: rsv1, op: opBin, payload: []byte{0xff, 0xfe, 0xfd, 0x00}}}, nil, 1007},
		{"not deflate, fragmented", []tframe{{rsv: rsv1, op: opBin, payload: []byte{0x07}}, {fin: true, op: opCont, payload: []byte{0xff, 0xfe}}}, nil, 1007},
		{"inflates to invalid UTF-8", []tframe{{fin: true, rsv: rsv1, op: opText, payload: stdDeflate([]byte("ok \xff\xfe"), 6)}}, nil, 1007},
		{"ping between compressed fragments", []tframe{{rsv: rsv1, op: opText, payload: hello[:3]}, ping("p"), {fin: true, op: opCont, payload: hello[3:]}}, []string{"hello"}, 0},
	}
	for _, tc := range cases {
		for _, role := range []Role{Server, Client} {
			for _, mode := range []string{"whole", "bytes"} {
				t.Run(tc.name+"/"+role.String()+"/"+mode, func(t *testing.T) {
					rec := &recorder{}
					c, ft := openDeflate(t, &Config{Compression: &Compression{}}, role, rec, group13[0])
					feedSplit(c, encodeFrames(tc.in, role == Server, newRng()), mode, nil)
					if len(rec.msgs) != len(tc.want) {
						t.Fatalf("delivered %d messages, want %d", len(rec.msgs), len(tc.want))
					}
					for i, w := range tc.want {
						if string(rec.msgs[i].payload) != w {
							t.Fatalf("message %d: %q, want %q", i, rec.msgs[i].payload, w)
						}
					}
					fs, err := decodeFrames(ft.out, role == Client)
					if err != nil {
						t.Fatal(err)
					}
					var closes []tframe
					for _, f := range fs {
						if f.op == opClose {
							closes = append(closes, f)
						}
					}
					if tc.code == 0 {
						if len(closes) != 0 || c.State() != StateOpen {
							t.Fatalf("state %v, wrote %v", c.State(), fs)
						}
						return
					}
					if len(closes) != 1 || binary.BigEndian.Uint16(closes[0].payload) != tc.code || ft.closed != 1 {
						t.Fatalf("wrote %v, closed %d; want a %d close", fs, ft.closed, tc.code)
					}
					if c.buf != nil {
						t.Fatal("buffer held after the failure")
					}
				})
			}
		}
	}
}

// TestDeflateBomb: the size limit applies to the inflated size and is
// enforced while inflating: 10 MB of zeros compress to about 10 KB, and are
// refused with 1009 after at most MaxMessage bytes were inflated. A message
// that inflates to exactly MaxMessage passes, one byte more does not.
func TestDeflateBomb(t *testing.T) {
	const limit = 1 << 20
	bomb := stdDeflate(make([]byte, 10<<20), 9)
	if len(bomb) > 20<<10 {
		t.Fatalf("bomb compresses to %d bytes", len(bomb))
	}
	exact := stdDeflate(pattern(limit), 6)
	over := stdDeflate(pattern(limit+1), 6)
	for _, role := range []Role{Server, Client} {
		for _, frag := range []int{0, 1000} {
			for _, tc := range []struct {
				name string
				z    []byte
				ok   bool
			}{{"bomb", bomb, false}, {"exact", exact, true}, {"one over", over, false}} {
				name := tc.name + "/" + role.String() + "/frag-" + string(rune('0'+frag/1000))
				t.Run(name, func(t *testing.T) {
					rec := &recorder{}
					c, ft := openDeflate(t, &Config{MaxMessage: limit, Compression: &Compression{}}, role, rec, group13[0])
					fs := []tframe{{fin: true, rsv: rsv1, op: opBin, payload: tc.z}}
					if frag > 0 {
						fs = fragment(opBin, tc.z, frag)
						fs[0].rsv = rsv1
					}
					in := encodeFrames(fs, role == Server, newRng())
					fl := &ft.io
					before := uint64(0)
					if fl.fl != nil {
						before = fl.fl.inflated
					}
					feedSplit(c, in, "chunk:4096", nil)
					inflated := fl.fl.inflated - before
					if inflated > limit+1 {
						t.Fatalf("%d bytes inflated, limit %d", inflated, limit)
					}
					out, _ := decodeFrames(ft.out, role == Client)
					if tc.ok {
						if len(rec.msgs) != 1 || len(rec.msgs[0].payload) != limit || len(out) != 0 {
							t.Fatalf("delivered %d, wrote %v", len(rec.msgs), out)
						}
						return
					}
					if len(rec.msgs) != 0 || len(out) != 1 || out[0].op != opClose || binary.BigEndian.Uint16(out[0].payload) != 1009 {
						t.Fatalf("delivered %d, wrote %v; want a 1009 close", len(rec.msgs), out)
					}
					var pe *ProtocolError
					if !errors.As(rec.err, &pe) || pe.Code != StatusTooBig {
						t.Fatalf("OnClose err %v", rec.err)
					}
				})
			}
		}
	}
}

// TestDeflateInterleavedOnOneLoop: connections of one loop share its
// compressor and decompressor. Their fragmented compressed messages
// interleave (A's first fragment, then all of B's message, then A's
// second; each frame split across reads): each message is kept compressed
// in its own connection's buffer until its last frame and inflated then,
// so none disturbs another.
func TestDeflateInterleavedOnOneLoop(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		shared := &flateState{} // the loop's state, in every call's IO
		type peer struct {
			c   *tconn
			ft  *fakeTransport
			rec *recorder
			msg []byte
			in  [][]byte // the message's frames, encoded
		}
		var ps []*peer
		for i := range 3 {
			rec := &recorder{echo: true}
			cfg := &Config{Compression: &Compression{}}
			c := &tconn{}
			ft := &fakeTransport{conn: c}
			ft.io.fl = shared
			p := &peer{c: c, ft: ft, rec: rec, msg: jsonData(3000 + 1000*i)}
			if role == Server {
				cfg.Handler = rec
				c.Init(cfg, ft, t0)
				c.Feed([]byte(upgradeRequest("Sec-WebSocket-Extensions: permessage-deflate\r\n")), t0)
			} else {
				c.InitClient(cfg, ft, &ClientRequest{Host: "example.com", Path: "/"}, rec, t0)
				c.Feed([]byte(switchingResponse(keyOf(t, ft.out), "Sec-WebSocket-Extensions: "+acceptAll+"\r\n")), t0)
			}
			if !c.Compressed() {
				t.Fatal("not negotiated")
			}
			ft.out = ft.out[:0]
			z := stdDeflate(p.msg, 6)
			fs := fragment(opText, z, len(z)/3+1)
			fs[0].rsv = rsv1
			for _, f := range fs {
				p.in = append(p.in, encodeFrames([]tframe{f}, role == Server, newRng()))
			}
			ps = append(ps, p)
		}
		// Round-robin by frame, each frame in two reads.
		for k := 0; ; k++ {
			fed := false
			for _, p := range ps {
				if k < len(p.in) {
					f := p.in[k]
					p.c.Feed(f[:len(f)/2], t0)
					p.c.Feed(f[len(f)/2:], t0)
					fed = true
				}
			}
			if !fed {
				break
			}
		}
		for i, p := range ps {
			if len(p.rec.msgs) != 1 || !bytes.Equal(p.rec.msgs[0].payload, p.msg) {
				t.Fatalf("%v: connection %d got %d messages", role, i, len(p.rec.msgs))
			}
			out, err := decodeFrames(p.ft.out, role == Client)
			if err != nil || len(out) != 1 || out[0].rsv != rsv1 {
				t.Fatalf("%v: connection %d wrote %v %v", role, i, out, err)
			}
			if echo, err := stdInflate(out[0].payload); err != nil || !bytes.Equal(echo, p.msg) {
				t.Fatalf("%v: connection %d: echo differs (%v)", role, i, err)
			}
			if p.c.buf != nil {
				t.Fatalf("%v: connection %d holds a buffer", role, i)
			}
		}
	}
}

// TestDeflateThreshold: messages under Compression.Threshold go out
// uncompressed, and so does one that does not shrink; a negative threshold
// compresses everything that shrinks.
func TestDeflateThreshold(t *testing.T) {
	incompressible := make([]byte, 4096)
	rng := newRng()
	for i := range incompressible {
		incompressible[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		threshold int
		msg       []byte
		want      bool // sent compressed
	}{
		{0, jsonData(DefaultCompressThreshold - 1), false},
		{0, jsonData(DefaultCompressThreshold), true},
		{1000, jsonData(999), false},
		{1000, jsonData(1000), true},
		{-1, []byte(strings.Repeat("ab", 50)), true}, // under the default threshold
		{-1, []byte("x"), false},                     // does not shrink
		{0, incompressible, false},
	} {
		for _, role := range []Role{Server, Client} {
			st := &Stats{}
			c, ft := openDeflate(t, &Config{Compression: &Compression{Threshold: tc.threshold}, Stats: st}, role, &recorder{}, group13[0])
			if err := c.Send(Binary, tc.msg); err != nil {
				t.Fatal(err)
			}
			out, err := decodeFrames(ft.out, role == Client)
			if err != nil || len(out) != 1 {
				t.Fatal(out, err)
			}
			got := out[0].payload
			if out[0].rsv == rsv1 {
				if got, err = stdInflate(got); err != nil {
					t.Fatal(err)
				}
			}
			if (out[0].rsv == rsv1) != tc.want || !bytes.Equal(got, tc.msg) || st.Deflated.Load() != map[bool]uint64{true: 1}[tc.want] {
				t.Fatalf("threshold %d, %d bytes, %v: rsv %d, deflated %d", tc.threshold, len(tc.msg), role, out[0].rsv, st.Deflated.Load())
			}
		}
	}
}

// TestDeflatePrepared: a broadcast compresses once. Connections that
// negotiated compression write the same compressed frame, made by the
// first of them; others write the plain frame; one whose peer asked for a
// small window gets its own.
func TestDeflatePrepared(t *testing.T) {
	msg := jsonData(4000)
	m := NewPrepared(Text, msg)
	shared := &flateState{}
	var outs [][]byte
	open := func(offer string) *tconn {
		cfg := &Config{Compression: &Compression{}}
		c, ft, _, _ := serverHandshake(t, cfg, offer)
		ft.io.fl = shared
		if err := c.SendPrepared(m); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, append([]byte(nil), ft.out...))
		return c
	}
	open("Sec-WebSocket-Extensions: permessage-deflate\r\n")
	first := m.deflated.Load()
	open("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
	open("")
	open("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n")
	if m.deflated.Load() != first || len(*first) == 0 {
		t.Fatal("the compressed frame was made again, or not at all")
	}
	if !bytes.Equal(outs[0], *first) || !bytes.Equal(outs[1], *first) {
		t.Fatal("connections did not write the shared compressed frame")
	}
	if unsafe.SliceData(*first) == unsafe.SliceData(outs[0]) {
		t.Fatal("test copies the output")
	}
	if !bytes.Equal(outs[2], m.Frame()) {
		t.Fatal("a connection without compression did not get the plain frame")
	}
	for i, o := range outs {
		fs, err := decodeFrames(o, false)
		if err != nil || len(fs) != 1 {
			t.Fatal(err)
		}
		p := fs[0].payload
		if fs[0].rsv == rsv1 {
			var dist int
			p, dist, err = puffMessage(p)
			if err != nil || (i == 3 && dist > 1<<9) {
				t.Fatalf("connection %d: %v, distance %d", i, err, dist)
			}
		}
		if !bytes.Equal(p, msg) || (fs[0].rsv == rsv1) != (i != 2) {
			t.Fatalf("connection %d: rsv %d, payload differs %v", i, fs[0].rsv, !bytes.Equal(p, msg))
		}
	}
	// Under the threshold: the plain frame.
	small := NewPrepared(Text, []byte("tiny"))
	c, ft, _, _ := serverHandshake(t, &Config{Compression: &Compression{}}, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	_ = c.SendPrepared(small)
	if !bytes.Equal(ft.out, small.Frame()) || small.deflated.Load() != nil {
		t.Fatal("a small prepared message was compressed")
	}
}

// TestDeflateAllocs: once the loop's compressor and decompressor exist,
// echoing a compressed message allocates nothing, in both roles, whole or
// split across reads (inflating, compressing the echo, framing).
func TestDeflateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, role := range []Role{Server, Client} {
		for _, n := range []int{200, 4096, 60000} {
			for _, split := range []bool{false, true} {
				c, ft := openDeflate(t, &Config{Compression: &Compression{}}, role, echoHandler{}, group13[0])
				msg := jsonData(n)
				frame := encodeFrames([]tframe{{fin: true, rsv: rsv1, op: opText, payload: stdDeflate(msg, 6)}}, role == Server, newRng())
				in := make([]byte, len(frame))
				ft.out = make([]byte, 0, 2*len(frame)+64)
				allocs := testing.AllocsPerRun(200, func() {
					copy(in, frame)
					ft.out = ft.out[:0]
					if split {
						c.Feed(in[:len(in)/2], t0)
						c.Feed(in[len(in)/2:], t0)
					} else {
						c.Feed(in, t0)
					}
				})
				out, err := decodeFrames(ft.out, role == Client)
				if err != nil || len(out) != 1 || out[0].rsv != rsv1 {
					t.Fatalf("echo: %v %v", out, err)
				}
				if echo, _ := stdInflate(out[0].payload); !bytes.Equal(echo, msg) {
					t.Fatal("echo differs")
				}
				if allocs != 0 {
					t.Errorf("%v, %d bytes, split %v: %v allocs per compressed echo, want 0", role, n, split, allocs)
				}
			}
		}
	}
}

// TestDeflateWindowCode: the three bits a Conn keeps for compression
// record every window a peer may ask for, exactly but for 9 bits (honoured
// with 8: a smaller window is always allowed), and leave the other flags
// alone.
func TestDeflateWindowCode(t *testing.T) {
	for bits := uint8(8); bits <= 15; bits++ {
		c := &Conn{flags: fClient | fBody}
		c.setSendWindow(bits)
		want := bits
		if bits == 9 {
			want = 8
		}
		if !c.Compressed() || c.sendWindow() != want || c.flags&^fDeflate != fClient|fBody {
			t.Fatalf("%d bits: compressed %v, window %d, flags %#x", bits, c.Compressed(), c.sendWindow(), c.flags)
		}
	}
	if c := (&Conn{}); c.Compressed() || c.sendWindow() != 15 {
		t.Fatal("a new Conn compresses")
	}
}
