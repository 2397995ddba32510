package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/logbuf"
	"github.com/wsloop/wsloop/internal/servetest"
	"github.com/wsloop/wsloop/loop"
	_ "github.com/wsloop/wsloop/loop/gnet" // the gnet engine, opt-in
	"github.com/wsloop/wsloop/session"
)

// routes is an UpgradeFunc by exact path, for tests.
type routes map[string]session.UpgradeFunc

func (rs routes) upgrade(r *session.Request) (session.Accept, error) {
	if fn, ok := rs[r.Path()]; ok {
		return fn(r)
	}
	if fn, ok := rs["*"]; ok {
		return fn(r)
	}
	return session.Accept{}, &session.RejectError{Status: http.StatusNotFound, Message: "no route"}
}

type testServer struct {
	srv  *loop.Server
	addr string
}

// serve starts a server on a free loopback port with rs (and h for plain
// HTTP); it is shut down when the test ends.
func serve(t *testing.T, engine string, rs routes, h http.Handler, tweak func(*loop.Options)) *testServer {
	t.Helper()
	opts := loop.Options{
		Engine:  engine,
		Loops:   2,
		Session: session.Config{Upgrade: rs.upgrade, HighWater: 64 << 10},
		HTTP:    h,
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv := servetest.Start(t, nil, opts)
	return &testServer{srv: srv, addr: srv.Addr().String()}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial connects to ws://addr+path; the connection is closed when the test ends.
func dial(t *testing.T, addr, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(testCtx(t, 15*time.Second), "ws://"+addr+path, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	c.SetReadLimit(8 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	typ, b, err := c.Read(testCtx(t, 15*time.Second))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read a %v message %q, want text", typ, b)
	}
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	if err := c.Write(testCtx(t, 15*time.Second), typ, []byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// closeStatus reads until the connection closes and returns the close status
// and reason the server sent, failing on messages other than those allowed.
func closeStatus(t *testing.T, c *websocket.Conn, allow func(string) bool) (websocket.StatusCode, string) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			t.Fatalf("read: %v, want a close frame", err)
		}
		if allow == nil || !allow(string(b)) {
			t.Fatalf("unexpected message %q before the close", b)
		}
	}
}

// eventually polls cond every 10 ms for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// program returns the absolute path of testdata/name (or of an example
// under ../examples).
func program(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// compileC builds a C source file with gcc into the test's temporary directory.
func compileC(t *testing.T, src string) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("gcc is required in CI: %v", err)
		}
		t.Skip("gcc not installed; skipped outside CI")
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c"))
	cmd := exec.Command(cc, "-O2", "-Wall", "-Werror", "-o", out, program(t, src))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", src, err, b)
	}
	return out
}

// needPython skips (outside CI) when python3 is missing.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not installed; skipped outside CI")
	}
}

// alive reports whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return runtime.GOOS != "linux"
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// openFDs counts this process's open descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// noLeaks records the goroutine and descriptor counts now and, when the
// test's other cleanups have run, waits for both to come back (failing with a
// goroutine dump when they do not within 10 s).
func noLeaks(t *testing.T) {
	t.Helper()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			http.DefaultClient.CloseIdleConnections()
			g, fd := runtime.NumGoroutine(), openFDs(t)
			if g <= g0 && fd <= fd0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("leak: %d goroutines (were %d), %d descriptors (were %d)\n%s", g, g0, fd, fd0, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// logBuffer is a goroutine-safe log destination.
type logBuffer struct{ logbuf.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tlsClient is an http.Client trusting cfg's roots, for wss dials.
func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}
