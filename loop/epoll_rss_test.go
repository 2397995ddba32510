//go:build linux

package loop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/session"
)

// TestRSSPerIdleConnection measures what an idle WebSocket connection costs
// the epoll server, as the OS sees it: the growth of the server process's
// VmRSS from before the first connection to after every connection has
// echoed one 64-byte message and RSS has settled, with no forced GC in the
// server. The server and the clients (a Dialer) run in separate processes
// (one process holds at most ~20,000 descriptors). It is a measurement, not
// a unit test, so it runs only when asked:
//
//	WSLOOP_RSS_TEST=1 go test ./loop -run TestRSSPerIdleConnection -v -timeout 10m
//
// WSLOOP_RSS_CONNS sets the number of connections (default 19000).
// WSLOOP_RSS_TLS=1 measures wss instead: the server speaks TLS (the core's
// layer) and the clients dial with TLS; WSLOOP_RSS_SIZE sets the size of
// the one message each connection echoes (default 64; 16384 shows what a
// connection keeps after a full TLS record); WSLOOP_RSS_ENGINE measures
// another engine (default epoll). For example, the wss figure:
//
//	WSLOOP_RSS_TEST=1 WSLOOP_RSS_TLS=1 go test ./loop -run TestRSSPerIdleConnection -v -timeout 10m
//
// WSLOOP_RSS_MODE chooses what a connection is: "ws" (the default: a
// WebSocket that echoes once), "ws-room" (the same, and a member of one
// loop.Room) or "sse" (an event stream, session.Conn.StartStream, member of
// one loop.Room, that got one event): "sse" against "ws-room" is what an
// idle subscriber costs as an event stream rather than a WebSocket, the
// room's cost the same in both.
//
// WSLOOP_RSS_COMPRESS=negotiated makes server and clients negotiate
// permessage-deflate: the 64-byte echo is under the compression threshold,
// so this is what compression costs an idle connection (nothing is to be
// expected: a connection records only a bit). WSLOOP_RSS_COMPRESS=every
// compresses every echo both ways (threshold -1): the loops' compressors
// and decompressors (about 0.85 MB per loop, once) are then in the figure
// too; the marginal cost below leaves them out.
//
// The server's RSS is also read when a quarter of the connections are open
// (WSLOOP_RSS_MID sets another count, 0 none): the growth from there to the
// end, per connection added, is the marginal cost of a connection, without
// the one-time costs that the first connections pay (code paged in, the
// loops' read buffers touched, runtime metadata). It is reported beside the
// figure that counts, never instead of it.
// WSLOOP_RSS_HOLD=150s makes the server sit idle that long before it
// measures (the runtime's periodic GC, every two minutes, and its scavenger
// run meanwhile; nothing is forced): what a long-idle server keeps.
// WSLOOP_RSS_MEMPROFILE=file makes the server record every allocation
// (runtime.MemProfileRate = 1) and write a heap profile there when it
// measures: for finding what a connection allocates (`go tool pprof
// -sample_index=alloc_space`). Profiling costs memory of its own, so the
// RSS figures of such a run are not the product's. WSLOOP_RSS_SMAPS=dir
// makes the server keep copies of /proc/self/smaps from before and after,
// to see which mappings grew.
func TestRSSPerIdleConnection(t *testing.T) {
	switch os.Getenv("WSLOOP_RSS_ROLE") {
	case "server":
		rssServer(t)
		return
	case "client":
		rssClient()
		return
	}
	if os.Getenv("WSLOOP_RSS_TEST") == "" {
		t.Skip("a measurement: set WSLOOP_RSS_TEST=1 to run it")
	}
	n := 19000
	if v := os.Getenv("WSLOOP_RSS_CONNS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	mid := n / 4
	if v := os.Getenv("WSLOOP_RSS_MID"); v != "" {
		mid, _ = strconv.Atoi(v)
	}
	if mid <= 0 || mid >= n {
		mid = n
	}
	self, _ := os.Executable()
	srv := exec.Command(self, "-test.run=^TestRSSPerIdleConnection$")
	srv.Env = append(os.Environ(), "WSLOOP_RSS_ROLE=server")
	srvIn, _ := srv.StdinPipe()
	srvOut, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	sr := bufio.NewScanner(srvOut)
	field := func(prefix string) string {
		for sr.Scan() {
			if s, ok := strings.CutPrefix(sr.Text(), prefix); ok {
				return s
			}
		}
		t.Fatalf("server ended before printing %q", prefix)
		return ""
	}
	addr := field("ADDR ")
	before, _ := strconv.ParseInt(field("RSS_BEFORE "), 10, 64)

	cl := exec.Command(self, "-test.run=^TestRSSPerIdleConnection$")
	cl.Env = append(os.Environ(), "WSLOOP_RSS_ROLE=client", "WSLOOP_RSS_ADDR="+addr, "WSLOOP_RSS_N="+strconv.Itoa(n), "WSLOOP_RSS_MID_N="+strconv.Itoa(mid))
	mode := rssMode()
	clIn, _ := cl.StdinPipe()
	clOut, _ := cl.StdoutPipe()
	cl.Stderr = os.Stderr
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Process.Kill()
	cs := bufio.NewScanner(clOut)
	waitEchoed := func(want int) {
		echoed := ""
		for cs.Scan() {
			if s, ok := strings.CutPrefix(cs.Text(), "ECHOED "); ok {
				echoed = s
				break
			}
		}
		if echoed != strconv.Itoa(want) {
			t.Fatalf("clients echoed %q of %d", echoed, want)
		}
	}
	var midRSS int64
	if mid < n {
		waitEchoed(mid)
		fmt.Fprintln(srvIn, "mid")
		midRSS, _ = strconv.ParseInt(field("RSS_MID "), 10, 64)
		fmt.Fprintln(clIn, "go")
	}
	waitEchoed(n)
	fmt.Fprintln(srvIn, "measure")
	after, _ := strconv.ParseInt(field("RSS_AFTER "), 10, 64)
	conns, _ := strconv.Atoi(field("CONNS "))
	if conns != n {
		t.Fatalf("server holds %d connections, want %d", conns, n)
	}
	growth := after - before
	fmt.Fprintln(srvIn, "free")
	freed, _ := strconv.ParseInt(field("RSS_FREED "), 10, 64)
	t.Logf("%d idle %s connections (%s, %s engine, one %d-byte echo each, compression: %q): VmRSS %d KiB -> %d KiB: %d bytes per connection (OS view, no forced GC); %d bytes after FreeOSMemory",
		n, rssScheme(), mode, rssEngine(), rssSize(), os.Getenv("WSLOOP_RSS_COMPRESS"), before>>10, after>>10, growth/int64(n), (freed-before)/int64(n))
	if mid < n {
		t.Logf("marginal cost from %d to %d connections: %d bytes per connection added (without the one-time costs of the first %d)",
			mid, n, (after-midRSS)/int64(n-mid), mid)
	}
	clIn.Close() // the client exits at the end of its stdin
	fmt.Fprintln(srvIn, "quit")
	srvIn.Close()
	_ = cl.Wait()
	_ = srv.Wait()
}

// rssCompression is the Compression of both sides (WSLOOP_RSS_COMPRESS).
func rssCompression() *session.Compression {
	switch os.Getenv("WSLOOP_RSS_COMPRESS") {
	case "negotiated":
		return &session.Compression{}
	case "every":
		return &session.Compression{Threshold: -1}
	}
	return nil
}

func vmRSS() int64 { return procStatus("VmRSS:") }

// procStatus reads a kB field of /proc/self/status, in bytes (a count
// field, such as Threads, comes back multiplied by 1024). It allocates
// nothing (a fixed buffer, raw syscalls, digits parsed by hand): the server
// polls it while it is being measured, and garbage made by the measurement
// would inflate the heap it measures.
func procStatus(field string) int64 {
	fd, err := syscall.Open("/proc/self/status", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	n, _ := syscall.Read(fd, statusBuf[:])
	syscall.Close(fd)
	b := statusBuf[:max(n, 0)]
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) < len(field) || string(line[:len(field)]) != field {
			continue
		}
		var kb int64
		for _, ch := range line[len(field):] {
			if ch >= '0' && ch <= '9' {
				kb = kb*10 + int64(ch-'0')
			}
		}
		return kb << 10
	}
	return 0
}

// statusBuf holds /proc/self/status (about 1.5 KiB); only one goroutine of
// the server reads it.
var statusBuf [8 << 10]byte

// settledRSS waits until VmRSS stops moving (at most a minute).
func settledRSS() int64 {
	prev := vmRSS()
	stable := 0
	for i := 0; i < 120 && stable < 6; i++ {
		time.Sleep(500 * time.Millisecond)
		cur := vmRSS()
		if d := cur - prev; d < 16<<10 && d > -16<<10 {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return prev
}

func rssTLS() bool { return os.Getenv("WSLOOP_RSS_TLS") == "1" }

func rssScheme() string {
	if rssTLS() {
		return "wss"
	}
	return "ws"
}

func rssEngine() string {
	if e := os.Getenv("WSLOOP_RSS_ENGINE"); e != "" {
		return e
	}
	return "epoll"
}

func rssSize() int {
	if n, err := strconv.Atoi(os.Getenv("WSLOOP_RSS_SIZE")); err == nil && n > 0 {
		return n
	}
	return 64
}

func rssServer(t *testing.T) {
	prof := os.Getenv("WSLOOP_RSS_MEMPROFILE")
	switch prof {
	case "":
	case "off": // for comparison: the runtime's own sampling profiler off
		runtime.MemProfileRate = 0
		prof = ""
	default:
		runtime.MemProfileRate = 1
	}
	mode := rssMode()
	room := NewRoom()
	h := session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) }}
	if mode != "ws" {
		h.Open = func(c *session.Conn) {
			room.Join(c.Handle())
			if c.State() == session.StateStream {
				_ = c.Send(session.Text, []byte("joined"))
			}
		}
	}
	opts := Options{Engine: rssEngine(), Session: session.Config{Compression: rssCompression()}}
	if rssTLS() {
		opts.TLSConfig = testcert.New(t).ServerConfig()
	}
	if mode == "sse" {
		opts.LoopHTTP = func(c *session.Conn, r *session.Request) bool {
			_ = c.StartStream(session.Accept{})
			return true
		}
	}
	s, err := NewServer(h, opts)
	if err != nil {
		panic(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		panic(err)
	}
	fmt.Println("ADDR", s.Addr())
	fmt.Println("RSS_BEFORE", settledRSS())
	anon0, file0 := procStatus("RssAnon:"), procStatus("RssFile:")
	threads0 := procStatus("Threads:") >> 10
	smaps := os.Getenv("WSLOOP_RSS_SMAPS") // a directory: keep /proc/self/smaps before and after
	if smaps != "" {
		b, _ := os.ReadFile("/proc/self/smaps")
		_ = os.WriteFile(smaps+"/smaps.before", b, 0o644)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	anonMid, fileMid := anon0, file0
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "mid":
			fmt.Println("RSS_MID", settledRSS())
			anonMid, fileMid = procStatus("RssAnon:"), procStatus("RssFile:")
		case "measure":
			if d, err := time.ParseDuration(os.Getenv("WSLOOP_RSS_HOLD")); err == nil {
				// Idle this long first: the runtime's own periodic GC (every
				// two minutes) and its scavenger run meanwhile.
				fmt.Fprintf(os.Stderr, "server: VmRSS %d KiB settled; holding %v\n", settledRSS()>>10, d)
				time.Sleep(d)
			}
			fmt.Println("RSS_AFTER", settledRSS())
			fmt.Println("CONNS", s.Conns())
			anon1, file1 := procStatus("RssAnon:"), procStatus("RssFile:")
			fmt.Fprintf(os.Stderr, "server VmRSS growth: RssAnon %+d KiB, RssFile %+d KiB (code and files paged in); since the mid point: RssAnon %+d KiB, RssFile %+d KiB\n",
				(anon1-anon0)>>10, (file1-file0)>>10, (anon1-anonMid)>>10, (file1-fileMid)>>10)
			if smaps != "" {
				b, _ := os.ReadFile("/proc/self/smaps")
				_ = os.WriteFile(smaps+"/smaps.after", b, 0o644)
			}
			runtime.ReadMemStats(&m1)
			n := uint64(max(s.Conns(), 1))
			d := func(a, b uint64) int64 { return (int64(b) - int64(a)) / int64(n) }
			fmt.Fprintf(os.Stderr, "server, per connection: allocated %d B in %d objects; HeapInuse %+d B, HeapIdle-HeapReleased %+d B, GCSys %+d B, OtherSys %+d B, MSpanSys %+d B, StackInuse %+d B; %d GCs\n",
				(m1.TotalAlloc-m0.TotalAlloc)/n, (m1.Mallocs-m0.Mallocs)/n,
				d(m0.HeapInuse, m1.HeapInuse), d(m0.HeapIdle-m0.HeapReleased, m1.HeapIdle-m1.HeapReleased),
				d(m0.GCSys, m1.GCSys), d(m0.OtherSys, m1.OtherSys), d(m0.MSpanSys, m1.MSpanSys), d(m0.StackInuse, m1.StackInuse), m1.NumGC-m0.NumGC)
			fmt.Fprintf(os.Stderr, "server heap: HeapAlloc %d KiB -> %d KiB, next GC at %d KiB (was %d KiB); BuckHashSys %+d KiB; threads %d -> %d\n",
				m0.HeapAlloc>>10, m1.HeapAlloc>>10, m1.NextGC>>10, m0.NextGC>>10,
				(int64(m1.BuckHashSys)-int64(m0.BuckHashSys))>>10, threads0, procStatus("Threads:")>>10)
			gcCPU := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/user:cpu-seconds"}}
			metrics.Read(gcCPU)
			fmt.Fprintf(os.Stderr, "server CPU: GC %.2f s, user code %.2f s (GOGC=%q)\n", gcCPU[0].Value.Float64(), gcCPU[1].Value.Float64(), os.Getenv("GOGC"))
			if prof != "" {
				if f, err := os.Create(prof); err == nil {
					_ = pprof.Lookup("allocs").WriteTo(f, 0)
					f.Close()
				}
			}
		case "free":
			// Only for comparison with the architecture's table: the OS view
			// above is the figure that counts.
			debug.FreeOSMemory()
			fmt.Println("RSS_FREED", settledRSS())
			if f := os.Getenv("WSLOOP_RSS_HEAPPROFILE"); f != "" {
				// The live heap after the GC above, for `go tool pprof -sample_index=inuse_space`.
				if pf, err := os.Create(f); err == nil {
					_ = pprof.Lookup("heap").WriteTo(pf, 0)
					pf.Close()
				}
			}
			var m2 runtime.MemStats
			runtime.ReadMemStats(&m2)
			n := int64(max(s.Conns(), 1))
			fmt.Fprintf(os.Stderr, "server after FreeOSMemory, per connection: HeapAlloc %+d B (live), HeapInuse %+d B\n",
				(int64(m2.HeapAlloc)-int64(m0.HeapAlloc))/n, (int64(m2.HeapInuse)-int64(m0.HeapInuse))/n)
		case "quit":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.Shutdown(ctx)
			cancel()
			return
		}
	}
}

// rssMode is WSLOOP_RSS_MODE: ws, ws-room or sse.
func rssMode() string {
	switch m := os.Getenv("WSLOOP_RSS_MODE"); m {
	case "", "ws":
		return "ws"
	case "ws-room", "sse":
		return m
	default:
		panic("WSLOOP_RSS_MODE " + m + ": want ws, ws-room or sse")
	}
}

func rssClient() {
	addr, _ := net.ResolveTCPAddr("tcp", os.Getenv("WSLOOP_RSS_ADDR"))
	n, _ := strconv.Atoi(os.Getenv("WSLOOP_RSS_N"))
	mid, _ := strconv.Atoi(os.Getenv("WSLOOP_RSS_MID_N"))
	stdin := bufio.NewReader(os.Stdin)
	if rssMode() == "sse" {
		rssStreams(addr, n, mid, stdin)
		return
	}
	dopts := DialerOptions{ConnectTimeout: 60 * time.Second, Session: session.Config{Compression: rssCompression()}}
	if rssTLS() {
		dopts.TLSConfig = &tls.Config{InsecureSkipVerify: true} // a measurement's own throwaway certificate
	}
	d, err := NewDialer(dopts)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	msg := bytes.Repeat([]byte("m"), rssSize())
	var echoed, failed atomic.Int64
	inflight := make(chan struct{}, 256) // keep the server's backlog short
	h := session.HandlerFuncs{
		Open: func(c *session.Conn) {
			if rssCompression() != nil && !c.Compressed() {
				fmt.Fprintln(os.Stderr, "client connection without compression")
			}
			_ = c.Send(session.Binary, msg)
		},
		Message: func(c *session.Conn, op session.Opcode, p []byte) {
			if c.Value() == nil {
				c.SetValue(true)
				echoed.Add(1)
				<-inflight
			}
		},
		Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
			if c.Value() == nil { // failed before its echo
				failed.Add(1)
				<-inflight
				fmt.Fprintln(os.Stderr, "client connection failed:", code, err)
			}
		},
	}
	req := &session.ClientRequest{Host: addr.String(), Path: "/"}
	srcs := []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3")}
	for i := 0; i < n; i++ {
		if i == mid && mid < n {
			for echoed.Load()+failed.Load() < int64(mid) {
				time.Sleep(50 * time.Millisecond)
			}
			fmt.Println("ECHOED", echoed.Load())
			if _, err := stdin.ReadString('\n'); err != nil { // the server has measured
				return
			}
		}
		inflight <- struct{}{}
		if err := d.Dial(addr, srcs[i%len(srcs)], req, h); err != nil {
			panic(err)
		}
	}
	for echoed.Load()+failed.Load() < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("ECHOED", echoed.Load())
	_, _ = io.Copy(io.Discard, stdin) // hold the connections until told
}

// rssStreams opens n event streams (plain GETs from 127.0.0.2 and .3), each
// read up to its first event and then held without reading, and reports
// them as the WebSocket client does (ECHOED).
func rssStreams(addr *net.TCPAddr, n, mid int, stdin *bufio.Reader) {
	srcs := []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3")}
	held := make([]net.Conn, 0, n)
	var mu sync.Mutex
	open := func(i int) {
		d := net.Dialer{Timeout: 60 * time.Second, LocalAddr: &net.TCPAddr{IP: srcs[i%len(srcs)]}}
		c, err := d.Dial("tcp", addr.String())
		if err != nil {
			fmt.Fprintln(os.Stderr, "stream failed:", err)
			return
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
			fmt.Fprintln(os.Stderr, "stream failed:", err)
			c.Close()
			return
		}
		// The head, then the first event: read exactly up to its blank line.
		var got []byte
		b := make([]byte, 1)
		for !bytes.Contains(got, []byte("data: joined")) || !bytes.HasSuffix(got, []byte("\n\n")) {
			if _, err := c.Read(b); err != nil {
				fmt.Fprintln(os.Stderr, "stream failed:", err, string(got))
				c.Close()
				return
			}
			got = append(got, b[0])
		}
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(held) }
	work := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				open(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		if i == mid && mid < n {
			for count() < i {
				time.Sleep(50 * time.Millisecond)
			}
			fmt.Println("ECHOED", count())
			if _, err := stdin.ReadString('\n'); err != nil {
				return
			}
		}
		work <- i
	}
	close(work)
	wg.Wait()
	fmt.Println("ECHOED", count())
	_, _ = io.Copy(io.Discard, stdin) // hold the connections until told
}
