package loop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// permessage-deflate over real sockets, on every engine, against three
// other implementations: the project's own Dialer, coder/websocket (Go)
// and Node's ws (zlib underneath, which also refuses a match that reaches
// beyond the window it allowed).

// compressible returns n bytes of text that deflate shrinks.
func compressible(i, n int) []byte {
	var b []byte
	for k := 0; len(b) < n; k++ {
		b = fmt.Appendf(b, `{"conn":%d,"k":%d,"temp":21.%d},`, i, k, k%10)
	}
	return b[:n]
}

// TestIntegrationDeflate: Dialer and coder/websocket clients with
// compression against every server engine: verified echoes of many sizes,
// compressed both ways (the server's counters), and a room publish that
// reaches compressed and uncompressed members alike.
func TestIntegrationDeflate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// Every connection is a member of one room while it is open.
		room := loop.NewRoom()
		rec := echoRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.close = func(c *session.Conn, code session.StatusCode, reason string, err error) { room.Leave(c.Handle()) }
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.Compression = &session.Compression{}
		})
		raddr := ts.srv.Addr().(*net.TCPAddr)
		d, err := loop.NewDialer(loop.DialerOptions{Loops: 2, Session: session.Config{Compression: &session.Compression{}}})
		if err != nil {
			t.Fatal(err)
		}
		dialerOpen := true
		defer func() {
			if dialerOpen {
				d.Close()
			}
		}()
		const clients = 10
		sizes := []int{10, 200, 5000, 70000, 300000}
		var wg sync.WaitGroup
		var bad, compressedConns atomic.Int64
		for i := range clients {
			wg.Add(1)
			k := 0
			h := session.HandlerFuncs{
				Open: func(c *session.Conn) {
					if c.Compressed() {
						compressedConns.Add(1)
					}
					_ = c.Send(session.Text, compressible(i, sizes[0]))
				},
				Message: func(c *session.Conn, op session.Opcode, p []byte) {
					if !bytes.Equal(p, compressible(i, sizes[k])) {
						bad.Add(1)
					}
					if k++; k == len(sizes) {
						_ = c.Close(session.StatusNormal, "")
						return
					}
					_ = c.Send(session.Text, compressible(i, sizes[k]))
				},
				Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
					if code != session.StatusNormal || k != len(sizes) {
						bad.Add(1)
					}
					wg.Done()
				},
			}
			if err := d.Dial(raddr, nil, &session.ClientRequest{Host: ts.addr, Path: "/"}, h); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		d.Close()
		dialerOpen = false
		if bad.Load() != 0 || compressedConns.Load() != clients {
			t.Fatalf("%d wrong echoes or closes, %d of %d connections compressed", bad.Load(), compressedConns.Load(), clients)
		}
		// Each client sent 4 messages of at least the threshold (compressed),
		// each echoed compressed.
		if in, out := ts.stats.Inflated.Load(), ts.stats.Deflated.Load(); in != 4*clients || out != 4*clients {
			t.Fatalf("server inflated %d, deflated %d messages; want %d each", in, out, 4*clients)
		}

		// coder/websocket, with and without compression, in the room.
		waitFor(t, "the Dialer's connections out of the room", func() bool { return room.Len() == 0 })
		var ws []*websocket.Conn
		for _, mode := range []websocket.CompressionMode{websocket.CompressionNoContextTakeover, websocket.CompressionContextTakeover, websocket.CompressionDisabled} {
			ws = append(ws, ts.dialWS("/", &websocket.DialOptions{CompressionMode: mode}))
		}
		waitFor(t, "3 room members", func() bool { return room.Len() == 3 })
		deflatedBefore := ts.stats.Deflated.Load()
		msg := compressible(99, 20000)
		if err := room.Publish(session.Text, msg); err != nil {
			t.Fatal(err)
		}
		for i, c := range ws {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			_, got, err := c.Read(ctx)
			cancel()
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("member %d: %v, %d bytes", i, err, len(got))
			}
			c.Close(websocket.StatusNormalClosure, "")
		}
		if n := ts.stats.Deflated.Load() - deflatedBefore; n != 2 {
			t.Fatalf("%d members got the compressed frame, want 2", n)
		}
		ts.finish()
	})
}

// ---- Node's ws ----

// nodeWS returns the node binary and the folder of the interop scripts
// (loop/testdata/node, with ws installed by npm ci there), or skips.
func nodeWS(t *testing.T) (node, dir string) {
	t.Helper()
	dir, _ = filepath.Abs("testdata/node")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and ws are required in CI (npm ci --prefix loop/testdata/node): %v", err)
		}
		t.Skipf("node or ws missing (npm ci --prefix loop/testdata/node); skipped outside CI: %v", err)
	}
	return node, dir
}

// TestInteropNodeClient: Node's ws client with permessage-deflate against
// every server engine: text and binary messages from 0 bytes to 256 KiB,
// whole and in compressed fragments, all echoed intact, compressed both
// ways.
func TestInteropNodeClient(t *testing.T) {
	node, dir := nodeWS(t)
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.Compression = &session.Compression{}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "echo_client.js"), "ws://"+ts.addr+"/").CombinedOutput()
		var res struct {
			Extensions string
			OK         int
			Code       int
			Errors     []string
		}
		if jerr := json.Unmarshal(lastLine(out), &res); jerr != nil || err != nil {
			t.Fatalf("node client: %v, %v\n%s", err, jerr, out)
		}
		if !strings.HasPrefix(res.Extensions, "permessage-deflate") || res.Code != 1000 || len(res.Errors) != 0 || res.OK != 22 {
			t.Fatalf("node client: %+v", res)
		}
		if ts.stats.Inflated.Load() == 0 || ts.stats.Deflated.Load() == 0 || ts.stats.Compressed.Load() != 1 {
			t.Fatalf("compression not in use: %d inflated, %d deflated, %d conns", ts.stats.Inflated.Load(), ts.stats.Deflated.Load(), ts.stats.Compressed.Load())
		}
		ts.finish()
	})
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// TestInteropNodeServer: the Dialer with compression against Node's ws
// server: echoes intact both ways; with client_max_window_bits=9 the
// Dialer compresses within a 512-byte window, which zlib on the other side
// enforces (a match reaching further back fails the message there).
func TestInteropNodeServer(t *testing.T) {
	node, dir := nodeWS(t)
	for _, bits := range []int{0, 9} {
		t.Run("client_max_window_bits="+strconv.Itoa(bits), func(t *testing.T) {
			cmd := exec.Command(node, filepath.Join(dir, "echo_server.js"), strconv.Itoa(bits))
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-done
				}
			}()
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var port int
			select {
			case l := <-lines:
				if _, err := fmt.Sscanf(l, "listening %d", &port); err != nil {
					t.Fatalf("node server said %q", l)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("node server did not start")
			}
			d, err := loop.NewDialer(loop.DialerOptions{Loops: 1, Session: session.Config{Compression: &session.Compression{}}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			sizes := []int{300, 2000, 40000, 200000}
			type result struct {
				compressed bool
				echoes     int
				code       session.StatusCode
				err        error
			}
			done := make(chan result, 1)
			var r result
			h := session.HandlerFuncs{
				Open: func(c *session.Conn) {
					r.compressed = c.Compressed()
					_ = c.Send(session.Binary, compressible(1, sizes[0]))
				},
				Message: func(c *session.Conn, op session.Opcode, p []byte) {
					if !bytes.Equal(p, compressible(1, sizes[r.echoes])) {
						_ = c.Close(session.StatusPolicy, "wrong echo")
						return
					}
					if r.echoes++; r.echoes == len(sizes) {
						_ = c.Close(session.StatusNormal, "")
						return
					}
					_ = c.Send(session.Binary, compressible(1, sizes[r.echoes]))
				},
				Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
					r.code, r.err = code, err
					done <- r
				},
			}
			raddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
			if err := d.Dial(raddr, nil, &session.ClientRequest{Host: raddr.String(), Path: "/"}, h); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if !r.compressed || r.echoes != len(sizes) || r.code != session.StatusNormal {
					t.Fatalf("compressed %v, %d echoes, close %d (%v)", r.compressed, r.echoes, r.code, r.err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no result within 20s")
			}
			var ext string
			for l := range lines {
				if strings.HasPrefix(l, "extensions ") {
					ext = l
				}
				if strings.HasPrefix(l, "closed ") || strings.HasPrefix(l, "error ") {
					if l != "closed 1000" {
						t.Fatalf("node server: %s", l)
					}
					break
				}
			}
			t.Logf("node server: %s", ext)
			if !strings.Contains(ext, "server_no_context_takeover") || bits != 0 && !strings.Contains(ext, "client_max_window_bits="+strconv.Itoa(bits)) {
				t.Fatalf("node server negotiated %s, want client_max_window_bits %d", ext, bits)
			}
		})
	}
}
