package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
)

// newBackend starts a Backend that is closed when the test ends (call it
// before serve) and waits until it runs.
func newBackend(t *testing.T, opts BackendOptions) *Backend {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = new(logBuffer).logger()
	}
	if opts.RestartMin == 0 {
		opts.RestartMin = 20 * time.Millisecond
	}
	if opts.TermDelay == 0 {
		opts.TermDelay, opts.KillDelay = 200*time.Millisecond, 200*time.Millisecond
	}
	b, err := NewBackend(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { b.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("Backend.Close still waiting after 15s: %+v", b.Stats())
		}
	})
	eventually(t, "the backend to run", func() bool { return b.Stats().Up })
	return b
}

// TestBackendExamples runs the example backends: the C echo (text with
// escapes, binary), the shell broadcast (everyone gets every message) and
// the Python chat (rooms).
func TestBackendExamples(t *testing.T) {
	echo := compileC(t, "../examples/backend/echo.c")
	for _, engine := range engines {
		t.Run("c-echo/"+engine, func(t *testing.T) {
			noLeaks(t)
			b := newBackend(t, BackendOptions{Command: []string{echo}})
			s := serve(t, engine, routes{"/echo": b.Upgrade}, nil, nil)
			c := dial(t, s.addr, "/echo", nil)
			for _, m := range []string{"hi", "h\u00e9llo \"quoted\" \\ back\\slash\nnew line\ttab \x01", strings.Repeat("long ", 50_000)} {
				write(t, c, websocket.MessageText, m)
				if got := readText(t, c); got != m {
					t.Fatalf("echo %.30q: %.30q", m, got)
				}
			}
			bin := []byte{0, 1, 2, 255, '\n', '"'}
			if err := c.Write(testCtx(t, 5*time.Second), websocket.MessageBinary, bin); err != nil {
				t.Fatal(err)
			}
			typ, got, err := c.Read(testCtx(t, 5*time.Second))
			if err != nil || typ != websocket.MessageBinary || string(got) != string(bin) {
				t.Fatalf("binary echo: %v %v %v", typ, got, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			eventually(t, "the close event", func() bool { return b.Stats().Closed == 1 })
			if st := b.Stats(); st.Opened != 1 || st.Messages != 4 || st.Commands != 4 || st.BadCommands != 0 || st.Conns != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	t.Run("sh-broadcast", func(t *testing.T) {
		noLeaks(t)
		b := newBackend(t, BackendOptions{Command: []string{program(t, "../examples/backend/broadcast.sh")}})
		s := serve(t, "epoll", routes{"/all": b.Upgrade}, nil, nil)
		a := dial(t, s.addr, "/all", nil)
		c := dial(t, s.addr, "/all", nil)
		eventually(t, "both to join", func() bool { return b.Stats().Commands == 2 })
		write(t, a, websocket.MessageText, `hello "all" \o/`)
		for _, conn := range []*websocket.Conn{a, c} {
			if got := readText(t, conn); got != `hello "all" \o/` {
				t.Fatalf("got %q", got)
			}
		}
	})
	t.Run("py-chat", func(t *testing.T) {
		needPython(t)
		noLeaks(t)
		b := newBackend(t, BackendOptions{Command: []string{program(t, "../examples/backend/chat.py")}})
		s := serve(t, "epoll", routes{"/rooms": b.Upgrade}, nil, nil)
		alice := dial(t, s.addr, "/rooms?room=r1&nick=alice", nil)
		if got := readText(t, alice); got != "* alice joined" {
			t.Fatalf("alice got %q", got)
		}
		bob := dial(t, s.addr, "/rooms?room=r1&nick=bob", nil)
		if got := readText(t, alice); got != "* bob joined" {
			t.Fatalf("alice got %q", got)
		}
		if got := readText(t, bob); got != "* bob joined" {
			t.Fatalf("bob got %q", got)
		}
		carol := dial(t, s.addr, "/rooms?room=r2&nick=carol", nil)
		if got := readText(t, carol); got != "* carol joined" {
			t.Fatalf("carol got %q", got)
		}
		write(t, alice, websocket.MessageText, "hi r1")
		write(t, carol, websocket.MessageText, "hi r2")
		for _, c := range []*websocket.Conn{alice, bob} {
			if got := readText(t, c); got != "alice: hi r1" {
				t.Fatalf("got %q", got)
			}
		}
		if got := readText(t, carol); got != "carol: hi r2" {
			t.Fatalf("carol got %q (r1's message leaked into r2?)", got)
		}
		bob.Close(websocket.StatusNormalClosure, "")
		if got := readText(t, alice); got != "* bob left" {
			t.Fatalf("alice got %q", got)
		}
	})
}

// TestBackendThousand: 1,000 concurrent connections, three messages each,
// through a Python backend that counts its events: every open, message
// and close arrives exactly once, messages in order, none without its open.
func TestBackendThousand(t *testing.T) {
	needPython(t)
	noLeaks(t)
	b := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/count.py")}})
	s := serve(t, "epoll", routes{"/count": b.Upgrade}, nil, nil)
	const conns, msgs = 1000, 3
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := make(chan struct{})
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/count", nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			<-start // all open at once
			for n := 0; n < msgs; n++ {
				if err := c.Write(ctx, websocket.MessageText, []byte(strconv.Itoa(n))); err != nil {
					errs <- err
					return
				}
				if _, got, err := c.Read(ctx); err != nil || string(got) != strconv.Itoa(n) {
					errs <- fmt.Errorf("echo %d: %q %v", n, got, err)
					return
				}
			}
			c.Close(websocket.StatusNormalClosure, "done")
		}()
	}
	eventually(t, "1,000 connections", func() bool { return b.Stats().Conns == conns || len(errs) > 0 })
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctl := dial(t, s.addr, "/count?control", nil)
	var got map[string]any
	eventually(t, "every close event", func() bool {
		write(t, ctl, websocket.MessageText, "report")
		if err := json.Unmarshal([]byte(readText(t, ctl)), &got); err != nil {
			t.Fatal(err)
		}
		return got["closes"] == float64(conns)
	})
	for k, want := range map[string]float64{"opens": conns, "closes": conns, "messages": conns * msgs,
		"dup_open": 0, "dup_close": 0, "orphan": 0, "out_of_order": 0} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (report %v)", k, got[k], want, got)
		}
	}
	if st := b.Stats(); st.Opened != conns+1 || st.Closed != conns || st.Refused != 0 || st.Overloaded != 0 || st.BadCommands != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestBackendKilled: the backend killed mid-run. Every connection it had is
// closed with 1012; the backend is restarted and told so (hello with
// restarts 1) and new connections work; nothing of the first is left.
func TestBackendKilled(t *testing.T) {
	needPython(t)
	noLeaks(t)
	b := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/count.py")}})
	s := serve(t, "epoll", routes{"/count": b.Upgrade}, nil, nil)
	const n = 50
	var cs []*websocket.Conn
	for i := 0; i < n; i++ {
		c := dial(t, s.addr, "/count", nil)
		write(t, c, websocket.MessageText, "0")
		if got := readText(t, c); got != "0" {
			t.Fatalf("got %q", got)
		}
		cs = append(cs, c)
	}
	pid := int(b.pid.Load())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		code, reason := closeStatus(t, c, nil)
		if code != 1012 || reason != "the backend is restarting" {
			t.Fatalf("close %d %q, want 1012", code, reason)
		}
	}
	eventually(t, "the restart", func() bool { st := b.Stats(); return st.Up && st.Restarts == 1 })
	if !alive(int(b.pid.Load())) || alive(pid) {
		t.Errorf("old backend %d alive %v, new %d alive %v", pid, alive(pid), b.pid.Load(), alive(int(b.pid.Load())))
	}
	c := dial(t, s.addr, "/count", nil)
	write(t, c, websocket.MessageText, "0")
	if got := readText(t, c); got != "0" {
		t.Fatalf("after the restart: %q", got)
	}
	ctl := dial(t, s.addr, "/count?control", nil)
	write(t, ctl, websocket.MessageText, "report")
	var rep struct {
		Opens, Closes int
		Hello         struct{ Restarts int }
	}
	if err := json.Unmarshal([]byte(readText(t, ctl)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Opens != 1 || rep.Closes != 0 || rep.Hello.Restarts != 1 {
		t.Errorf("the new backend saw %+v, want 1 open and hello restarts 1", rep)
	}
	if st := b.Stats(); st.Conns != 2 {
		t.Errorf("conns %d, want 2 (the old ones forgotten)", st.Conns)
	}
}

// TestBackendSlow: a backend that does not read. Once the pipe and the
// queue are full, a message closes its connection with 1013 and new
// upgrades get 503, both counted; the queue stays at its bound (plus the
// close events); Close still stops everything.
func TestBackendSlow(t *testing.T) {
	noLeaks(t)
	const bound = 32 << 10
	b := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/deaf.sh")}, QueueBytes: bound})
	s := serve(t, "epoll", routes{"/deaf": b.Upgrade}, nil, nil)
	msg := strings.Repeat("q", 4<<10)
	// Each connection floods until it is closed for it; the kernel pipe
	// (64 KiB) fills first, then the queue, then upgrades are refused.
	refused := false
	for i := 0; i < 10 && !refused; i++ {
		c, resp, err := websocket.Dial(testCtx(t, 10*time.Second), "ws://"+s.addr+"/deaf", nil)
		if err != nil {
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("dial: %v %v, want 101 or 503", err, resp)
			}
			refused = true
			break
		}
		go func() {
			for i := 0; i < 100; i++ {
				if c.Write(context.Background(), websocket.MessageText, []byte(msg)) != nil {
					return
				}
			}
		}()
		code, reason := closeStatus(t, c, nil)
		c.CloseNow()
		if code != websocket.StatusTryAgainLater || reason != "the backend is too slow: try again later" {
			t.Fatalf("close %d %q, want 1013", code, reason)
		}
	}
	if !refused {
		t.Fatalf("no upgrade refused: %+v", b.Stats())
	}
	eventually(t, "every close to reach the bridge", func() bool { st := b.Stats(); return st.Opened == st.Closed && st.Conns == 0 })
	st := b.Stats()
	if st.Overloaded < 1 || st.Refused != 1 || st.QueueBytes < bound || st.QueueBytes > bound+8<<10+int(st.Closed)*64 {
		t.Errorf("stats %+v", st)
	}
	if st.Opened != st.Closed || st.Conns != 0 {
		t.Errorf("opened %d, closed %d, still open %d", st.Opened, st.Closed, st.Conns)
	}
}

// TestBackendSocket: a backend reached over a Unix socket (the C echo in
// its listening mode); when it goes, connections get 1012, and wsloop
// reconnects once it is back.
func TestBackendSocket(t *testing.T) {
	noLeaks(t)
	echo := compileC(t, "../examples/backend/echo.c")
	sock := filepath.Join(t.TempDir(), "echo.sock")
	listen := func() *exec.Cmd {
		cmd := exec.Command(echo, sock)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		eventually(t, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })
		return cmd
	}
	first := listen()
	b := newBackend(t, BackendOptions{Socket: "unix://" + sock})
	s := serve(t, "epoll", routes{"/echo": b.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/echo", nil)
	write(t, c, websocket.MessageText, "over the socket")
	if got := readText(t, c); got != "over the socket" {
		t.Fatalf("got %q", got)
	}
	first.Process.Kill()
	first.Wait()
	os.Remove(sock)
	if code, _ := closeStatus(t, c, nil); code != 1012 {
		t.Fatalf("close %d, want 1012", code)
	}
	listen()
	eventually(t, "the reconnect", func() bool { st := b.Stats(); return st.Up && st.Restarts >= 1 })
	c = dial(t, s.addr, "/echo", nil)
	write(t, c, websocket.MessageText, "again")
	if got := readText(t, c); got != "again" {
		t.Fatalf("got %q", got)
	}
}

// TestBackendCommands drives every command through a puppet backend: join,
// publish and leave rooms, broadcast, send to another connection, close with
// a code; bad lines are counted and skipped; ids of no open connection are
// dropped.
func TestBackendCommands(t *testing.T) {
	needPython(t)
	noLeaks(t)
	var logs logBuffer
	b := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/puppet.py")}, Logger: logs.logger()})
	s := serve(t, "epoll", routes{"/p": b.Upgrade}, nil, nil)
	type client struct {
		c  *websocket.Conn
		id string
	}
	open := func() client {
		c := dial(t, s.addr, "/p", nil)
		id := readText(t, c)
		if !strings.HasPrefix(id, "id:") {
			t.Fatalf("first message %q", id)
		}
		return client{c, strings.TrimPrefix(id, "id:")}
	}
	a, bb, c := open(), open(), open()
	cmd := func(cl client, v map[string]any) {
		t.Helper()
		js, _ := json.Marshal(v)
		write(t, cl.c, websocket.MessageText, string(js))
	}
	expect := func(cl client, want string) {
		t.Helper()
		if got := readText(t, cl.c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	cmds := func(want uint64) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d commands", want), func() bool { return b.Stats().Commands >= want })
	}
	cmds(3) // the three id sends
	cmd(a, map[string]any{"cmd": "join", "room": "r"})
	cmd(bb, map[string]any{"cmd": "join", "room": "r"})
	cmds(5)
	cmd(c, map[string]any{"cmd": "publish", "room": "r", "text": "to r"})
	expect(a, "to r")
	expect(bb, "to r")
	cmd(bb, map[string]any{"cmd": "leave", "room": "r"})
	cmds(7)
	cmd(c, map[string]any{"cmd": "publish", "room": "r", "binary": "AAE="})
	if typ, p, err := a.c.Read(testCtx(t, 5*time.Second)); err != nil || typ != websocket.MessageBinary || string(p) != "\x00\x01" {
		t.Fatalf("binary publish: %v %q %v", typ, p, err)
	}
	cmd(a, map[string]any{"cmd": "broadcast", "text": "to all"})
	for _, cl := range []client{a, bb, c} {
		expect(cl, "to all")
	}
	cmd(a, map[string]any{"cmd": "send", "id": c.id, "text": "a to c"})
	expect(c, "a to c")

	// Bad lines: each counted, the backend goes on.
	for _, raw := range []string{"not json", `{"cmd":"nope"}`, `{"text":"no cmd"}`,
		`{"cmd":"send","id":"` + a.id + `"}`, `{"cmd":"send","id":"` + a.id + `","binary":"%%%"}`,
		`{"cmd":"close","id":"` + a.id + `","code":1006}`, `{"cmd":"join","id":"` + a.id + `"}`,
		`{"cmd":"send","id":"` + a.id + `","text":"x"} trailing`} {
		write(t, a.c, websocket.MessageText, "raw:"+raw)
	}
	eventually(t, "8 bad commands", func() bool { return b.Stats().BadCommands == 8 })
	if !strings.Contains(logs.String(), "bad backend command") {
		t.Errorf("bad commands not logged:\n%s", logs.String())
	}
	// Ids of no open connection (never used, or closed) are dropped, not sent.
	before := b.Stats().Dropped
	for _, id := range []string{"9999.1", "0.99", "x.1", ""} {
		write(t, a.c, websocket.MessageText, `raw:{"cmd":"send","id":"`+id+`","text":"nobody"}`)
	}
	eventually(t, "4 sends dropped", func() bool { return b.Stats().Dropped == before+4 })
	write(t, a.c, websocket.MessageText, "still here")
	expect(a, "still here")

	cmd(c, map[string]any{"cmd": "close", "code": 4001, "reason": "bye now"})
	if code, reason := closeStatus(t, c.c, nil); code != 4001 || reason != "bye now" {
		t.Errorf("close %d %q, want 4001", code, reason)
	}
	// Closed connections leave their rooms: a left over in "r", alone.
	a.c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "rooms to empty", func() bool {
		b.roomsMu.Lock()
		defer b.roomsMu.Unlock()
		return len(b.rooms) == 0 && len(b.members) == 0
	})
}

// TestBackendOpenEvent checks an open event's fields by value, with the
// default header list and with every header ("*").
func TestBackendOpenEvent(t *testing.T) {
	needPython(t)
	noLeaks(t)
	some := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/puppet.py")}})
	all := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/puppet.py")}, Headers: []string{"*"}})
	s := serve(t, "epoll", routes{"/some": some.Upgrade, "/all": all.Upgrade}, nil, func(o *loop.Options) {
		o.Session.AllowedOrigins = []string{"http://example.test"}
	})
	h := http.Header{"Origin": {"http://" + "example.test"}, "User-Agent": {"probe/1 \"quoted\""}, "X-Other": {"o1"}}
	for _, c := range []struct {
		path    string
		other   bool
		headers int
	}{{"/some", false, 2}, {"/all", true, 0}} {
		conn := dial(t, s.addr, c.path+"?showopen&x=%20y", &websocket.DialOptions{HTTPHeader: h})
		line, ok := strings.CutPrefix(readText(t, conn), "open:")
		if !ok {
			t.Fatalf("first message %q", line)
		}
		id := strings.TrimPrefix(readText(t, conn), "id:")
		if !strings.HasPrefix(line, `{"event":"open","id":"`+id+`","path":`) {
			t.Errorf("fields out of order: %s", line)
		}
		var ev struct {
			Event, ID, Path, Query, Remote string
			Headers                        map[string]string
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if ev.Event != "open" || ev.ID != id || ev.Path != c.path || ev.Query != "showopen&x=%20y" ||
			!strings.HasPrefix(ev.Remote, "127.0.0.1:") || ev.Headers["Origin"] != "http://example.test" ||
			ev.Headers["User-Agent"] != `probe/1 "quoted"` {
			t.Errorf("%s: %+v", c.path, ev)
		}
		if _, got := ev.Headers["X-Other"]; got != c.other {
			t.Errorf("%s: X-Other present %v, want %v", c.path, got, c.other)
		}
		if c.headers > 0 && len(ev.Headers) != c.headers {
			t.Errorf("%s: headers %v, want only Origin and User-Agent", c.path, ev.Headers)
		}
		if c.other && (ev.Headers["Upgrade"] != "websocket" || ev.Headers["Host"] != s.addr) {
			t.Errorf("%s: headers %v lack Upgrade or Host", c.path, ev.Headers)
		}
	}
}

// TestBackendSlowClient: a client that does not read gets the server's
// Overflow policy (the default: closed with 1008 as a slow consumer) and
// the sends after are counted as dropped; the backend is not held up: the
// other clients' echoes go on meanwhile.
func TestBackendSlowClient(t *testing.T) {
	needPython(t)
	noLeaks(t)
	b := newBackend(t, BackendOptions{Command: []string{program(t, "testdata/flooder.py")}})
	// The slow consumer's close frame waits behind what it does not read:
	// the close handshake times out (CloseTimeout) before OnClose.
	s := serve(t, "epoll", routes{"/f": b.Upgrade}, nil, func(o *loop.Options) { o.Session.CloseTimeout = 300 * time.Millisecond })
	slow := dial(t, s.addr, "/f", nil)
	fast := dial(t, s.addr, "/f", nil)
	write(t, slow, websocket.MessageText, "flood:1500") // 12 MB, more than the socket buffers hold
	eventually(t, "the slow client to be closed", func() bool { return b.Stats().Closed == 1 })
	for i := 0; i < 20; i++ {
		msg := "still served " + strconv.Itoa(i)
		write(t, fast, websocket.MessageText, msg)
		if got := readText(t, fast); got != msg {
			t.Fatalf("got %q", got)
		}
	}
	eventually(t, "the flood to be dropped", func() bool { return b.Stats().Dropped > 0 })
	if st := b.Stats(); st.Conns != 1 || st.BadCommands != 0 {
		t.Errorf("stats %+v", st)
	}
}
