package session

import (
	stdflate "compress/flate"
	"fmt"
	"io"
	"runtime"
	"testing"

	kflate "github.com/klauspost/compress/flate"
)

// The measurements behind the choice of library (deflate.go) and the cost
// of compression per message:
//
//	go test -run XXX -bench 'FlateLibraries|DeflateEcho' -benchmem ./session
//	go test -run TestFlateStateMemory -v ./session

// flateWriter is what both libraries' writers offer.
type flateWriter interface {
	io.Writer
	Flush() error
	Reset(io.Writer)
}

// BenchmarkFlateLibraries compresses (reset per message, as without
// context takeover) and inflates JSON of three sizes with
// klauspost/compress/flate and compress/flate at level 1.
func BenchmarkFlateLibraries(b *testing.B) {
	libs := []struct {
		name  string
		write func(io.Writer) flateWriter
		read  func(io.Reader) io.ReadCloser
		reset func(io.ReadCloser, io.Reader)
	}{
		{"klauspost",
			func(w io.Writer) flateWriter { z, _ := kflate.NewWriter(w, 1); return z },
			kflate.NewReader,
			func(r io.ReadCloser, src io.Reader) { r.(kflate.Resetter).Reset(src, nil) }},
		{"stdlib",
			func(w io.Writer) flateWriter { z, _ := stdflate.NewWriter(w, 1); return z },
			stdflate.NewReader,
			func(r io.ReadCloser, src io.Reader) { r.(stdflate.Resetter).Reset(src, nil) }},
	}
	for _, n := range []int{128, 1024, 16384} {
		p := jsonData(n)
		z := stdDeflate(p, 1)
		for _, lib := range libs {
			b.Run(fmt.Sprintf("compress/%s/%d", lib.name, n), func(b *testing.B) {
				var dst sliceWriter
				w := lib.write(&dst)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					dst.b = dst.b[:0]
					w.Reset(&dst)
					w.Write(p)
					w.Flush()
				}
				b.ReportMetric(float64(len(dst.b)-4)/float64(n), "ratio")
			})
			b.Run(fmt.Sprintf("inflate/%s/%d", lib.name, n), func(b *testing.B) {
				src := &inflateSource{p: z}
				r := lib.read(src)
				out := make([]byte, n+1)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					*src = inflateSource{p: z}
					lib.reset(r, src)
					k, err := io.ReadFull(r, out)
					if k != n || err != io.ErrUnexpectedEOF {
						b.Fatal(k, err)
					}
				}
			})
		}
	}
}

// BenchmarkDeflateEcho is the CPU per message of a server-role echo of
// JSON, compressed both ways against uncompressed: Feed of the peer's
// frame, OnMessage, Send.
func BenchmarkDeflateEcho(b *testing.B) {
	for _, n := range []int{128, 1024, 16384} {
		for _, compressed := range []bool{false, true} {
			b.Run(fmt.Sprintf("%d/compressed=%v", n, compressed), func(b *testing.B) {
				msg := jsonData(n)
				f := tframe{fin: true, op: opText, payload: msg}
				var c *tconn
				var ft *fakeTransport
				if compressed {
					c, ft = openDeflate(b, &Config{Compression: &Compression{}}, Server, echoHandler{}, group13[0])
					f = tframe{fin: true, rsv: rsv1, op: opText, payload: stdDeflate(msg, 1)}
				} else {
					c, ft = openConn(b, &Config{}, Server, echoHandler{})
				}
				frame := encodeFrames([]tframe{f}, true, newRng())
				in := make([]byte, len(frame))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(in, frame)
					ft.out = ft.out[:0]
					c.Feed(in, t0)
				}
				b.ReportMetric(float64(len(frame)), "in-bytes")
				b.ReportMetric(float64(len(ft.out)), "out-bytes")
			})
		}
	}
}

// TestFlateStateMemory states what a loop keeps once it compresses: one
// compressor and one decompressor (the heap they hold after a message
// each way). Connections keep nothing (TestConnSize).
func TestFlateStateMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes the heap")
	}
	msg := jsonData(4096)
	z := stdDeflate(msg, 6)
	var keep *flateState
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	keep = &flateState{}
	out, _ := keep.appendDeflated(make([]byte, 0, 8192), msg, 15)
	bp, err := keep.inflate(z, 1<<20)
	if err != nil || len(out) == 0 {
		t.Fatal(err)
	}
	putBuf(bp)
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("a loop's compression state: %d bytes (compressor and decompressor)", n)
	if n > 2<<20 {
		t.Fatalf("%d bytes per loop", n)
	}
	runtime.KeepAlive(keep)
}
