package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Fuzz is the network fuzzing scenario: see FuzzConfig. Run dispatches it
// to RunFuzz; its flags map as FuzzConfig says.
const Fuzz = "fuzz"

func init() { Scenarios = append(Scenarios, Fuzz) }

// FuzzConfig bounds a network fuzzing run against a live server's echo
// endpoint. Conns connections at a time each run cases one after another:
// a case is one TCP connection that sends a mutated opening handshake
// (bit flips, truncation, odd or huge headers, bad request lines, bytes
// behind the request) or a valid handshake followed by frames that break
// one rule with one right answer (a reserved opcode or bit, an unmasked or
// oversized frame, a non-minimal or 2^63 length, invalid UTF-8, a bad
// close code or body, an orphan continuation, a fragmented control frame)
// or random frames broken at random (lengths, bits, truncation), all
// written in chunks split at random points.
//
// A correct server answers every case with a legal HTTP status line or
// legal RFC 6455 frames (unmasked, no reserved bits or opcodes, legal
// close codes, UTF-8 text, nothing after its close frame), with the right
// close code where one is known (1002, 1007, 1009, 1000 after an echo),
// echoes valid messages exactly, and ends every connection within
// CaseTimeout once the fuzzer has stopped sending (half-closing its side,
// so a server waiting for more bytes sees the end). Throughout the run a
// control connection echoes a message every 100 ms, each within
// ControlTimeout. Everything else is a failure.
type FuzzConfig struct {
	// URL is the server's echo endpoint, ws://host:port/path.
	URL    string
	Origin string
	// Conns is how many cases run at once; default 50.
	Conns int
	// Cases bounds the cases in all; default 2000.
	Cases int
	// Duration bounds the run: no case starts after it; default 60s.
	Duration time.Duration
	// CaseTimeout is how long a case may take, the server's answers
	// included; it must be longer than the server's handshake timeout,
	// which ends the cases that leave a request unfinished without
	// half-closing. Default 15s.
	CaseTimeout time.Duration
	// ControlTimeout bounds each echo of the control connection; default 2s.
	ControlTimeout time.Duration
	// MaxMessage is the server's message size limit, for the cases that
	// must get 1009; default 1 MiB (wsloop's default).
	MaxMessage int
	// Seed makes the cases; 0 picks one at random (the report names it:
	// the same seed replays the same cases).
	Seed uint64
	// Src are local addresses to bind connections to, in turn.
	Src []string
	// Logger hears of each failure as it happens (the first few); default
	// slog.Default().
	Logger *slog.Logger
}

// FuzzReport is what a fuzzing run found.
type FuzzReport struct {
	Seed      uint64
	Cases     int64
	Opened    int64 // cases whose handshake got a 101
	BytesSent int64
	Elapsed   time.Duration
	// Outcomes count how cases ended: "close_1002", "http_400", "eof"
	// (closed without a close frame), "reset", "refused_503", ...
	Outcomes map[string]int64
	// Control is the control connection's record.
	ControlEchoes int64
	ControlMaxRTT time.Duration
	// Failures say what the server did wrong, the first few in detail
	// (with the case number to replay), then counts by kind.
	Failures []string
}

// Passed reports whether nothing was wrong.
func (r *FuzzReport) Passed() bool { return len(r.Failures) == 0 }

// maxFailureDetail bounds the failures reported one by one.
const maxFailureDetail = 20

type fuzzer struct {
	cfg    FuzzConfig
	tgt    target
	next   atomic.Int64
	stopAt time.Time

	mu       sync.Mutex
	outcomes map[string]int64
	kinds    map[string]int64
	detail   []string
	sent     atomic.Int64
	cases    atomic.Int64
	opened   atomic.Int64 // cases that got a 101
	srcNext  atomic.Uint32
}

func (cfg *FuzzConfig) defaults() {
	if cfg.Conns <= 0 {
		cfg.Conns = 50
	}
	if cfg.Cases <= 0 {
		cfg.Cases = 2000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Minute
	}
	if cfg.CaseTimeout <= 0 {
		cfg.CaseTimeout = 15 * time.Second
	}
	if cfg.ControlTimeout <= 0 {
		cfg.ControlTimeout = 2 * time.Second
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 1 << 20
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// RunFuzz fuzzes the server at cfg.URL (see FuzzConfig). The error is a
// *VerificationError when the server did something wrong (the report says
// what), any other when the run could not be carried out.
func RunFuzz(ctx context.Context, cfg FuzzConfig) (*FuzzReport, error) {
	cfg.defaults()
	tgt, err := resolveURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Src {
		if net.ParseIP(s) == nil {
			return nil, fmt.Errorf("source address %q is not an IP address", s)
		}
	}
	start := time.Now()
	f := &fuzzer{cfg: cfg, tgt: tgt, stopAt: start.Add(cfg.Duration), outcomes: map[string]int64{}, kinds: map[string]int64{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cfg.Logger.Debug("fuzz", "url", cfg.URL, "seed", cfg.Seed, "conns", cfg.Conns, "cases", cfg.Cases, "duration", cfg.Duration)
	ctl := &control{f: f}
	if err := ctl.connect(); err != nil {
		return nil, fmt.Errorf("control connection: %w (is %s an echo endpoint?)", err, cfg.URL)
	}
	ctlDone := make(chan struct{})
	go func() { defer close(ctlDone); ctl.run(ctx) }()

	var wg sync.WaitGroup
	for range cfg.Conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(f.stopAt) {
				i := f.next.Add(1) - 1
				if i >= int64(cfg.Cases) {
					return
				}
				f.runCase(int(i))
				f.cases.Add(1)
			}
		})
	}
	wg.Wait()
	cancel()
	<-ctlDone

	rep := &FuzzReport{
		Seed: cfg.Seed, Cases: f.cases.Load(), Opened: f.opened.Load(), BytesSent: f.sent.Load(), Elapsed: time.Since(start),
		Outcomes: f.outcomes, ControlEchoes: ctl.echoes, ControlMaxRTT: ctl.maxRTT,
	}
	rep.Failures = append(rep.Failures, f.detail...)
	if extra := f.failureCount() - int64(len(f.detail)); extra > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d more failures; by kind: %s", extra, fmtCounts(f.kinds)))
	}
	if !rep.Passed() {
		return rep, &VerificationError{Failures: rep.Failures}
	}
	return rep, nil
}

func (f *fuzzer) failureCount() (n int64) {
	for _, v := range f.kinds {
		n += v
	}
	return n
}

// failf records a failure of case i (-1: the control connection).
func (f *fuzzer) failf(i int, c *fuzzCase, kind, format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kinds[kind]++
	if len(f.detail) >= maxFailureDetail {
		return
	}
	msg := fmt.Sprintf(format, a...)
	switch {
	case c == nil:
		f.detail = append(f.detail, fmt.Sprintf("control connection: %s: %s", kind, msg))
	default:
		sent := c.handshake
		if c.kind != "handshake" {
			sent = c.frames
		}
		f.detail = append(f.detail, fmt.Sprintf("case %d (%s, seed %d): %s: %s; sent %d bytes, starting %x",
			i, c.kind, f.cfg.Seed, kind, msg, len(sent), sent[:min(len(sent), 48)]))
	}
	f.cfg.Logger.Warn("fuzz: the server failed a case", "detail", f.detail[len(f.detail)-1])
}

func (f *fuzzer) outcome(o string) {
	f.mu.Lock()
	f.outcomes[o]++
	f.mu.Unlock()
}

func (f *fuzzer) dial(timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout}
	if len(f.cfg.Src) > 0 {
		ip := net.ParseIP(f.cfg.Src[int(f.srcNext.Add(1))%len(f.cfg.Src)])
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.Dial("tcp", f.tgt.raddr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// send writes p, pausing briefly at the cut points so that the server
// reads it in pieces. It stops at the first error: the server may close
// as soon as it has seen enough.
func (f *fuzzer) send(c *net.TCPConn, p []byte, cuts []int) error {
	last := 0
	for _, cut := range append(cuts, len(p)) {
		if cut <= last || cut > len(p) {
			continue
		}
		n, err := c.Write(p[last:cut])
		f.sent.Add(int64(n))
		if err != nil {
			return err
		}
		last = cut
		if cut < len(p) {
			time.Sleep(time.Duration(1+int(p[cut-1])%3) * time.Millisecond)
		}
	}
	return nil
}

// ending names how a read ended: "eof", "reset", "timeout" or the error.
func ending(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return err.Error()
}

func (f *fuzzer) runCase(i int) {
	c := genCase(f.cfg.Seed, i, f.tgt.path, f.tgt.host, f.cfg.Origin, f.cfg.MaxMessage)
	deadline := time.Now().Add(f.cfg.CaseTimeout)
	conn, err := f.dial(f.cfg.CaseTimeout)
	if err != nil {
		f.failf(i, &c, "connect", "%v", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	if c.kind == "handshake" {
		f.handshakeCase(i, &c, conn)
		return
	}
	key := newKey(randFor(f.cfg.Seed, i))
	if err := f.send(conn, handshakeRequest(f.tgt.path, f.tgt.host, f.cfg.Origin, key), nil); err != nil {
		f.failf(i, &c, "connect", "sending the handshake: %v", err)
		return
	}
	h, rest, err := readHead(conn)
	switch {
	case err != nil:
		f.failf(i, &c, "handshake", "%v", err)
		return
	case h.status == 429 || h.status == 503:
		f.outcome("refused_" + strconv.Itoa(h.status)) // a limit of the server: fine, but no case
		return
	case h.status != 101 || h.header["sec-websocket-accept"] != acceptFor(key):
		f.failf(i, &c, "handshake", "a valid request got %d (accept %q)", h.status, h.header["sec-websocket-accept"])
		return
	}
	f.opened.Add(1)
	s := &serverStream{maxMsg: f.cfg.MaxMessage, keep: len(c.wantEcho) > 0}
	s.feed(rest)
	f.send(conn, c.frames, c.chunks)
	f.finishFrames(i, &c, conn, s, deadline)
}

// finishFrames reads the server's answer to a frame case: the fuzzer
// answers its close, closes itself once the answer it waits for has come
// (or at once, for random frames), half-closes when the server still
// waits for bytes, and judges what arrived.
func (f *fuzzer) finishFrames(i int, c *fuzzCase, conn *net.TCPConn, s *serverStream, deadline time.Time) {
	wait := min(2*time.Second, f.cfg.CaseTimeout/4)
	closeAt := time.Now().Add(wait) // then close ourselves, ready or not
	sentClose, halfClosed := false, false
	sendClose := func(code int) {
		if !sentClose {
			sentClose = true
			f.send(conn, appendFrame(nil, frame(opClose, closePayload(code, "")), randFor(f.cfg.Seed, i)), nil)
			closeAt = time.Now().Add(wait)
		}
	}
	ready := func() bool { // the answer the case waits for has come
		switch {
		case c.kind == "random":
			return true
		case len(c.wantEcho) > 0:
			return len(s.messages) >= len(c.wantEcho) && (!c.wantPong || s.pongs > 0)
		}
		return false // an error case: wait for the server's close
	}
	buf := make([]byte, 64<<10)
	end := ""
	for end == "" {
		if s.closed {
			code := s.closeCode
			if code == 1005 {
				code = 1000
			}
			sendClose(code)
		} else if ready() {
			sendClose(1000)
		}
		rd := deadline
		if !halfClosed && closeAt.Before(rd) {
			rd = closeAt
		}
		conn.SetReadDeadline(rd)
		n, err := conn.Read(buf)
		s.feed(buf[:n])
		for _, p := range s.pings {
			if !sentClose {
				f.send(conn, appendFrame(nil, frame(opPong, p), randFor(f.cfg.Seed, i)), nil)
			}
		}
		s.pings = s.pings[:0]
		if err == nil {
			continue
		}
		switch e := ending(err); {
		case e == "timeout" && !halfClosed && time.Now().Before(deadline):
			sendClose(1000)
			conn.CloseWrite() // a server waiting for the rest of a frame sees the end
			halfClosed = true
		default:
			end = e
		}
	}
	if s.err != nil {
		f.failf(i, c, "bad_frame", "%v", s.err)
		return
	}
	if end == "timeout" {
		f.failf(i, c, "hang", "the server did not close within %v (close frame received: %v)", f.cfg.CaseTimeout, s.closed)
		return
	}
	if s.closed {
		f.outcome("close_" + strconv.Itoa(s.closeCode))
	} else {
		f.outcome(end)
	}
	if c.wantCode != 0 {
		switch {
		case !s.closed:
			f.failf(i, c, "no_close", "want close code %d, the connection ended (%s) without a close frame", c.wantCode, end)
		case s.closeCode != c.wantCode:
			f.failf(i, c, "wrong_code", "want close code %d, got %d", c.wantCode, s.closeCode)
		}
	}
	if len(c.wantEcho) > 0 {
		if len(s.messages) != len(c.wantEcho) {
			f.failf(i, c, "echo", "%d messages came back, want %d", len(s.messages), len(c.wantEcho))
		} else {
			for k := range c.wantEcho {
				if !bytes.Equal(s.messages[k], c.wantEcho[k]) {
					f.failf(i, c, "echo", "message %d came back as %.40q, want %.40q", k, s.messages[k], c.wantEcho[k])
				}
			}
		}
		if c.wantPong && s.pongs == 0 {
			f.failf(i, c, "pong", "no pong for the ping")
		}
	}
}

// handshakeCase sends a mutated request and judges the answer: a legal
// response head (then, after a 101, legal frames) or a close, within the
// deadline.
func (f *fuzzer) handshakeCase(i int, c *fuzzCase, conn *net.TCPConn) {
	f.send(conn, c.handshake, c.chunks)
	halfClosed := c.halfClose
	if halfClosed {
		conn.CloseWrite()
	}
	var head []byte     // the response until its head is complete
	status := 0         // the response's status, once its head is complete
	var s *serverStream // the frames after a 101
	buf := make([]byte, 16<<10)
	for {
		n, err := conn.Read(buf)
		switch {
		case s != nil:
			s.feed(buf[:n])
		case status != 0:
			// the body of a response other than 101: not judged
		case n > 0:
			head = append(head, buf[:n]...)
			h, rest, done, herr := parseResponseHead(head)
			if herr != nil {
				f.failf(i, c, "bad_response", "%v", herr)
				return
			}
			if done {
				status = h.status
				f.outcome("http_" + strconv.Itoa(status))
				if status == 101 {
					f.opened.Add(1)
					s = &serverStream{maxMsg: f.cfg.MaxMessage}
					s.feed(rest)
				}
				if !halfClosed { // answered: end the connection from this side
					conn.CloseWrite()
					halfClosed = true
				}
			}
		}
		if err == nil {
			continue
		}
		switch end := ending(err); {
		case end == "timeout":
			f.failf(i, c, "hang", "no answer and no close within %v (half-closed at once: %v, %d response bytes)", f.cfg.CaseTimeout, c.halfClose, len(head))
		case status == 0 && len(head) > 0 && end == "eof":
			f.failf(i, c, "bad_response", "the connection closed inside the response head: %.60q", head)
		case status == 0:
			f.outcome("closed_" + end) // no answer: a server may just close on garbage
		case s != nil && s.err != nil:
			f.failf(i, c, "bad_frame", "after the 101: %v", s.err)
		}
		return
	}
}

// readHead reads a response head; rest are the bytes after it.
func readHead(conn net.Conn) (httpHead, []byte, error) {
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		h, rest, done, herr := parseResponseHead(got)
		if herr != nil {
			return h, nil, herr
		}
		if done {
			return h, rest, nil
		}
		if err != nil {
			return h, nil, fmt.Errorf("no response head (%s after %d bytes)", ending(err), len(got))
		}
	}
}

// fmtCounts lists counts by key, largest first.
func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if m[keys[a]] != m[keys[b]] {
			return m[keys[a]] > m[keys[b]]
		}
		return keys[a] < keys[b]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// fuzzSeedEnv, when set to a number, is the seed of a fuzz run from wsload
// (the report names the seed of every run).
const fuzzSeedEnv = "WSLOAD_FUZZ_SEED"

// runFuzzScenario runs Fuzz from a Config: Conns cases at once, Messages
// cases in all, Duration, ConnectTimeout as the case timeout, Size as the
// server's message limit, Src; the seed from $WSLOAD_FUZZ_SEED.
func runFuzzScenario(ctx context.Context, cfg Config) (*Report, error) {
	fc := FuzzConfig{
		URL: cfg.URL, Origin: cfg.Origin, Conns: cfg.Conns, Cases: cfg.Messages, Duration: cfg.Duration,
		CaseTimeout: cfg.ConnectTimeout, MaxMessage: cfg.Size, Src: cfg.Src, Logger: cfg.Logger,
	}
	if v := os.Getenv(fuzzSeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil || seed == 0 {
			return nil, fmt.Errorf("$%s %q: want a positive integer", fuzzSeedEnv, v)
		}
		fc.Seed = seed
	}
	fc.defaults()
	fr, err := RunFuzz(ctx, fc)
	if fr == nil {
		return nil, err
	}
	rep := &Report{Scenario: Fuzz, URL: cfg.URL, Conns: fc.Conns, Procs: 1, Src: len(fc.Src)}
	rep.Attempted, rep.Opened, rep.BytesSent = fr.Cases, fr.Opened, fr.BytesSent
	rep.Sent, rep.Received = fr.ControlEchoes, fr.ControlEchoes
	rep.TrafficSeconds = fr.Elapsed.Seconds()
	rep.Notes = []string{
		fmt.Sprintf("fuzz: %d cases in %.1fs, seed %d (%s=%d replays them)", fr.Cases, fr.Elapsed.Seconds(), fr.Seed, fuzzSeedEnv, fr.Seed),
		"fuzz outcomes: " + fmtCounts(fr.Outcomes),
		fmt.Sprintf("fuzz control connection: %d echoes, slowest %v", fr.ControlEchoes, fr.ControlMaxRTT.Round(time.Microsecond)),
	}
	rep.Failures = fr.Failures
	return rep, err
}
