package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/loop"
)

var engines = []string{"epoll", "goroutine", "gnet"}

// newExec makes an Exec that is closed when the test ends. Call it before
// serve, so that it is closed after the server has shut down.
func newExec(t *testing.T, prog string, opts ExecOptions) *Exec {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = new(logBuffer).logger()
	}
	e, err := NewExec(prog, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { e.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("Exec.Close still waiting after 15s: %+v", e.Stats())
		}
	})
	return e
}

// pids returns the pids of the programs running now.
func (e *Exec) pids() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ps []int
	for ec := range e.live {
		ec.mu.Lock()
		if ec.proc != nil {
			ps = append(ps, ec.proc.pid())
		}
		ec.mu.Unlock()
	}
	return ps
}

func onePID(t *testing.T, e *Exec) int {
	t.Helper()
	var ps []int
	eventually(t, "the program to start", func() bool { ps = e.pids(); return len(ps) == 1 })
	return ps[0]
}

// TestExecEcho runs the example echo programs in shell and C on every
// engine: text (with UTF-8 and an empty line) and a 100 KB line come back
// unchanged; closing the connection ends the program (stdin EOF).
func TestExecEcho(t *testing.T) {
	progs := map[string]string{"sh": program(t, "../examples/exec/echo.sh"), "c": compileC(t, "../examples/exec/echo.c")}
	for _, engine := range engines {
		for name, prog := range progs {
			t.Run(engine+"/"+name, func(t *testing.T) {
				noLeaks(t)
				e := newExec(t, prog, ExecOptions{})
				s := serve(t, engine, routes{"/echo": e.Upgrade}, nil, nil)
				c := dial(t, s.addr, "/echo", nil)
				long := strings.Repeat("0123456789", 10_000)
				for _, m := range []string{"hello", "h\u00e9llo \u2713", "", long, "last"} {
					write(t, c, websocket.MessageText, m)
					if got := readText(t, c); got != m {
						t.Fatalf("echo of %.40q: %.40q (%d bytes)", m, got, len(got))
					}
				}
				c.Close(websocket.StatusNormalClosure, "")
				eventually(t, "the program to exit", func() bool { return e.Stats().Running == 0 })
				if st := e.Stats(); st.Started != 1 || st.StartErrors != 0 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

// TestExecCounter: a program pushing a count every 100 ms, reset by any
// message (Python, on a reader thread).
func TestExecCounter(t *testing.T) {
	needPython(t)
	noLeaks(t)
	e := newExec(t, program(t, "../examples/exec/counter.py"), ExecOptions{Args: []string{"0.1"}})
	s := serve(t, "epoll", routes{"/count": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/count", nil)
	for i := 1; i <= 5; i++ {
		if got := readText(t, c); got != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	write(t, c, websocket.MessageText, "reset")
	// One or two counts may have been on their way; then it starts again.
	var got []string
	for len(got) < 4 {
		got = append(got, readText(t, c))
	}
	i := 0
	for i < len(got) && got[i] != "1" {
		i++
	}
	if i > 2 || i+1 >= len(got) || got[i+1] != "2" {
		t.Fatalf("after the reset: %q, want 1, 2 within the first messages", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the program to exit", func() bool { return e.Stats().Running == 0 })
}

// TestExecExitStatus: a program's exit closes the connection, 1000 for
// status 0 and 1011 (with the status as reason) otherwise, after its last
// output.
func TestExecExitStatus(t *testing.T) {
	noLeaks(t)
	e := newExec(t, program(t, "testdata/exit.sh"), ExecOptions{})
	s := serve(t, "epoll", routes{"/exit": e.Upgrade}, nil, nil)
	for _, c := range []struct {
		status string
		code   websocket.StatusCode
		reason string
	}{
		{"0", websocket.StatusNormalClosure, ""},
		{"3", websocket.StatusInternalError, "program exit status 3"},
	} {
		conn := dial(t, s.addr, "/exit", nil)
		write(t, conn, websocket.MessageText, c.status)
		if got := readText(t, conn); got != "exiting with "+c.status {
			t.Fatalf("got %q", got)
		}
		code, reason := closeStatus(t, conn, nil)
		if code != c.code || reason != c.reason {
			t.Errorf("exit %s: close %d %q, want %d %q", c.status, code, reason, c.code, c.reason)
		}
	}
}

// TestExecCrash: a C program that dies of SIGSEGV closes the connection
// with 1011, its last line delivered first.
func TestExecCrash(t *testing.T) {
	noLeaks(t)
	prog := compileC(t, "testdata/crash.c")
	e := newExec(t, prog, ExecOptions{Dir: t.TempDir()})
	s := serve(t, "epoll", routes{"/crash": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/crash", nil)
	if got := readText(t, c); got != "about to crash" {
		t.Fatalf("got %q", got)
	}
	code, reason := closeStatus(t, c, nil)
	if code != websocket.StatusInternalError || reason != "program signal: segmentation fault" {
		t.Errorf("close %d %q, want 1011 for the crash", code, reason)
	}
}

// TestExecIgnoresStdin: a program that never reads gets the overflow
// policy: once the pipe and StdinBuffer are full the connection is closed
// with 1008, counted, and the program is stopped.
func TestExecIgnoresStdin(t *testing.T) {
	noLeaks(t)
	e := newExec(t, program(t, "testdata/ignore.sh"), ExecOptions{StdinBuffer: 16 << 10, TermDelay: 100 * time.Millisecond, KillDelay: 100 * time.Millisecond})
	s := serve(t, "epoll", routes{"/ignore": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/ignore", nil)
	if got := readText(t, c); got != "ready" {
		t.Fatalf("got %q", got)
	}
	pid := onePID(t, e)
	msg := strings.Repeat("z", 8<<10)
	go func() {
		// The kernel pipe (64 KiB on Linux) plus 16 KiB: 40 messages are
		// more than enough. Writes fail once the server has closed.
		for i := 0; i < 40; i++ {
			if c.Write(context.Background(), websocket.MessageText, []byte(msg)) != nil {
				return
			}
		}
	}()
	code, reason := closeStatus(t, c, nil)
	if code != websocket.StatusPolicyViolation || reason != "the program is not reading its input" {
		t.Errorf("close %d %q, want 1008", code, reason)
	}
	if st := e.Stats(); st.Overflows != 1 {
		t.Errorf("overflows %d, want 1", st.Overflows)
	}
	eventually(t, "the program to be stopped", func() bool { return !alive(pid) && e.Stats().Running == 0 })
}

// TestExecFloodBlocks: a program that writes as fast as it can to a client
// that does not read is blocked on its stdout pipe, the bridge holding at
// most its one read buffer; once the client reads, every line arrives, in
// order, none lost.
func TestExecFloodBlocks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/io")
	}
	needPython(t)
	noLeaks(t)
	e := newExec(t, program(t, "testdata/flood.py"), ExecOptions{TermDelay: 100 * time.Millisecond, KillDelay: 100 * time.Millisecond})
	s := serve(t, "epoll", routes{"/flood": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/flood", nil)
	pid := onePID(t, e)
	wchar := func() int64 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
		if err != nil {
			t.Skipf("cannot read /proc/%d/io: %v", pid, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "wchar: "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatalf("no wchar in /proc/%d/io", pid)
		return 0
	}
	// Blocked: nothing more written for 500 ms.
	var written int64
	last, same := int64(-1), 0
	eventually(t, "the program to block", func() bool {
		time.Sleep(100 * time.Millisecond)
		w := wchar()
		if w == last {
			same++
		} else {
			same = 0
		}
		last = w
		written = w
		// Not blocked before the pipe (64 KiB) is full: on a loaded
		// machine the program may just be slow to start.
		return same >= 5 && w > 64<<10
	})
	st := e.Stats()
	if st.Stalls == 0 {
		t.Errorf("no stall counted: %+v", st)
	}
	// The program is asleep in the kernel (the pipe is full), not running.
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || stat[i+2] != 'S' {
		t.Errorf("program state %q, want S (sleeping on the pipe)", stat)
	}
	t.Logf("blocked after %d bytes written (%d lines); %d stalls", written, written/100, st.Stalls)
	// What the bridge itself holds is one read buffer's worth of lines.
	if held := e.heldMax.Load(); held == 0 || held > readChunk {
		t.Errorf("the bridge held up to %d bytes of stdout; want 1..%d", held, readChunk)
	}
	// What the program wrote is in the pipe, the bridge's read buffer, the
	// connection's HighWater (64 KiB here) and the kernel's socket buffers:
	// megabytes, not the gigabytes an unbounded buffer would take.
	if written > 64<<20 {
		t.Errorf("%d bytes written before blocking: something buffers without bound", written)
	}
	// Everything written before the block arrives, in order.
	want := written / 100
	ctx := testCtx(t, 30*time.Second)
	for i := int64(1); i <= want; i++ {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if n, _ := strconv.ParseInt(string(b[:7]), 10, 64); n != i || len(b) != 99 {
			t.Fatalf("line %d: %.20q (%d bytes)", i, b, len(b))
		}
	}
	// The reader went on when the connection drained (OnDrain), not on
	// its fallback timer.
	if e.drains.Load() == 0 {
		t.Errorf("no OnDrain after %d stalls", e.Stats().Stalls)
	}
	c.CloseNow()
	eventually(t, "the program to be stopped", func() bool { return !alive(pid) && e.Stats().Running == 0 })
}

// TestExecEnv checks every CGI variable by value, mounted at a prefix (with
// PATH_INFO) and at an exact path, over ws and over wss (HTTPS=on).
func TestExecEnv(t *testing.T) {
	noLeaks(t)
	t.Setenv("WSLOOP_TEST_PASS", "passed")
	t.Setenv("WSLOOP_TEST_SECRET", "kept")
	prog := program(t, "testdata/env.sh")
	mounted := newExec(t, prog, ExecOptions{ScriptName: "/env/", PassEnv: []string{"WSLOOP_TEST_PASS"}, Env: []string{"EXTRA=1"}})
	exact := newExec(t, prog, ExecOptions{})
	cert := testcert.New(t)
	secure := newExec(t, prog, ExecOptions{TLS: true})
	rs := routes{"/exact": exact.Upgrade, "*": mounted.Upgrade}
	plain := serve(t, "epoll", rs, nil, nil)
	tlsSrv := serve(t, "goroutine", routes{"/secure": secure.Upgrade}, nil, func(o *loop.Options) {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	})

	// env dials path and returns the program's environment, and the
	// client's local address as the server saw it.
	env := func(addr, scheme, path string, h http.Header, rootCfg *tls.Config) (map[string]string, *net.TCPAddr) {
		var local *net.TCPAddr
		tr := &http.Transport{TLSClientConfig: rootCfg, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err == nil {
				local = nc.LocalAddr().(*net.TCPAddr)
			}
			return nc, err
		}}
		c, _, err := websocket.Dial(testCtx(t, 15*time.Second), scheme+"://"+addr+path,
			&websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		defer c.CloseNow()
		vars := map[string]string{}
		for {
			line := readText(t, c)
			if line == "END" {
				break
			}
			k, v, _ := strings.Cut(line, "=")
			vars[k] = v
		}
		c.Close(websocket.StatusNormalClosure, "")
		return vars, local
	}
	check := func(name string, got map[string]string, want map[string]string, absent ...string) {
		t.Helper()
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s=%q (set: %v), want %q", name, k, g, ok, v)
			}
		}
		for _, k := range absent {
			if v, ok := got[k]; ok {
				t.Errorf("%s: %s=%q is set", name, k, v)
			}
		}
	}

	h := http.Header{"X-Custom-Thing": {"v1"}, "Cookie": {"a=1", "b=2"}, "Proxy": {"http://evil"}, "X-Forwarded-For": {"203.0.113.9"}}
	got, local := env(plain.addr, "ws", "/env/extra/path?a=1&b=%20x", h, nil)
	_, port, _ := net.SplitHostPort(plain.addr)
	check("mounted", got, map[string]string{
		"GATEWAY_INTERFACE":          "CGI/1.1",
		"SERVER_SOFTWARE":            "wsloop",
		"SERVER_PROTOCOL":            "HTTP/1.1",
		"SERVER_NAME":                "127.0.0.1",
		"SERVER_PORT":                port,
		"REQUEST_METHOD":             "GET",
		"REQUEST_URI":                "/env/extra/path?a=1&b=%20x",
		"SCRIPT_NAME":                "/env",
		"PATH_INFO":                  "/extra/path",
		"QUERY_STRING":               "a=1&b=%20x",
		"REMOTE_ADDR":                "127.0.0.1",
		"REMOTE_HOST":                "127.0.0.1",
		"REMOTE_PORT":                strconv.Itoa(local.Port),
		"HTTP_HOST":                  plain.addr,
		"HTTP_UPGRADE":               "websocket",
		"HTTP_CONNECTION":            "Upgrade",
		"HTTP_SEC_WEBSOCKET_VERSION": "13",
		"HTTP_X_CUSTOM_THING":        "v1",
		"HTTP_X_FORWARDED_FOR":       "203.0.113.9",
		"HTTP_COOKIE":                "a=1; b=2",
		"WSLOOP_TEST_PASS":           "passed",
		"EXTRA":                      "1",
		"PATH":                       os.Getenv("PATH"),
	}, "HTTPS", "HTTP_PROXY", "WSLOOP_TEST_SECRET")

	got, _ = env(plain.addr, "ws", "/exact", nil, nil)
	check("exact", got, map[string]string{"SCRIPT_NAME": "/exact", "PATH_INFO": "", "QUERY_STRING": "", "REQUEST_URI": "/exact"},
		"HTTPS", "WSLOOP_TEST_PASS", "EXTRA")

	got, _ = env(tlsSrv.addr, "wss", "/secure?x=y", nil, &tls.Config{RootCAs: cert.Pool})
	_, tport, _ := net.SplitHostPort(tlsSrv.addr)
	check("tls", got, map[string]string{"HTTPS": "on", "SERVER_PORT": tport, "SCRIPT_NAME": "/secure", "QUERY_STRING": "x=y"})
}

// TestExecClientCloseStops: when the client leaves, stdin is closed first,
// then the group gets SIGTERM (which this program and its child ignore),
// then SIGKILL, which ends both.
func TestExecClientCloseStops(t *testing.T) {
	noLeaks(t)
	logFile := filepath.Join(t.TempDir(), "log")
	e := newExec(t, program(t, "testdata/stubborn.sh"), ExecOptions{Env: []string{"LOG=" + logFile},
		TermDelay: 200 * time.Millisecond, KillDelay: 300 * time.Millisecond})
	s := serve(t, "epoll", routes{"/stubborn": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/stubborn", nil)
	line := readText(t, c)
	child, err := strconv.Atoi(strings.TrimPrefix(line, "child "))
	if err != nil {
		t.Fatalf("first line %q", line)
	}
	pid := onePID(t, e)
	c.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, "program and child to be killed", func() bool { return !alive(pid) && !alive(child) })
	eventually(t, "the connection's goroutines to end", func() bool { return e.Stats().Running == 0 })
	b, _ := os.ReadFile(logFile)
	if string(b) != "EOF\nTERM\n" {
		t.Errorf("the program saw %q, want stdin closed, then SIGTERM", b)
	}
}

// TestExecLimit: past the cap upgrades get 503, counted; a place freed is
// taken again.
func TestExecLimit(t *testing.T) {
	noLeaks(t)
	lim := NewLimit(2)
	e := newExec(t, program(t, "../examples/exec/echo.sh"), ExecOptions{Limit: lim})
	s := serve(t, "epoll", routes{"/echo": e.Upgrade}, nil, nil)
	a := dial(t, s.addr, "/echo", nil)
	b := dial(t, s.addr, "/echo", nil)
	for _, c := range []*websocket.Conn{a, b} {
		write(t, c, websocket.MessageText, "up")
		readText(t, c)
	}
	_, resp, err := websocket.Dial(testCtx(t, 10*time.Second), "ws://"+s.addr+"/echo", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third dial: %v %v, want 503", err, resp)
	}
	if lim.Refused() != 1 || e.Stats().Refused != 1 || lim.Running() != 2 {
		t.Errorf("refused %d/%d running %d", lim.Refused(), e.Stats().Refused, lim.Running())
	}
	a.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a place to be freed", func() bool { return lim.Running() == 1 })
	c := dial(t, s.addr, "/echo", nil)
	write(t, c, websocket.MessageText, "again")
	if got := readText(t, c); got != "again" {
		t.Fatalf("got %q", got)
	}
}

// TestExecBinary: in binary mode bytes pass both ways unchanged, newlines
// and all (cat as the program).
func TestExecBinary(t *testing.T) {
	noLeaks(t)
	e := newExec(t, "cat", ExecOptions{Binary: true})
	s := serve(t, "epoll", routes{"/cat": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/cat", nil)
	want := []byte{0, 1, 2, '\n', 0xff, 0xfe, '\r', '\n', 'x'}
	if err := c.Write(testCtx(t, 5*time.Second), websocket.MessageBinary, want); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for len(got) < len(want) {
		typ, b, err := c.Read(testCtx(t, 10*time.Second))
		if err != nil || typ != websocket.MessageBinary {
			t.Fatalf("read %v %v", typ, err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestExecStderrLogged: stderr lines go to the log with the connection's
// path, remote address and the program's pid.
func TestExecStderrLogged(t *testing.T) {
	noLeaks(t)
	var logs logBuffer
	e := newExec(t, program(t, "testdata/stderr.sh"), ExecOptions{Logger: logs.logger()})
	s := serve(t, "epoll", routes{"/err": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/err", nil)
	write(t, c, websocket.MessageText, "too hot")
	if got := readText(t, c); got != "ok" {
		t.Fatalf("got %q", got)
	}
	pid := onePID(t, e)
	eventually(t, "the stderr line in the log", func() bool { return strings.Contains(logs.String(), "complaint: too hot") })
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "complaint: too hot") {
			line = l
		}
	}
	for _, want := range []string{"level=WARN", `msg="program stderr"`, "path=/err", "remote=127.0.0.1:", "pid=" + strconv.Itoa(pid), `line="complaint: too hot"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

// TestExecStartFailure: a program that cannot be started closes its
// connection with 1011, counted.
func TestExecStartFailure(t *testing.T) {
	noLeaks(t)
	prog := filepath.Join(t.TempDir(), "gone.sh")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newExec(t, prog, ExecOptions{})
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	s := serve(t, "epoll", routes{"/gone": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/gone", nil)
	code, reason := closeStatus(t, c, nil)
	if code != websocket.StatusInternalError || reason != "the program could not be started" {
		t.Errorf("close %d %q", code, reason)
	}
	if st := e.Stats(); st.StartErrors != 1 || st.Running != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestExecTextLines: invalid UTF-8 becomes U+FFFD, CRLF ends a line too, a
// line over MaxLine is split at rune boundaries, a last line without a
// newline is sent at EOF.
func TestExecTextLines(t *testing.T) {
	noLeaks(t)
	script := filepath.Join(t.TempDir(), "lines.sh")
	body := "#!/bin/sh\nprintf 'a\\377b\\r\\n'\nhead -c 2500 /dev/zero | tr '\\000' x; echo\nprintf '\\342\\234\\223%.0s' $(seq 400); echo\nprintf 'tail'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newExec(t, script, ExecOptions{MaxLine: 1000})
	s := serve(t, "epoll", routes{"/lines": e.Upgrade}, nil, nil)
	c := dial(t, s.addr, "/lines", nil)
	want := []string{"a\uFFFDb", strings.Repeat("x", 1000), strings.Repeat("x", 1000), strings.Repeat("x", 500),
		strings.Repeat("\u2713", 333), strings.Repeat("\u2713", 67), "tail"}
	for i, w := range want {
		if got := readText(t, c); got != w {
			t.Fatalf("message %d: %.30q (%d bytes), want %.30q (%d bytes)", i, got, len(got), w, len(w))
		}
	}
	if code, _ := closeStatus(t, c, nil); code != websocket.StatusNormalClosure {
		t.Errorf("close %d", code)
	}
}

func TestRuneCut(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{{"abc", 3}, {"ab\xe2\x9c", 2}, {"ab\xe2", 2}, {"ab\xe2\x9c\x93", 5}, {"\xe2\x9c", 2}, {"a\xff", 2}, {"", 0}} {
		if got := runeCut([]byte(c.in)); got != c.want {
			t.Errorf("runeCut(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
