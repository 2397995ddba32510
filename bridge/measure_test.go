//go:build linux

package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/bench"
	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestMeasure measures the bridges beside a native Go handler. The server
// is this test binary in a server role (a loop.Server set up as wsloop sets
// it up, see measureServer), loaded by the built wsload in another process,
// with the C examples as programs. It is a measurement, not a unit test, so
// it runs only when asked:
//
//	WSLOOP_BRIDGE_MEASURE=1 go test ./bridge -run TestMeasure -v -timeout 30m
//
// WSLOOP_BRIDGE_CONNS sets the idle connections of the memory runs (default
// 19000), WSLOOP_BRIDGE_ECHO the length of each echo run (default 10s),
// WSLOOP_BRIDGE_EXEC the connections of the per-connection-program runs
// (default 200), WSLOOP_BRIDGE_REPS the repetitions of the memory runs
// (default 2, interleaved); WSLOOP_BRIDGE_PARTS picks parts (idle, echo,
// exec; default all), WSLOOP_BRIDGE_OUT names a file for the figures, and
// WSLOOP_BRIDGE_HEAPPROFILE=file makes each server record every allocation
// and write a heap profile there when it stops. It reports:
//
//   - memory per idle connection: the server's VmRSS growth per connection
//     (wsload idle -server-pid, no forced GC), each run in a fresh server:
//     the native Go echo handler (demo.Echo), the C shared backend
//     (examples/backend/echo.c), and the same without the peer address in
//     open events (BackendOptions.NoRemoteAddr); and the backend program's
//     own growth;
//   - echo messages per CPU-second: wsload echo (100 connections, 64-byte
//     messages, closed loop) against the native handler and through the C
//     backend, with the CPU of the server and of the backend from
//     /proc/PID/stat;
//   - what one per-connection-program connection costs: the server's growth
//     per connection and the programs' RSS and PSS (shared pages divided
//     among their users), for examples/exec/echo.c and examples/exec/echo.sh.
func TestMeasure(t *testing.T) {
	if os.Getenv("WSLOOP_BRIDGE_ROLE") == "server" {
		measureServer()
		os.Exit(0)
	}
	if os.Getenv("WSLOOP_BRIDGE_MEASURE") == "" {
		t.Skip("a measurement: set WSLOOP_BRIDGE_MEASURE=1 to run it")
	}
	conns := envInt("WSLOOP_BRIDGE_CONNS", 19000)
	execConns := envInt("WSLOOP_BRIDGE_EXEC", 200)
	reps := envInt("WSLOOP_BRIDGE_REPS", 2)
	echoFor := 10 * time.Second
	if v := os.Getenv("WSLOOP_BRIDGE_ECHO"); v != "" {
		echoFor, _ = time.ParseDuration(v)
	}
	parts := os.Getenv("WSLOOP_BRIDGE_PARTS")
	part := func(name string) bool { return parts == "" || strings.Contains(parts, name) }
	dir := t.TempDir()
	b := exec.Command("go", "build", "-o", filepath.Join(dir, "wsload"), "./cmd/wsload")
	b.Dir = ".."
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("build wsload: %v\n%s", err, out)
	}
	backend := compileC(t, "../examples/backend/echo.c")
	execC := compileC(t, "../examples/exec/echo.c")
	execSh := program(t, "../examples/exec/echo.sh")
	env := []string{"WSLOOP_BRIDGE_BACKEND=" + backend, "WSLOOP_BRIDGE_EXEC_C=" + execC, "WSLOOP_BRIDGE_EXEC_SH=" + execSh}

	var lines []string
	say := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		t.Log(s)
		lines = append(lines, s)
	}
	say("%d CPUs; %d idle connections x %d reps, echo %v, %d per-connection programs", cpus(), conns, reps, echoFor, execConns)

	// Memory per idle connection.
	for rep := 0; rep < reps && part("idle"); rep++ {
		for _, path := range []string{"/ws/echo", "/ws/backend", "/ws/backend-noremote"} {
			srv := startWsloop(t, env)
			kids := srv.children(t, backend)
			before := int64(0)
			for _, k := range kids {
				before += rss(t, k)
			}
			r := wsload(t, dir, "idle", "-url", "ws://"+srv.addr+path, "-conns", strconv.Itoa(conns),
				"-duration", "10s", "-server-pid", strconv.Itoa(srv.pid))
			after := int64(0)
			for _, k := range kids {
				after += rss(t, k)
			}
			say("idle %-21s server %5.0f B/conn (VmRSS %5.1f -> %5.1f MiB, %d held); backend programs %+.0f B/conn",
				path, r.ServerBytesPerConn, mib(r.ServerRSSBefore), mib(r.ServerRSSAfter), r.held(),
				float64(after-before)/float64(max(1, r.held())))
			srv.stop(t)
		}
	}

	// Echo messages per CPU-second.
	for _, path := range []string{"/ws/echo", "/ws/backend"} {
		if !part("echo") {
			break
		}
		srv := startWsloop(t, env)
		kids := srv.children(t, backend)
		bcpu := func() (s float64) {
			for _, k := range kids {
				s += cpu(t, k)
			}
			return s
		}
		s0, b0 := cpu(t, srv.pid), bcpu()
		r := wsload(t, dir, "echo", "-url", "ws://"+srv.addr+path, "-conns", "100", "-size", "64",
			"-duration", echoFor.String())
		s1, b1 := cpu(t, srv.pid), bcpu()
		msgs := float64(r.TrafficMsgs)
		line := fmt.Sprintf("echo %-12s %7.0f msg/s; server %5.2f CPU-s: %6.0f msg per server CPU-s", path,
			r.MessagesPerSec, s1-s0, msgs/(s1-s0))
		if path == "/ws/backend" {
			line += fmt.Sprintf("; backend %5.2f CPU-s: %6.0f msg per CPU-s of both", b1-b0, msgs/(s1-s0+b1-b0))
		}
		say("%s", line)
		srv.stop(t)
	}

	// One per-connection program.
	for _, c := range []struct{ path, prog string }{{"/ws/exec-c", execC}, {"/ws/exec-sh", execSh}} {
		if !part("exec") {
			break
		}
		srv := startWsloop(t, env)
		done := make(chan *loadReport, 1)
		go func() {
			done <- wsload(t, dir, "idle", "-url", "ws://"+srv.addr+c.path, "-conns", strconv.Itoa(execConns),
				"-duration", "8s", "-server-pid", strconv.Itoa(srv.pid))
		}()
		// Sample the programs while they are all running.
		var n int
		var rssSum, pssSum int64
		deadline := time.Now().Add(60 * time.Second)
		for n == 0 && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			kids := srv.children(t, c.prog)
			if len(kids) < execConns {
				continue
			}
			n = len(kids)
			for _, k := range kids {
				rssSum += rss(t, k)
				pssSum += pss(t, k)
			}
		}
		r := <-done
		if n == 0 {
			t.Fatalf("%s: the %d programs were never all running", c.path, execConns)
		}
		say("exec %-12s server %6.0f B/conn; per program: RSS %5.0f KiB, PSS %4.0f KiB (%d programs)",
			c.path, r.ServerBytesPerConn, float64(rssSum)/float64(n)/1024, float64(pssSum)/float64(n)/1024, n)
		srv.stop(t)
	}
	if out := os.Getenv("WSLOOP_BRIDGE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type wsloopProc struct {
	cmd   *exec.Cmd
	pid   int
	addr  string
	stdin io.WriteCloser
}

// measureServer is the server role of TestMeasure: a loop.Server as wsloop
// runs it (epoll, a loop per CPU, no pings), with the demo's native echo at
// /ws/echo, the C shared backend at /ws/backend (and without the peer
// address at /ws/backend-noremote), and the per-connection programs at
// /ws/exec-c and /ws/exec-sh. It prints "ADDR host:port" and serves until
// its stdin closes.
func measureServer() {
	if prof := os.Getenv("WSLOOP_BRIDGE_HEAPPROFILE"); prof != "" {
		// Every allocation recorded: for finding what a connection costs
		// (go tool pprof -sample_index=alloc_space); the RSS figures of such
		// a run are not the product's.
		runtime.MemProfileRate = 1
		defer func() {
			if f, err := os.Create(prof); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fail := func(err error) { fmt.Fprintln(os.Stderr, "measure server:", err); os.Exit(1) }
	be, err := NewBackend(BackendOptions{Command: []string{os.Getenv("WSLOOP_BRIDGE_BACKEND")}, Logger: quiet})
	if err != nil {
		fail(err)
	}
	beNR, err := NewBackend(BackendOptions{Command: []string{os.Getenv("WSLOOP_BRIDGE_BACKEND")}, Logger: quiet, NoRemoteAddr: true})
	if err != nil {
		fail(err)
	}
	ec, err := NewExec(os.Getenv("WSLOOP_BRIDGE_EXEC_C"), ExecOptions{Logger: quiet})
	if err != nil {
		fail(err)
	}
	es, err := NewExec(os.Getenv("WSLOOP_BRIDGE_EXEC_SH"), ExecOptions{Logger: quiet})
	if err != nil {
		fail(err)
	}
	rs := routes{"/ws/echo": func(*session.Request) (session.Accept, error) { return session.Accept{Handler: demo.Echo}, nil },
		"/ws/backend": be.Upgrade, "/ws/backend-noremote": beNR.Upgrade, "/ws/exec-c": ec.Upgrade, "/ws/exec-sh": es.Upgrade}
	srv, err := loop.NewServer(nil, loop.Options{Session: session.Config{Upgrade: rs.upgrade, PingInterval: -1}, Logger: quiet})
	if err != nil {
		fail(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		fail(err)
	}
	fmt.Println("ADDR", srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Shutdown(context.Background())
	ec.Close()
	es.Close()
	be.Close()
	beNR.Close()
}

// startWsloop starts the server role and returns once it serves.
func startWsloop(t *testing.T, env []string) *wsloopProc {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^TestMeasure$")
	cmd.Env = append(append(os.Environ(), "WSLOOP_BRIDGE_ROLE=server"), env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &wsloopProc{cmd: cmd, pid: cmd.Process.Pid, stdin: stdin}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			p.addr = a
			break
		}
	}
	if p.addr == "" {
		t.Fatal("the server did not start")
	}
	return p
}

func (p *wsloopProc) stop(t *testing.T) {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("the server did not stop")
		p.cmd.Process.Kill()
	}
}

// children returns the pids of the server's child processes running prog.
func (p *wsloopProc) children(t *testing.T, prog string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(p.pid) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.HasPrefix(string(cmdline), prog+"\x00") || strings.Contains(string(cmdline), "\x00"+prog+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}

type loadReport struct {
	MessagesPerSec     float64 `json:"messages_per_sec"`
	TrafficMsgs        int64   `json:"traffic_msgs"`
	ServerRSSBefore    int64   `json:"server_rss_before"`
	ServerRSSAfter     int64   `json:"server_rss_after"`
	ServerBytesPerConn float64 `json:"server_bytes_per_conn"`
	HeldAtEnd          int64   `json:"held_at_end"`
}

func (r *loadReport) held() int64 { return r.HeldAtEnd }

// wsload runs the built wsload and returns its JSON report.
func wsload(t *testing.T, dir, scenario string, args ...string) *loadReport {
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(filepath.Join(dir, "wsload"), append(append([]string{scenario}, args...), "-json", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("wsload %s %v: %v\n%s", scenario, args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r loadReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("wsload report: %v\n%s", err, b)
	}
	return &r
}

func rss(t *testing.T, pid int) int64 {
	st, err := bench.ReadStatus(pid)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return st.RSS
}

// pss reads the proportional set size (shared pages divided among their users).
func pss(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("process %d: no Pss", pid)
	return 0
}

func cpu(t *testing.T, pid int) float64 {
	s, err := bench.ReadCPU(pid)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return s
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
