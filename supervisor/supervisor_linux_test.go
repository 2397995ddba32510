package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary is its own worker: with WorkerEnv set, TestMain runs
// testWorker instead of the tests. TEST_WORKER_MODE picks its behaviour.
func TestMain(m *testing.M) {
	if i, ok := Worker(); ok {
		os.Exit(testWorker(i))
	}
	os.Exit(m.Run())
}

func testWorker(index int) int {
	mode := os.Getenv("TEST_WORKER_MODE")
	if mode == "fail" || (mode == "fail1" && index == 1) {
		fmt.Fprintln(os.Stderr, "worker: failing at start, as asked")
		return 3
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if mode == "slow" {
		time.Sleep(time.Hour) // never ready
	}
	if err := Ready(Info{Addr: "127.0.0.1:1", Capacity: 100 + index}); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	if mode == "crash" {
		return 4
	}
	if mode == "stubborn" { // catches SIGTERM and goes on
		time.Sleep(time.Hour)
	}
	s := <-sig
	fmt.Fprintf(os.Stderr, "worker %d: graceful stop on %v\n", index, s)
	return 0
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	cfg    Config
	out    *syncBuf
	ready  chan [2]int // worker, pid
	all    chan []Info
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, procs int, mode string, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{out: &syncBuf{}, ready: make(chan [2]int, 64), all: make(chan []Info, 1), done: make(chan error, 1)}
	h.cfg = Config{
		Procs:        procs,
		Env:          []string{"TEST_WORKER_MODE=" + mode},
		Output:       h.out,
		StartTimeout: 10 * time.Second,
		StopTimeout:  5 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(h.out, nil)),
		OnReady:      func(i int, info Info) { h.ready <- [2]int{i, info.PID} },
		OnAllReady:   func(infos []Info) { h.all <- infos },
	}
	if tweak != nil {
		tweak(&h.cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- Run(ctx, h.cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return; output:\n%s", h.out)
		return nil
	}
}

func (h *harness) allReady(t *testing.T) []Info {
	t.Helper()
	select {
	case infos := <-h.all:
		return infos
	case err := <-h.done:
		t.Fatalf("Run returned %v before all were ready; output:\n%s", err, h.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("workers not ready; output:\n%s", h.out)
	}
	return nil
}

// TestStartAndGracefulStop: every worker reports, the start line has the
// summed capacity, and cancelling forwards SIGTERM to all of them, which
// stop gracefully: Run returns nil.
func TestStartAndGracefulStop(t *testing.T) {
	h := start(t, 3, "", nil)
	infos := h.allReady(t)
	pids := map[int]bool{}
	for i, in := range infos {
		if in.Capacity != 100+i || in.PID == 0 || in.PID == os.Getpid() {
			t.Errorf("worker %d reported %+v", i, in)
		}
		pids[in.PID] = true
	}
	if len(pids) != 3 {
		t.Errorf("pids %v, want three distinct", pids)
	}
	if !strings.Contains(h.out.String(), "capacity=303") {
		t.Errorf("no start line with capacity=303 in:\n%s", h.out)
	}
	h.cancel()
	if err := h.wait(t); err != nil {
		t.Fatalf("Run: %v; output:\n%s", err, h.out)
	}
	for i := range 3 {
		if want := fmt.Sprintf("worker %d: graceful stop on terminated", i); !strings.Contains(h.out.String(), want) {
			t.Errorf("no %q in:\n%s", want, h.out)
		}
	}
}

// TestRestartsKilledWorker: a worker killed with SIGKILL is started again
// (a new process in its slot); the others are left alone.
func TestRestartsKilledWorker(t *testing.T) {
	h := start(t, 2, "", nil)
	infos := h.allReady(t)
	for range 2 {
		<-h.ready // the first start's reports
	}
	if err := syscall.Kill(infos[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-h.ready:
		if r[0] != 1 || r[1] == infos[1].PID {
			t.Fatalf("ready report %v after killing worker 1 (pid %d)", r, infos[1].PID)
		}
		if err := syscall.Kill(r[1], 0); err != nil {
			t.Fatalf("restarted worker pid %d: %v", r[1], err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("killed worker not restarted; output:\n%s", h.out)
	}
	if err := syscall.Kill(infos[0].PID, 0); err != nil {
		t.Errorf("worker 0 (pid %d) is gone: %v", infos[0].PID, err)
	}
	if !strings.Contains(h.out.String(), "worker died; restarting") {
		t.Errorf("no restart log in:\n%s", h.out)
	}
}

// TestFirstStartFailureStopsAll: a worker that exits before it is ready
// makes Run fail and stop the others: a bad flag or a taken port does not
// get better with restarts.
func TestFirstStartFailureStopsAll(t *testing.T) {
	h := start(t, 3, "fail1", nil)
	err := h.wait(t)
	if err == nil || !strings.Contains(err.Error(), "worker 1 exited before it was ready") {
		t.Fatalf("Run: %v, want worker 1's failure", err)
	}
}

// TestNotReadyInTime: a first start that never reports is a failure
// within StartTimeout, and every worker is gone afterwards.
func TestNotReadyInTime(t *testing.T) {
	h := start(t, 2, "slow", func(c *Config) { c.StartTimeout = 500 * time.Millisecond; c.StopTimeout = 500 * time.Millisecond })
	err := h.wait(t)
	if err == nil || !strings.Contains(err.Error(), "not ready within") {
		t.Fatalf("Run: %v", err)
	}
}

// TestCrashLoopBacksOff: a worker that dies at once every time is
// restarted with pauses that double: in 1.2 s with a 100 ms first pause
// that is at most 4 starts (0, 0.1, 0.3, 0.7 s), not hundreds.
func TestCrashLoopBacksOff(t *testing.T) {
	h := start(t, 1, "crash", func(c *Config) { c.MinBackoff = 100 * time.Millisecond })
	h.allReady(t)
	time.Sleep(1200 * time.Millisecond)
	h.cancel()
	_ = h.wait(t)
	n := strings.Count(h.out.String(), "worker died; restarting")
	if n < 2 || n > 5 {
		t.Errorf("%d restarts in 1.2 s with doubling pauses from 100 ms, want 2-5; output:\n%s", n, h.out)
	}
}

// TestStubbornWorkerKilled: a worker that ignores SIGTERM is killed after
// StopTimeout, and Run says so.
func TestStubbornWorkerKilled(t *testing.T) {
	h := start(t, 1, "stubborn", func(c *Config) { c.StopTimeout = 300 * time.Millisecond })
	h.allReady(t) // its SIGTERM handler is in place before it reports
	h.cancel()
	err := h.wait(t)
	if err == nil || !strings.Contains(err.Error(), "killed after") {
		t.Fatalf("Run: %v, want the kill reported", err)
	}
}

// TestReservePort: the reserved port takes no connections itself, and two
// SO_REUSEPORT listeners (two workers) can both bind it and share them.
func TestReservePort(t *testing.T) {
	addr, release, err := ReservePort("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("reserved %s: no port chosen", addr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to the reserved port was accepted with nobody listening")
	}
	// A plain listener (no SO_REUSEPORT: the goroutine engine today) cannot
	// take the port; a SO_REUSEPORT one (the epoll engine) can, twice.
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatal("a listener without SO_REUSEPORT took the reserved port")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1) })
		return errors.Join(err, serr)
	}}
	for range 2 {
		l, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("SO_REUSEPORT listener on the reserved port: %v", err)
		}
		defer l.Close()
	}
}
