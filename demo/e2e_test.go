package demo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/servetest"
	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/loop"
	_ "github.com/wsloop/wsloop/loop/gnet" // the gnet engine, opt-in
	"github.com/wsloop/wsloop/session"
)

var engines = []string{"epoll", "gnet", "goroutine"}

// serve starts the demo on a real server with engine on 127.0.0.1:0.
// extra, when set, serves /selftest-report (the browser test's verdict).
// serve runs the demo on engine; origins are the browser origins allowed
// besides the server's own.
func serve(t *testing.T, engine string, opts Options, extra http.Handler, origins ...string) (*loop.Server, *Demo, string) {
	t.Helper()
	return serveConfig(t, engine, opts, extra, session.Config{AllowedOrigins: origins})
}

// serveConfig is serve with a session.Config (its Upgrade is the demo's).
// An engine named "<engine>+tls" serves https and wss with the certificate
// of tlsCert.
func serveConfig(t *testing.T, engine string, opts Options, extra http.Handler, cfg session.Config) (*loop.Server, *Demo, string) {
	t.Helper()
	return serveWith(t, engine, opts, extra, cfg, nil)
}

// serveWith is serveConfig with the server's options adjusted by edit
// (after the demo's hooks are in them).
func serveWith(t *testing.T, engine string, opts Options, extra http.Handler, cfg session.Config, edit func(o *loop.Options)) (*loop.Server, *Demo, string) {
	t.Helper()
	engine, overTLS := strings.CutSuffix(engine, "+tls")
	var tlsConfig *tls.Config
	if overTLS {
		tlsConfig = tlsCert(t).ServerConfig()
	}
	d := New(opts)
	t.Cleanup(d.Close) // after the server's shutdown
	cfg.Upgrade = d.Upgrade
	var h http.Handler = d.Page()
	if extra != nil {
		mux := http.NewServeMux()
		mux.Handle("/", d.Page())
		mux.Handle("/selftest-report", extra)
		h = mux
	}
	lo := loop.Options{
		Engine:    engine,
		Loops:     2,
		Session:   cfg,
		HTTP:      h,
		LoopHTTP:  d.LoopHTTP,
		TLSConfig: tlsConfig,
	}
	if edit != nil {
		edit(&lo)
	}
	srv := servetest.Start(t, Echo, lo)
	return srv, d, srv.Addr().String()
}

// tlsCert is the test certificate of the "+tls" engines.
func tlsCert(t testing.TB) testcert.Cert { return testcert.Shared(t) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, addr, path string, header http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(ctx(t), "ws://"+addr+path, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	typ, b, err := c.Read(ctx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(b)
}

// expect reads text messages until want arrives, skipping join and leave
// announcements ("* ...") and failing on any other message.
func expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	for i := 0; i < 20; i++ {
		_, got := read(t, c)
		if got == want {
			return
		}
		if !strings.HasPrefix(got, "* ") {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	t.Fatalf("no %q in 20 messages", want)
}

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

func TestEcho(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, _, addr := serve(t, engine, Options{}, nil)
			c := dial(t, addr, "/ws/echo", nil)
			for _, m := range []struct {
				typ  websocket.MessageType
				data string
			}{
				{websocket.MessageText, "héllo ✓"},
				{websocket.MessageBinary, "\x00\x01\xfe\xff"},
				{websocket.MessageText, strings.Repeat("x", 70_000)},
				{websocket.MessageText, ""},
			} {
				c.SetReadLimit(1 << 20)
				if err := c.Write(ctx(t), m.typ, []byte(m.data)); err != nil {
					t.Fatal(err)
				}
				typ, got := read(t, c)
				if typ != m.typ || got != m.data {
					t.Fatalf("echo of %v %d bytes: %v %d bytes", m.typ, len(m.data), typ, len(got))
				}
			}
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

func TestChat(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, d, addr := serve(t, engine, Options{}, nil)
			a := dial(t, addr, "/ws/chat?room=r1&nick=alice", nil)
			expect(t, a, "* alice joined")
			b := dial(t, addr, "/ws/chat?room=r1&nick=bob", nil)
			expect(t, a, "* bob joined")
			expect(t, b, "* bob joined")
			g := dial(t, addr, "/ws/chat?room=r2", nil) // another room, a guest
			_, joined := read(t, g)
			if !strings.HasPrefix(joined, "* guest-") || !strings.HasSuffix(joined, " joined") {
				t.Fatalf("guest join: %q", joined)
			}
			guest := strings.TrimSuffix(strings.TrimPrefix(joined, "* "), " joined")
			if d.Chat.Rooms() != 2 || d.Chat.Members("r1") != 2 || d.Chat.Members("r2") != 1 {
				t.Fatalf("rooms %d, r1 %d, r2 %d", d.Chat.Rooms(), d.Chat.Members("r1"), d.Chat.Members("r2"))
			}

			if err := a.Write(ctx(t), websocket.MessageText, []byte("hi bob")); err != nil {
				t.Fatal(err)
			}
			expect(t, a, "alice: hi bob")
			expect(t, b, "alice: hi bob")
			if err := g.Write(ctx(t), websocket.MessageText, []byte("anyone?")); err != nil {
				t.Fatal(err)
			}
			expect(t, g, guest+": anyone?")
			if err := b.Write(ctx(t), websocket.MessageText, []byte("hi alice")); err != nil {
				t.Fatal(err)
			}
			// r1 never saw r2's message: the next message in r1 is bob's.
			if _, got := read(t, a); got != "bob: hi alice" {
				t.Fatalf("alice read %q, want bob's message", got)
			}

			b.Close(websocket.StatusNormalClosure, "")
			expect(t, a, "* bob left")
			// A binary message is not chat: 1003.
			if err := g.Write(ctx(t), websocket.MessageBinary, []byte{1}); err != nil {
				t.Fatal(err)
			}
			_, _, err := g.Read(ctx(t))
			if code := websocket.CloseStatus(err); code != websocket.StatusUnsupportedData {
				t.Fatalf("binary chat message: %v, want close 1003", err)
			}
			a.Close(websocket.StatusNormalClosure, "")
			eventually(t, "empty rooms removed", func() bool { return d.Chat.Rooms() == 0 })
		})
	}
}

func TestPush(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, d, addr := serve(t, engine, Options{PushInterval: 20 * time.Millisecond}, nil)
			c1 := dial(t, addr, "/ws/push", nil)
			c2 := dial(t, addr, "/ws/push", nil)
			type reading struct {
				T    time.Time
				Temp *float64
				Seq  uint64
			}
			last := map[*websocket.Conn]uint64{}
			for i := 0; i < 5; i++ {
				for _, c := range []*websocket.Conn{c1, c2} {
					typ, m := read(t, c)
					var r reading
					if err := json.Unmarshal([]byte(m), &r); err != nil || typ != websocket.MessageText || r.Temp == nil || r.T.IsZero() {
						t.Fatalf("reading %q (%v): %v", m, typ, err)
					}
					if r.Seq <= last[c] {
						t.Fatalf("seq %d after %d", r.Seq, last[c])
					}
					last[c] = r.Seq
				}
			}
			if n := d.Push.Subscribers(); n != 2 {
				t.Fatalf("subscribers %d, want 2", n)
			}
			c1.CloseNow()
			eventually(t, "one subscriber", func() bool { return d.Push.Subscribers() == 1 })
			// Close stops the ticker: no reading arrives afterwards, bounded wait.
			d.Close()
			// drain what was in flight, then nothing more in 300 ms
			for {
				rc, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				_, _, err := c2.Read(rc)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("read after Close: %v", err)
					}
					break
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, _, addr := serve(t, engine, Options{}, nil, "http://good.test")
			cases := []struct {
				path, origin string
				status       int
			}{
				{"/ws/nope", "", 404},
				{"/ws/echo", "http://evil.test", 403},
				{"/ws/chat?room=a%20b", "", 400},
			}
			for _, c := range cases {
				h := http.Header{}
				if c.origin != "" {
					h.Set("Origin", c.origin)
				}
				_, resp, err := websocket.Dial(ctx(t), "ws://"+addr+c.path, &websocket.DialOptions{HTTPHeader: h})
				if err == nil || resp == nil || resp.StatusCode != c.status {
					code := 0
					if resp != nil {
						code = resp.StatusCode
					}
					t.Errorf("%s origin %q: err %v status %d, want %d", c.path, c.origin, err, code, c.status)
				}
			}
			c := dial(t, addr, "/ws/echo", http.Header{"Origin": {"http://good.test"}})
			c.CloseNow()
			c = dial(t, addr, "/ws/echo", http.Header{"Origin": {"http://" + addr}})
			c.CloseNow()
		})
	}
}

func TestPageOverHTTP(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, _, addr := serve(t, engine, Options{}, nil)
			cl := &http.Client{Timeout: 15 * time.Second}
			for _, c := range []struct {
				path, ctype, contains string
				status                int
			}{
				{"/", "text/html; charset=utf-8", "wsloop demo", 200},
				{"/app.js", "text/javascript; charset=utf-8", "selftest", 200},
				{"/healthz", "text/plain; charset=utf-8", "ok", 200},
				{"/nope", "text/plain; charset=utf-8", "not found", 404},
				{"/%2e%2e/go.mod", "text/plain; charset=utf-8", "not found", 404},
			} {
				resp, err := cl.Get("http://" + addr + c.path)
				if err != nil {
					t.Fatalf("GET %s: %v", c.path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.ctype || !strings.Contains(string(body), c.contains) {
					t.Errorf("GET %s: %d %q %.60q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
		})
	}
}

// TestRouterHandleFunc: a route that reads the live request (here a token in
// the query) and hands its connection a value.
func TestRouterHandleFunc(t *testing.T) {
	rt := NewRouter()
	rt.HandleFunc("/ws/private", func(r *session.Request) (session.Accept, error) {
		if r.Query().Get("token") != "s3cret" {
			return session.Accept{}, &session.RejectError{Status: http.StatusUnauthorized, Message: "token required"}
		}
		return session.Accept{Value: "user-7", Handler: session.HandlerFuncs{
			Open: func(c *session.Conn) { _ = c.Send(session.Text, []byte("hello "+c.Value().(string))) },
		}}, nil
	})
	srv := servetest.Start(t, Echo, loop.Options{Loops: 1, Session: session.Config{Upgrade: rt.Upgrade}})
	addr := srv.Addr().String()
	_, resp, err := websocket.Dial(ctx(t), "ws://"+addr+"/ws/private?token=wrong", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v %v, want 401", err, resp)
	}
	c := dial(t, addr, "/ws/private?token=s3cret", nil)
	if _, got := read(t, c); got != "hello user-7" {
		t.Fatalf("greeting %q", got)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}
