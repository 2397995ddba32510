package codec

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}}

// benchText is mostly ASCII with some 2- and 3-byte runes, cut at a rune
// boundary near size.
func benchText(size int) []byte {
	const unit = `{"user":"wörld","msg":"héllo ✓ ok","n":12345}`
	s := strings.Repeat(unit, size/len(unit)+1)
	for len(s) > size || !ValidUTF8([]byte(s)) {
		s = s[:len(s)-1]
	}
	return []byte(s + strings.Repeat(" ", size-len(s)))
}

// clientFrame is one masked text frame as a server receives it.
func clientFrame(size int) []byte {
	return AppendFrame(nil, Client, true, ws.OpText, benchText(size))
}

// BenchmarkReadFrame is what a server does for one text frame that arrived
// whole: parse the header, unmask in place, validate UTF-8. The frame is first
// copied into the read buffer, standing in for the read system call's copy
// (and undoing the previous iteration's in-place unmasking).
func BenchmarkReadFrame(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			frame := clientFrame(bs.size)
			buf := make([]byte, len(frame))
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, frame)
				h, n, err := ParseHeader(buf, Server, 0)
				if err != nil || n == 0 {
					b.Fatal(n, err)
				}
				payload := buf[n : n+int(h.Length)]
				Unmask(payload, h.Mask, 0)
				var v UTF8Validator
				if !v.Write(payload) || !v.Complete() {
					b.Fatal("invalid UTF-8")
				}
			}
		})
	}
}

type readDiscarder struct {
	io.Reader
	io.Writer
}

// BenchmarkGobwasWsutil reads the same frames with gobwas/ws's
// wsutil.ReadClientData, which also unmasks and (by default) checks UTF-8.
func BenchmarkGobwasWsutil(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			frame := clientFrame(bs.size)
			want := benchText(bs.size)
			br := bytes.NewReader(frame)
			rw := readDiscarder{br, io.Discard}
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			for b.Loop() {
				br.Reset(frame)
				p, op, err := wsutil.ReadClientData(rw)
				if err != nil || op != ws.OpText || len(p) != len(want) {
					b.Fatal(len(p), op, err)
				}
			}
		})
	}
}

func BenchmarkParseRequest(b *testing.B) {
	raw := []byte(chromeRequest)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var req Request
	for b.Loop() {
		if _, err := ParseRequest(raw, 0, &req); err != nil {
			b.Fatal(err)
		}
		if err := req.CheckUpgrade(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendUpgradeResponse(b *testing.B) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendUpgradeResponse(dst[:0], key, "", nil)
	}
}

func TestBenchFramesValid(t *testing.T) {
	// The benchmark inputs are what they claim: the right size and valid.
	for _, bs := range benchSizes {
		p := benchText(bs.size)
		if len(p) != bs.size || !ValidUTF8(p) || bytes.Count(p, []byte("✓")) == 0 {
			t.Fatalf("%s: %d bytes", bs.name, len(p))
		}
		f := clientFrame(bs.size)
		data, op, err := wsutil.ReadClientData(readDiscarder{bytes.NewReader(f), io.Discard})
		if err != nil || op != ws.OpText || !bytes.Equal(data, p) {
			t.Fatalf("%s: gobwas read %d bytes, %v", bs.name, len(data), err)
		}
	}
}
