package session

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The conformance suite's compression groups, after Autobahn's:
// 12 (compressed messages of many sizes and fragmentations, five kinds of
// data) and 13 (every combination of permessage-deflate's parameters, on
// JSON). Both roles, every split mode. The peer compresses with
// compress/flate (levels 1, 6 and 9 in turn; each message on its own, as
// the negotiated no context takeover asks), fragments as Autobahn's
// auto-fragmentation does, and puts pings between fragments; the Conn
// echoes. What it writes is decoded twice, by compress/flate and by the
// tests' own decoder (puff), which also checks that no match reaches
// further back than the window the peer allowed.

// msgSizes are Autobahn's (payload length, auto-fragment size) pairs of
// groups 12 and 13.
var msgSizes = []struct{ n, frag int }{
	{16, 0}, {64, 0}, {256, 0}, {1024, 0}, {4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {65536, 0}, {131072, 0},
	{8192, 256}, {16384, 256}, {32768, 256}, {65536, 256}, {131072, 256},
	{131072, 1024}, {131072, 4096}, {131072, 32768},
}

// deflateData are the kinds of payload of group 12 (Autobahn's files are
// replaced by generated data of the same kinds).
var deflateData = []struct {
	name   string
	binary bool
	gen    func(n int) []byte
}{
	{"json", false, jsonData},
	{"html", false, htmlData},
	{"german-text", true, germanText},
	{"bitmap", true, bitmapData},
	{"mixed-binary", true, mixedBinary},
}

func jsonData(n int) []byte {
	var b []byte
	b = append(b, '[')
	for i := 0; len(b) < n; i++ {
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(1000+i*7%997), 10)
		b = append(b, `,"sensor":"room-`...)
		b = strconv.AppendInt(b, int64(i%23), 10)
		b = append(b, `","t":"2026-11-21T09:`...)
		b = strconv.AppendInt(b, int64(10+i%50), 10)
		b = append(b, `:00.000Z","temp":`...)
		b = strconv.AppendFloat(b, 18+float64(i*13%97)/10, 'f', 1, 64)
		b = append(b, `,"ok":true},`...)
	}
	return b[:n]
}

func htmlData(n int) []byte {
	words := []string{"event", "loop", "socket", "frame", "message", "deflate", "window", "server", "client", "browser"}
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, `<div class="row r`...)
		b = strconv.AppendInt(b, int64(i%7), 10)
		b = append(b, `"><a href="/docs/`...)
		b = append(b, words[i%len(words)]...)
		b = append(b, `.html">`...)
		b = append(b, words[(i*3)%len(words)]...)
		b = append(b, ` and `...)
		b = append(b, words[(i*7+1)%len(words)]...)
		b = append(b, "</a></div>\n"...)
	}
	return b[:n]
}

func germanText(n int) []byte {
	words := strings.Fields("Habe nun, ach! Philosophie, Juristerei und Medizin, und leider auch Theologie durchaus studiert, mit heißem Bemühn. " +
		"Da steh ich nun, ich armer Tor! Und bin so klug als wie zuvor; heiße Magister, heiße Doktor gar, und ziehe schon an die zehen Jahr " +
		"herauf, herab und quer und krumm meine Schüler an der Nase herum, und sehe, daß wir nichts wissen können! Öfter grüßt Ärger.")
	rng := rand.New(rand.NewPCG(3, 4))
	var b []byte
	for len(b) < n {
		b = append(b, words[rng.IntN(len(words))]...)
		b = append(b, ' ')
	}
	return b[:n]
}

func bitmapData(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range b {
		x, y := i%512, i/512
		b[i] = byte((x*x+y*3)/97) &^ byte(rng.IntN(4))
	}
	return b
}

func mixedBinary(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	b := make([]byte, 0, n)
	for len(b) < n {
		if rng.IntN(2) == 0 {
			for range 200 {
				b = append(b, byte(rng.Uint32()))
			}
		} else {
			b = append(b, "stream endstream obj /Type /Page /Contents 12 0 R "...)
		}
	}
	return b[:n]
}

// deflateParams is one combination of parameters: what the peer offers
// (server role) and what the server must answer, or what a server answers
// the Conn's offer (client role); the windows are the LZ77 windows in bits
// the Conn must compress within in each role.
type deflateParams struct {
	name     string
	offer    string // the client's Sec-WebSocket-Extensions (server role)
	accept   string // the server's answer to it
	response string // a server's answer to the Conn's own offer (client role)
	window   [2]int // by Role
}

// autobahnDefault is Autobahn's default offer: the client accepts both
// no context takeover and a window limit.
const autobahnDefault = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// group13 holds Autobahn's seven combinations (requestNoContextTakeover and
// requestMaxWindowBits of the client's offers, and how a server asks the
// same of a client) and the common offers of browsers and libraries.
var group13 = []deflateParams{
	{"13.1/default", autobahnDefault,
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover", [2]int{15, 15}},
	{"13.2/no-context-takeover", autobahnDefault + "; server_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover", [2]int{15, 15}},
	{"13.3/window-8", autobahnDefault + "; server_max_window_bits=8",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
		"permessage-deflate; server_no_context_takeover; client_max_window_bits=8", [2]int{8, 8}},
	{"13.4/window-15", autobahnDefault + "; server_max_window_bits=15",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
		"permessage-deflate; server_no_context_takeover; client_max_window_bits=15", [2]int{15, 15}},
	{"13.5/no-context-takeover-window-8", autobahnDefault + "; server_no_context_takeover; server_max_window_bits=8",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8", [2]int{8, 8}},
	{"13.6/no-context-takeover-window-15", autobahnDefault + "; server_no_context_takeover; server_max_window_bits=15",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15", [2]int{15, 15}},
	{"13.7/three-offers",
		autobahnDefault + "; server_no_context_takeover; server_max_window_bits=8, " + autobahnDefault + "; server_no_context_takeover, " + autobahnDefault,
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12", [2]int{8, 12}},
	// Beyond Autobahn: what browsers and libraries offer, and window
	// sizes between the extremes, quoted values, a declined offer first.
	{"13.x/browser", "permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; server_max_window_bits=15", [2]int{15, 15}},
	{"13.x/bare", "permessage-deflate",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate;server_no_context_takeover;client_max_window_bits=11", [2]int{15, 11}},
	{"13.x/window-values", "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
		`permessage-deflate; server_no_context_takeover; client_max_window_bits="9"`, [2]int{12, 9}},
	{"13.x/declined-then-accepted", "permessage-deflate; server_max_window_bits=7, permessage-deflate; x_unknown, permessage-deflate; server_max_window_bits=\"10\"",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
		"permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=10", [2]int{10, 10}},
}

func stdDeflate(p []byte, level int) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, level)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func stdInflate(p []byte) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
	return io.ReadAll(r)
}

// deflatedFrames are the frames of one compressed message as a peer sends
// it: RSV1 on the first only, cut every frag bytes (0: one frame), with a
// ping after the first fragment when ping is set.
func deflatedFrames(op byte, p []byte, level, frag int, ping bool) []tframe {
	z := stdDeflate(p, level)
	if frag == 0 {
		return []tframe{{fin: true, rsv: rsv1, op: op, payload: z}}
	}
	fs := fragment(op, z, frag)
	fs[0].rsv = rsv1
	if ping && len(fs) > 1 {
		fs = append(fs[:1], append([]tframe{{fin: true, op: opPing, payload: []byte("between")}}, fs[1:]...)...)
	}
	return fs
}

// openDeflate opens a Conn of role r with compression through a real
// handshake carrying p's extension headers, and checks the negotiation.
func openDeflate(t testing.TB, cfg *Config, r Role, h Handler, p deflateParams) (*tconn, *fakeTransport) {
	t.Helper()
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	if r == Server {
		cfg.Handler = h
		c.Init(cfg, ft, t0)
		c.Feed([]byte(upgradeRequest("Sec-WebSocket-Extensions: "+p.offer+"\r\n")), t0)
		if !bytes.Contains(ft.out, []byte("\r\nSec-WebSocket-Extensions: "+p.accept+"\r\n")) {
			t.Fatalf("offer %q: response %q, want %q", p.offer, ft.out, p.accept)
		}
	} else {
		c.InitClient(cfg, ft, &ClientRequest{Host: "example.com", Path: "/"}, h, t0)
		if !bytes.Contains(ft.out, []byte("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits\r\n")) {
			t.Fatalf("client request %q lacks the offer", ft.out)
		}
		c.Feed([]byte(switchingResponse(keyOf(t, ft.out), "Sec-WebSocket-Extensions: "+p.response+"\r\n")), t0)
	}
	if c.State() != StateOpen || !c.Compressed() {
		t.Fatalf("state %v, compressed %v after the handshake; wrote %q", c.State(), c.Compressed(), ft.out)
	}
	want := p.window[r]
	if want == 9 {
		want = 8 // a 9-bit window is honoured with 8 (deflateCode)
	}
	if got := int(c.sendWindow()); got != want {
		t.Fatalf("send window %d bits, want %d", got, want)
	}
	ft.out = ft.out[:0]
	ft.writes = 0
	return c, ft
}

type dcase struct {
	name   string
	params deflateParams
	msgs   [][]byte
	binary bool
	frag   int
	ping   bool // a ping between the first two fragments of each message
	// shrinks says the data compresses: every echo at or over the
	// threshold must be compressed.
	shrinks bool
}

func deflateCases() []dcase {
	var cs []dcase
	msgsOf := func(gen func(int) []byte, n int) [][]byte {
		count := 3
		if n > 16384 {
			count = 2
		}
		data := gen(n * (count + 1))
		var ms [][]byte
		for i := range count {
			ms = append(ms, data[i*n/2:i*n/2+n]) // overlapping slides of the data, as Autobahn's
		}
		return ms
	}
	for i, d := range deflateData {
		for j, s := range msgSizes {
			cs = append(cs, dcase{
				name:   fmt.Sprintf("12.%d.%d/%s-%d-frag-%d", i+1, j+1, d.name, s.n, s.frag),
				params: group13[0], msgs: msgsOf(d.gen, s.n), binary: d.binary, frag: s.frag,
				ping: s.frag > 0 && j%2 == 0, shrinks: !d.binary || d.name == "german-text",
			})
		}
	}
	for _, p := range group13 {
		for j, s := range msgSizes {
			cs = append(cs, dcase{
				name:   fmt.Sprintf("%s/%d/json-%d-frag-%d", p.name, j+1, s.n, s.frag),
				params: p, msgs: msgsOf(jsonData, s.n), frag: s.frag, shrinks: true,
			})
		}
	}
	return cs
}

func TestConformanceDeflate(t *testing.T) {
	cases := deflateCases()
	runs := 0
	for _, dc := range cases {
		if n := len(dc.msgs[0]); raceEnabled && n > 16384 && !(n == 131072 && dc.frag == 256) {
			// Under the race detector (15 times slower, and nothing here
			// is concurrent) the large sizes are left to the normal run,
			// but for one of them.
			continue
		}
		// Build the peer's input once per case; roles differ only in masking.
		var frames []tframe
		op := byte(opText)
		if dc.binary {
			op = opBin
		}
		var pongs []bool // a pong answers a ping before message i's echo
		for i, m := range dc.msgs {
			fs := deflatedFrames(op, m, []int{1, 6, 9}[i%3], dc.frag, dc.ping)
			pongs = append(pongs, len(fs) > 1 && fs[1].op == opPing)
			frames = append(frames, fs...)
		}
		frames = append(frames, closeF(1000, ""))
		size := 0
		for _, f := range frames {
			size += len(f.payload)
		}
		big := size > 32<<10
		for _, role := range []Role{Server, Client} {
			modes := splitModes(big, false)
			switch {
			case testing.Short():
				modes = modes[:2]
			case raceEnabled:
				// Nothing here is concurrent: the race detector only
				// multiplies the run time (by 15) for nothing more.
				modes = []string{"rand:1"}
			}
			for _, mode := range modes {
				runs++
				t.Run(dc.name+"/"+role.String()+"/"+mode, func(t *testing.T) {
					runDeflateCase(t, dc, frames, pongs, role, mode)
				})
			}
		}
	}
	t.Logf("%d cases, %d runs (2 roles x split modes)", len(cases), runs)
}

func runDeflateCase(t *testing.T, dc dcase, frames []tframe, pongs []bool, role Role, mode string) {
	st := &Stats{}
	// HighWater: a whole input fed in one call queues every echo at once.
	cfg := &Config{MaxMessage: 1 << 20, HighWater: 16 << 20, Compression: &Compression{}, Stats: st}
	rec := &recorder{echo: true}
	c, ft := openDeflate(t, cfg, role, rec, dc.params)
	rng := rand.New(rand.NewPCG(uint64(len(dc.name)), 42))
	feedSplit(c, encodeFrames(frames, role == Server, rng), mode, nil)

	got, err := decodeFrames(ft.out, role == Client)
	if err != nil {
		t.Fatalf("decoding output: %v", err)
	}
	// Expected: for each message an echo (and a pong before it when a
	// ping came between its fragments), then the close reply.
	i := 0
	deflated := 0
	for k, m := range dc.msgs {
		if pongs[k] {
			if i >= len(got) || got[i].op != opPong || got[i].rsv != 0 || string(got[i].payload) != "between" {
				t.Fatalf("frame %d: %v, want the pong (uncompressed)", i, got[min(i, len(got)-1)])
			}
			i++
		}
		if i >= len(got) {
			t.Fatalf("%d frames, echo of message %d missing", len(got), k)
		}
		f := got[i]
		i++
		wantOp := byte(opText)
		if dc.binary {
			wantOp = opBin
		}
		if !f.fin || f.op != wantOp || f.rsv&^rsv1 != 0 {
			t.Fatalf("echo %d: %v rsv %d (%q)", k, f, f.rsv, f.payload)
		}
		payload := f.payload
		threshold := cfg.Compression.threshold()
		switch {
		case f.rsv == rsv1:
			if len(m) < threshold {
				t.Fatalf("echo %d of %d bytes compressed under the threshold %d", k, len(m), threshold)
			}
			deflated++
			payload, err = stdInflate(f.payload)
			if err != nil {
				t.Fatalf("echo %d: compress/flate: %v", k, err)
			}
			if w := dc.params.window[role]; w < 15 {
				// compress/flate does not check distances: puff does.
				p, dist, err := puffMessage(f.payload)
				if err != nil || !bytes.Equal(p, payload) {
					t.Fatalf("echo %d: puff disagrees with compress/flate: %v", k, err)
				}
				if dist > 1<<w {
					t.Fatalf("echo %d reaches %d bytes back, beyond the %d-bit window", k, dist, w)
				}
			}
		case dc.shrinks && len(m) >= threshold:
			t.Fatalf("echo %d of %d compressible bytes sent uncompressed", k, len(m))
		}
		if !bytes.Equal(payload, m) {
			t.Fatalf("echo %d: %d bytes differ from the %d sent", k, len(payload), len(m))
		}
	}
	if i != len(got)-1 || got[i].op != opClose || got[i].rsv != 0 || binary.BigEndian.Uint16(got[i].payload) != 1000 {
		t.Fatalf("after the echoes: %v, want only the close reply", got[i:])
	}
	if rec.closes != 1 || rec.code != 1000 || rec.err != nil || len(rec.msgs) != len(dc.msgs) {
		t.Fatalf("OnClose %d times (%d, %v), %d messages", rec.closes, rec.code, rec.err, len(rec.msgs))
	}
	if st.Inflated.Load() != uint64(len(dc.msgs)) || st.Deflated.Load() != uint64(deflated) || st.Compressed.Load() != 1 {
		t.Fatalf("stats: inflated %d deflated %d compressed %d; want %d %d 1",
			st.Inflated.Load(), st.Deflated.Load(), st.Compressed.Load(), len(dc.msgs), deflated)
	}
	c.TransportClosed(io.EOF)
	if c.State() != StateClosed || c.buf != nil {
		t.Fatalf("after TransportClosed: state %v, buffer held %v", c.State(), c.buf != nil)
	}
}
