package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

func maskedHeader(b0 byte, lenBytes []byte) []byte {
	p := []byte{b0}
	p = append(p, lenBytes...)
	p[1] |= 0x80
	return append(p, 1, 2, 3, 4)
}

func TestParseHeaderLengths(t *testing.T) {
	cases := []struct {
		length int64
		wire   []byte // length bytes: byte 1's 7 bits and the extended length
	}{
		{0, []byte{0}},
		{1, []byte{1}},
		{125, []byte{125}},
		{126, []byte{126, 0, 126}},
		{127, []byte{126, 0, 127}},
		{65535, []byte{126, 0xff, 0xff}},
		{65536, []byte{127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{1 << 32, []byte{127, 0, 0, 0, 1, 0, 0, 0, 0}},
		{1<<63 - 1, []byte{127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, c := range cases {
		for _, role := range []Role{Server, Client} {
			var p []byte
			if role == Server {
				p = maskedHeader(0x82, c.wire)
			} else {
				p = append([]byte{0x82}, c.wire...)
			}
			h, n, err := ParseHeader(p, role, 0)
			if err != nil || n != len(p) {
				t.Fatalf("len %d %v: n=%d err=%v", c.length, role, n, err)
			}
			if h.Length != c.length || !h.Fin || h.OpCode != ws.OpBinary || h.Masked != (role == Server) {
				t.Fatalf("len %d %v: %+v", c.length, role, h)
			}
			if role == Server && h.Mask != [4]byte{1, 2, 3, 4} {
				t.Fatalf("mask %v", h.Mask)
			}
			// Every strict prefix is incomplete, never an error.
			for i := 0; i < len(p); i++ {
				if _, n, err := ParseHeader(p[:i], role, 0); n != 0 || err != nil {
					t.Fatalf("len %d %v prefix %d: n=%d err=%v", c.length, role, i, n, err)
				}
			}
			// Trailing payload bytes are not part of the header.
			if _, n, _ := ParseHeader(append(p, 0xff, 0xff), role, 0); n != len(p) {
				t.Fatalf("with payload: n=%d", n)
			}
			// The encoder produces the same bytes.
			if got := AppendHeader(nil, h); !bytes.Equal(got, p) {
				t.Fatalf("AppendHeader = %x, want %x", got, p)
			}
			if HeaderSize(h) != len(p) {
				t.Fatalf("HeaderSize = %d, want %d", HeaderSize(h), len(p))
			}
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	type tc struct {
		name string
		p    []byte
		role Role
		rsv  byte
		want error
	}
	var cases []tc
	for op := byte(3); op <= 7; op++ {
		cases = append(cases, tc{"opcode", []byte{0x80 | op, 0x80, 0, 0, 0, 0}, Server, 0, ErrReservedOpcode})
	}
	for op := byte(11); op <= 15; op++ {
		cases = append(cases, tc{"opcode", []byte{0x80 | op, 0x80, 0, 0, 0, 0}, Server, 0, ErrReservedOpcode})
	}
	for _, bit := range []byte{0x40, 0x20, 0x10} {
		cases = append(cases, tc{"rsv", []byte{0x81 | bit, 0x80, 0, 0, 0, 0}, Server, 0, ErrReservedBits})
	}
	for _, op := range []byte{0x8, 0x9, 0xa} {
		cases = append(cases,
			tc{"fragmented control", []byte{op, 0x80, 0, 0, 0, 0}, Server, 0, ErrFragmentedControl},
			tc{"control 126", []byte{0x80 | op, 0x80 | 126, 0, 126}, Server, 0, ErrControlTooLong},
			tc{"control 127", []byte{0x80 | op, 0x80 | 127}, Server, 0, ErrControlTooLong},
			tc{"control rsv1 with deflate", []byte{0xc0 | op, 0x80, 0, 0, 0, 0}, Server, 0x4, ErrReservedBits},
		)
	}
	cases = append(cases,
		tc{"rsv2 with deflate", []byte{0xa1, 0x80, 0, 0, 0, 0}, Server, 0x4, ErrReservedBits},
		tc{"64-bit top bit", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, Server, 0, ErrLengthOverflow},
		tc{"64-bit all ones", []byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Client, 0, ErrLengthOverflow},
		tc{"16-bit for 125", []byte{0x82, 0xfe, 0, 125, 1, 2, 3, 4}, Server, 0, ErrNonMinimalLength},
		tc{"16-bit for 0", []byte{0x82, 0x7e, 0, 0}, Client, 0, ErrNonMinimalLength},
		tc{"64-bit for 65535", []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, Server, 0, ErrNonMinimalLength},
		tc{"64-bit for 0", []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0}, Client, 0, ErrNonMinimalLength},
		tc{"unmasked to server", []byte{0x81, 0x05}, Server, 0, ErrUnmasked},
		tc{"masked to client", []byte{0x81, 0x85, 1, 2, 3, 4}, Client, 0, ErrMasked},
		tc{"unmasked close to server", []byte{0x88, 0x00}, Server, 0, ErrUnmasked},
	)
	for _, c := range cases {
		_, n, err := ParseHeader(c.p, c.role, c.rsv)
		if n != 0 || err != c.want {
			t.Errorf("%s %x: n=%d err=%v, want %v", c.name, c.p, n, err, c.want)
		}
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != ws.StatusProtocolError {
			t.Errorf("%s: error %v is not a 1002 ProtocolError", c.name, err)
		}
	}
	// An allowed reserved bit passes and is reported.
	h, n, err := ParseHeader([]byte{0xc1, 0x80, 0, 0, 0, 0}, Server, 0x4)
	if err != nil || n != 6 || h.Rsv != 0x4 {
		t.Fatalf("rsv1 with deflate: %+v n=%d err=%v", h, n, err)
	}
	// Control frames at the limit and continuation frames pass.
	for _, p := range [][]byte{{0x89, 0x80 | 125, 0, 0, 0, 0}, {0x00, 0x80, 0, 0, 0, 0}, {0x80, 0x80, 0, 0, 0, 0}} {
		if _, n, err := ParseHeader(p, Server, 0); err != nil || n != 6 {
			t.Fatalf("%x: n=%d err=%v", p, n, err)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int64{0, 1, 125, 126, 65535, 65536, 1 << 40}
	for i := 0; i < 2000; i++ {
		h := ws.Header{
			Fin:    r.IntN(2) == 0,
			Rsv:    byte(r.IntN(8)),
			OpCode: ws.OpCode([]byte{0, 1, 2}[r.IntN(3)]),
			Length: lengths[r.IntN(len(lengths))] + int64(r.IntN(3)),
			Masked: r.IntN(2) == 0,
		}
		if h.Masked {
			binary.LittleEndian.PutUint32(h.Mask[:], r.Uint32())
		}
		role := Client
		if h.Masked {
			role = Server
		}
		p := AppendHeader(nil, h)
		got, n, err := ParseHeader(p, role, 0x7)
		if err != nil || n != len(p) || got != h || HeaderSize(h) != n {
			t.Fatalf("%+v: got %+v n=%d err=%v", h, got, n, err)
		}
	}
}

func TestAppendFrame(t *testing.T) {
	payload := []byte("Hello, WebSocket! 0123456789")
	orig := append([]byte(nil), payload...)

	srv := AppendFrame([]byte("pre"), Server, true, ws.OpText, payload)
	if string(srv[:3]) != "pre" || !bytes.Equal(srv[3:], append([]byte{0x81, byte(len(payload))}, payload...)) {
		t.Fatalf("server frame %x", srv)
	}

	masks := map[[4]byte]bool{}
	for i := 0; i < 16; i++ {
		f := AppendFrame(nil, Client, false, ws.OpBinary, payload)
		if !bytes.Equal(payload, orig) {
			t.Fatal("payload modified")
		}
		h, n, err := ParseHeader(f, Server, 0)
		if err != nil || n != 6 || h.Fin || h.OpCode != ws.OpBinary || h.Length != int64(len(payload)) {
			t.Fatalf("client frame header %+v n=%d err=%v", h, n, err)
		}
		body := f[n:]
		if bytes.Equal(body, payload) && h.Mask != [4]byte{} {
			t.Fatal("payload not masked")
		}
		Unmask(body, h.Mask, 0)
		if !bytes.Equal(body, payload) {
			t.Fatalf("unmasked %q", body)
		}
		masks[h.Mask] = true
	}
	if len(masks) < 15 {
		t.Fatalf("only %d distinct masks in 16 frames", len(masks))
	}
	// Large payloads use the extended lengths.
	big := make([]byte, 70000)
	f := AppendFrame(nil, Server, true, ws.OpBinary, big)
	if h, n, err := ParseHeader(f, Client, 0); err != nil || n != 10 || h.Length != 70000 || len(f) != 70010 {
		t.Fatalf("big: %+v n=%d err=%v", h, n, err)
	}
}

func TestUnmaskResume(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		size := r.IntN(300)
		orig := make([]byte, size)
		for i := range orig {
			orig[i] = byte(r.Uint32())
		}
		mask := NewMask()
		want := append([]byte(nil), orig...)
		Unmask(want, mask, 0)
		for i := range want {
			if want[i] != orig[i]^mask[i%4] {
				t.Fatal("one-shot unmask wrong")
			}
		}
		// Same bytes unmasked in random pieces with odd offsets.
		got := append([]byte(nil), orig...)
		for off := 0; off < size; {
			step := 1 + r.IntN(13)
			if off+step > size {
				step = size - off
			}
			Unmask(got[off:off+step], mask, off)
			off += step
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: piecewise unmask differs", trial)
		}
	}
}

func TestRoleString(t *testing.T) {
	if Server.String() != "server" || Client.String() != "client" {
		t.Fatal(Server.String(), Client.String())
	}
}
