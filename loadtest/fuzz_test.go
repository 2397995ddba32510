package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestFuzzWsloop runs a short network fuzz against wsloop's engines in
// this process: every case must get a legal, timely answer, the expected
// close codes and echoes, and the control connection must keep echoing.
func TestFuzzWsloop(t *testing.T) {
	for _, engine := range []string{"epoll", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			echo := session.HandlerFuncs{
				Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) },
			}
			url := goroutineServer(t, echo, loop.Options{
				Engine: engine,
				Loops:  2,
				Session: session.Config{
					MaxMessage:       64 << 10,
					HandshakeTimeout: time.Second,
					CloseTimeout:     time.Second,
				},
			})
			cases := 400
			if testing.Short() {
				cases = 100
			}
			rep, err := RunFuzz(context.Background(), FuzzConfig{
				URL: url, Conns: 16, Cases: cases, Duration: 40 * time.Second,
				CaseTimeout: 5 * time.Second, MaxMessage: 64 << 10, Seed: 20261201,
			})
			if rep != nil {
				t.Logf("%d cases in %v, %d opened, %d bytes; outcomes: %s; control: %d echoes, slowest %v",
					rep.Cases, rep.Elapsed.Round(time.Millisecond), rep.Opened, rep.BytesSent, fmtCounts(rep.Outcomes), rep.ControlEchoes, rep.ControlMaxRTT)
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Cases != int64(cases) {
				t.Fatalf("%d cases ran, want %d", rep.Cases, cases)
			}
			// The mix reached the server's every kind of answer.
			for _, o := range []string{"close_1000", "close_1002", "close_1007", "close_1009", "http_101", "http_400"} {
				if rep.Outcomes[o] == 0 {
					t.Errorf("no case ended %s", o)
				}
			}
			if rep.ControlEchoes == 0 {
				t.Error("the control connection echoed nothing")
			}
		})
	}
}

// brokenServer answers every handshake with a 101 and then misbehaves as
// act says; it returns the ws:// URL.
func brokenServer(t *testing.T, act func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go func() { <-done; c.Close() }()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				key := req.Header.Get("Sec-WebSocket-Key")
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"))
				act(c, br)
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

// TestFuzzFindsBrokenServers: the fuzzer's judgements can fail. A server
// that never ends a connection hangs every case; one that answers with a
// masked frame and a forbidden close code breaks the frame rules.
func TestFuzzFindsBrokenServers(t *testing.T) {
	cfg := FuzzConfig{Conns: 4, Cases: 8, Duration: 20 * time.Second, CaseTimeout: time.Second, ControlTimeout: 300 * time.Millisecond, Seed: 7,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

	cfg.URL = brokenServer(t, func(c net.Conn, br *bufio.Reader) {
		time.Sleep(10 * time.Second) // reads nothing, closes nothing
	})
	rep, err := RunFuzz(context.Background(), cfg)
	var verr *VerificationError
	if !errors.As(err, &verr) || !strings.Contains(strings.Join(rep.Failures, "\n"), "hang") ||
		!strings.Contains(strings.Join(rep.Failures, "\n"), "control connection") {
		t.Fatalf("a server that never answers: %v\n%s", err, strings.Join(rep.Failures, "\n"))
	}

	cfg.URL = brokenServer(t, func(c net.Conn, br *bufio.Reader) {
		// a masked text frame, then a close frame with 1005 on the wire
		c.Write([]byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2, 0x88, 0x02, 0x03, 0xed})
	})
	rep, err = RunFuzz(context.Background(), cfg)
	if !errors.As(err, &verr) || !strings.Contains(strings.Join(rep.Failures, "\n"), "masked frame from the server") {
		t.Fatalf("a server sending masked frames: %v\n%s", err, strings.Join(rep.Failures, "\n"))
	}
}

func TestServerStreamRules(t *testing.T) {
	ok := [][]byte{
		{0x81, 0x02, 'h', 'i'},
		{0x01, 0x01, 'h', 0x89, 0x00, 0x80, 0x01, 'i'}, // fragmented text with a ping between
		append([]byte{0x82, 0x7e, 0x00, 0x80}, make([]byte, 128)...),
		{0x8a, 0x00},
		{0x88, 0x00},
		{0x88, 0x02, 0x03, 0xe8},
		{0x88, 0x04, 0x0f, 0xa0, 'o', 'k'}, // 4000
	}
	for _, b := range ok {
		s := &serverStream{maxMsg: 1 << 10}
		for i := range b { // byte by byte: nothing depends on read boundaries
			s.feed(b[i : i+1])
		}
		if s.err != nil {
			t.Errorf("% x: %v", b, s.err)
		}
	}
	bad := map[string][]byte{
		"reserved bits":          {0xc1, 0x00},
		"reserved opcode":        {0x83, 0x00},
		"masked":                 {0x81, 0x80, 0, 0, 0, 0},
		"not minimal":            {0x82, 0x7e, 0x00, 0x05, 1, 2, 3, 4, 5},
		"control frame":          {0x09, 0x00},
		"continuation frame":     {0x80, 0x00},
		"inside a fragmented":    {0x01, 0x01, 'a', 0x81, 0x01, 'b'},
		"not UTF-8":              {0x81, 0x01, 0xff},
		"1-byte body":            {0x88, 0x01, 0x03},
		"may not be sent":        {0x88, 0x02, 0x03, 0xee}, // 1006
		"after the close frame":  {0x88, 0x00, 0x81, 0x00},
		"close reason is not":    {0x88, 0x03, 0x03, 0xe8, 0xff},
		"over the message limit": {0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0},
	}
	for want, b := range bad {
		s := &serverStream{maxMsg: 1 << 10}
		s.feed(b)
		if s.err == nil || !strings.Contains(s.err.Error(), want) {
			t.Errorf("% x: %v, want an error about %q", b, s.err, want)
		}
	}
}

func TestParseResponseHead(t *testing.T) {
	h, rest, done, err := parseResponseHead([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n\x81\x00"))
	if err != nil || !done || h.status != 101 || h.header["sec-websocket-accept"] != "x" || !bytes.Equal(rest, []byte{0x81, 0}) {
		t.Fatalf("%+v %q %v %v", h, rest, done, err)
	}
	if _, _, done, err := parseResponseHead([]byte("HTTP/1.1 400 Bad")); done || err != nil {
		t.Fatalf("partial: %v %v", done, err)
	}
	for _, b := range []string{"SSH-2.0-x\r\n\r\n", "HTTP/1.1 99 x\r\n\r\n", "HTTP/1.1 2000\r\n\r\n", "HTTP/1.1 400 x\r\nbad line\r\n\r\n", "garbage that is long enough"} {
		if _, _, _, err := parseResponseHead([]byte(b)); err == nil {
			t.Errorf("%q: no error", b)
		}
	}
}

// TestGenCaseNeverPanics makes many cases of several seeds (a wsload run
// makes tens of thousands).
func TestGenCaseNeverPanics(t *testing.T) {
	n := 8000
	if testing.Short() {
		n = 2000
	}
	for i := range n {
		genCase(uint64(i%7+1), i, "/ws/echo", "127.0.0.1:8080", "", 1<<16)
	}
}

// TestCasesReplay: a seed and a case number give the same bytes.
func TestCasesReplay(t *testing.T) {
	kinds := map[string]int{}
	for i := range 300 {
		a := genCase(42, i, "/ws", "h", "", 1<<16)
		b := genCase(42, i, "/ws", "h", "", 1<<16)
		if a.kind != b.kind || !bytes.Equal(a.handshake, b.handshake) || !bytes.Equal(a.frames, b.frames) || a.wantCode != b.wantCode {
			t.Fatalf("case %d differs between two generations", i)
		}
		kinds[a.kind]++
	}
	if kinds["handshake"] == 0 || kinds["targeted"] == 0 || kinds["random"] == 0 {
		t.Fatalf("kinds %v", kinds)
	}
	if c := genCase(43, 0, "/ws", "h", "", 1<<16); bytes.Equal(c.frames, genCase(42, 0, "/ws", "h", "", 1<<16).frames) && c.kind != "handshake" {
		t.Error("another seed, the same case")
	}
	// The encoder's frames are what the rules say.
	r := rand.New(rand.NewPCG(1, 1))
	b := appendFrame(nil, frame(opText, []byte("hello")), r)
	if len(b) != 2+4+5 || b[0] != 0x81 || b[1] != 0x85 {
		t.Fatalf("% x", b)
	}
	for i := range 5 {
		b[6+i] ^= b[2+i%4]
	}
	if string(b[6:]) != "hello" {
		t.Fatalf("unmasked payload %q", b[6:])
	}
}
