//go:build linux

package main

// Attacks on a running wsloop binary over loopback, each bounded in count
// and time: slowloris, garbage, a connect storm, and a room flooded while
// its members do not read. The server must stay up, keep serving the
// honest clients, cut the attackers by its stated bounds, and give its
// memory back.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func echoOnce(ctx context.Context, addr string) (time.Duration, error) {
	start := time.Now()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/echo", nil)
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("honest")); err != nil {
		return took, err
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "honest" {
		return took, fmt.Errorf("echo: %q %v", p, err)
	}
	return took, nil
}

func p99(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)*99/100]
}

// Slowloris: 5,000 connections send their request head at one byte a
// second. Meanwhile 200 honest clients connect and echo; the slow ones are
// cut at the handshake deadline.
func TestAttackSlowloris(t *testing.T) {
	const slowN, honestN = 5000, 200
	p := startProc(t, "wsloop serving", "-addr", "127.0.0.1:0", "-handshake-timeout", "3s")
	var cut atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	head := []byte("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
	for i := 0; i < slowN; i++ {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer c.Close()
		wg.Add(1)
		go func() { // one byte a second until the server cuts it (bounded: 10 s)
			defer wg.Done()
			for j := 0; j < 10; j++ {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(head[j : j+1]); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
					cut.Add(1)
					return
				}
			}
		}()
	}
	var took []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < honestN; i++ {
		d, err := echoOnce(ctx, p.addr)
		if err != nil {
			t.Fatalf("honest client %d during the slowloris: %v", i, err)
		}
		took = append(took, d)
	}
	wg.Wait()
	if n := cut.Load(); n != slowN {
		t.Fatalf("%d of %d slow connections cut", n, slowN)
	}
	if el := time.Since(start); el > 9*time.Second {
		t.Fatalf("the slow connections took %v to be cut, deadline 3 s", el)
	}
	t.Logf("slowloris: %d slow connections cut within %v; %d honest handshakes meanwhile, p99 %v",
		slowN, time.Since(start).Round(time.Millisecond), honestN, p99(took))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Garbage: 1,000 connections send random bytes instead of a request (400
// or a close), 1,000 more after a valid handshake (a 1002 close, or 1007
// and 1009 where the bytes happen to say so). The server stays up and its
// memory comes back.
func TestAttackGarbage(t *testing.T) {
	p := startProc(t, "wsloop serving", "-addr", "127.0.0.1:0")
	pid := p.cmd.Process.Pid
	if _, err := echoOnce(context.Background(), p.addr); err != nil {
		t.Fatal(err)
	}
	rss0 := procRSS(t, pid)
	rng := rand.New(rand.NewPCG(7, 7))
	run := func(n int, handshake bool) (answers map[string]int) {
		answers = map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 200)
		for i := 0; i < n; i++ {
			junk := make([]byte, 64+rng.IntN(512))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if handshake {
					c.Write([]byte(upgradeReq("/ws/echo")))
					if !readHead(c) {
						t.Error("no 101")
						return
					}
				}
				c.Write(junk)
				c.(*net.TCPConn).CloseWrite() // nothing more: the server answers, then closes
				b, _ := io.ReadAll(c)
				mu.Lock()
				answers[describeAnswer(b, handshake)]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return answers
	}
	pre := run(1000, false)
	post := run(1000, true)
	t.Logf("garbage instead of a request: %v; garbage after the handshake: %v", pre, post)
	for a := range pre {
		if a != "400" && a != "closed" {
			t.Errorf("garbage request answered %q", a)
		}
	}
	for a := range post {
		if a != "close 1002" && a != "close 1007" && a != "close 1009" && a != "frames" && a != "closed" {
			t.Errorf("garbage frames answered %q", a)
		}
	}
	// Random bytes cannot start a request line (the method must be a
	// token): all but the rare lucky start get their 400 at once.
	if pre["400"] < 900 {
		t.Errorf("only %d of 1,000 garbage requests were answered 400", pre["400"])
	}
	if post["close 1002"] < 900 {
		t.Errorf("only %d of 1,000 garbage frame streams were failed with 1002", post["close 1002"])
	}
	if _, err := echoOnce(context.Background(), p.addr); err != nil {
		t.Fatalf("after the garbage: %v", err)
	}
	time.Sleep(2 * time.Second) // a GC cycle or two of the server's own
	if grow := procRSS(t, pid) - rss0; grow > 16<<20 {
		t.Fatalf("server RSS grew %d MiB after 2,000 garbage connections had gone", grow>>20)
	}
}

func upgradeReq(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// readHead reads a 101 head byte by byte (nothing behind it).
func readHead(c net.Conn) bool {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return false
		}
		head = append(head, b[0])
	}
	return bytes.HasPrefix(head, []byte("HTTP/1.1 101 "))
}

// describeAnswer names what a server sent a garbage connection before it
// closed: "400" (a status), "closed" (nothing), "close 1002" (legal server
// frames ending with a close frame and its code), "frames" (legal frames
// without a close: bytes that happened to be valid frames were echoed or
// pinged, then the client's end of stream came in the middle of a frame),
// or "malformed ..." for anything a server may never send.
func describeAnswer(b []byte, ws bool) string {
	switch {
	case len(b) == 0:
		return "closed"
	case !ws:
		if bytes.HasPrefix(b, []byte("HTTP/1.1 ")) && len(b) >= 12 {
			return string(b[9:12])
		}
		return fmt.Sprintf("malformed %q", b[:min(len(b), 16)])
	}
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x70 != 0 || b[1]&0x80 != 0 || b[0]&0x80 == 0 {
			return fmt.Sprintf("malformed frame % x", b[:min(len(b), 8)])
		}
		op, n, h := b[0]&0x0f, int(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return "malformed length"
			}
			n, h = int(b[2])<<8|int(b[3]), 4
		case 127:
			if len(b) < 10 {
				return "malformed length"
			}
			n, h = 0, 10
			for _, x := range b[2:10] {
				n = n<<8 | int(x)
			}
		}
		if len(b) < h+n || op != 1 && op != 2 && op != 8 && op != 10 {
			return fmt.Sprintf("malformed frame % x", b[:min(len(b), 8)])
		}
		if op == 8 {
			if n < 2 {
				return "close without a code"
			}
			return fmt.Sprintf("close %d", int(b[h])<<8|int(b[h+1]))
		}
		b = b[h+n:]
	}
	return "frames"
}

// A connect storm past capacity: the server never holds more than
// -max-conns; those past it wait (epoll: in the listen backlog) or are
// refused with 503, and are served once places free.
func TestAttackConnectStorm(t *testing.T) {
	const capacity, storm = 500, 1500
	for _, engine := range []string{"epoll", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			p := startProc(t, "wsloop serving", "-addr", "127.0.0.1:0", "-engine", engine, "-max-conns", strconv.Itoa(capacity))
			var open, refused, failed atomic.Int32
			var peak atomic.Int32
			conns := make(chan *websocket.Conn, storm)
			var wg sync.WaitGroup
			// The dials past capacity wait until ctx ends: it ends half a
			// second after the capacity is filled (so that refusals are
			// counted), or after 30 s on a machine too loaded to fill it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			go func() {
				for ctx.Err() == nil && open.Load() < capacity {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(500 * time.Millisecond)
				cancel()
			}()
			for i := 0; i < storm; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws/echo", nil)
					switch {
					case err == nil:
						if n := open.Add(1); n > peak.Load() {
							peak.Store(n)
						}
						conns <- c
					case resp != nil && resp.StatusCode == 503:
						refused.Add(1)
					default:
						failed.Add(1) // still waiting in the backlog at the deadline
					}
				}()
			}
			wg.Wait()
			close(conns)
			if n := open.Load(); n > capacity {
				t.Fatalf("%d connections open, capacity %d", n, capacity)
			}
			t.Logf("%s storm of %d at capacity %d: %d open, %d refused with 503, %d left waiting", engine, storm, capacity, open.Load(), refused.Load(), failed.Load())
			if open.Load() != capacity {
				t.Fatalf("%d open, want the capacity %d filled", open.Load(), capacity)
			}
			for c := range conns {
				c.CloseNow()
			}
			// The places are back: an honest client gets in.
			ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ecancel()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := echoOnce(ectx, p.addr); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("after the storm: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// 1,000 room members that never read while the room is flooded: the
// server's memory stays within (HighWater + a message) per member, and
// the members who read get every message.
func TestAttackRoomFlood(t *testing.T) {
	const muteN, healthyN, messages, hw = 1000, 3, 1000, 32 << 10
	p := startProc(t, "wsloop serving", "-addr", "127.0.0.1:0", "-high-water", strconv.Itoa(hw))
	pid := p.cmd.Process.Pid
	rss0 := procRSS(t, pid)
	for i := 0; i < muteN; i++ {
		d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(upgradeReq(fmt.Sprintf("/ws/chat?room=flood&nick=mute%d", i))))
		if !readHead(c) {
			t.Fatalf("mute member %d: no 101", i)
		}
	}
	var healthy []*member
	for i := 0; i < healthyN; i++ {
		healthy = append(healthy, join(t, p.addr, "flood", fmt.Sprintf("reader%d", i)))
	}
	flooder := join(t, p.addr, "flood", "flooder")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	text := strings.Repeat("x", 1000)
	var peak int64
	for i := 0; i < messages; i++ {
		if err := flooder.c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("%04d%s", i, text))); err != nil {
			t.Fatalf("flood %d: %v", i, err)
		}
		if i%50 == 0 {
			if r := procRSS(t, pid) - rss0; r > peak {
				peak = r
			}
		}
	}
	for _, m := range append(healthy, flooder) {
		for i := 0; i < messages; i++ {
			want := fmt.Sprintf("flooder: %04d", i)
			select {
			case got := <-m.in:
				for strings.HasPrefix(got, "* ") { // announcements
					got = <-m.in
				}
				if !strings.HasPrefix(got, want) {
					t.Fatalf("%s: message %d is %.20q, want %q", m.name, i, got, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s got %d of %d messages", m.name, i, messages)
			}
		}
	}
	if r := procRSS(t, pid) - rss0; r > peak {
		peak = r
	}
	bound := int64(muteN) * (hw + 2<<10)
	t.Logf("room flood: %d mute members, %d messages of 1 KB: server RSS grew at most %.1f MiB (bound %.1f MiB)", muteN, messages, float64(peak)/(1<<20), float64(bound)/(1<<20))
	if peak > bound+32<<20 {
		t.Fatalf("server RSS grew %d MiB with %d members not reading", peak>>20, muteN)
	}
}
