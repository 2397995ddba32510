package loadtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// run runs cfg with test-sized timeouts and a bound on the whole run.
func run(t *testing.T, cfg Config) (*Report, error) {
	t.Helper()
	if cfg.Duration == 0 {
		cfg.Duration = time.Second
	}
	if cfg.Drain == 0 {
		cfg.Drain = 3 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.Procs == 0 {
		cfg.Procs = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		for _, n := range rep.Notes {
			t.Log(n)
		}
	}
	return rep, err
}

func mustPass(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := run(t, cfg)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	return rep
}

func mustFail(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := run(t, cfg)
	var verr *VerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a *VerificationError", err)
	}
	if rep == nil || rep.Passed() {
		t.Fatal("report says passed")
	}
	t.Logf("failures, as expected: %v", verr.Failures)
	return rep
}

func checkEchoReport(t *testing.T, rep *Report, conns int) {
	t.Helper()
	if rep.Opened != int64(conns) || rep.HeldAtEnd != int64(conns) {
		t.Errorf("opened %d, held %d, want %d", rep.Opened, rep.HeldAtEnd, conns)
	}
	if rep.Received == 0 || rep.Received != rep.Sent {
		t.Errorf("sent %d, received %d", rep.Sent, rep.Received)
	}
	if rep.Latency.Count != rep.Received {
		t.Errorf("latency samples %d, want %d", rep.Latency.Count, rep.Received)
	}
	if rep.Handshake.Count != int64(conns) {
		t.Errorf("handshake samples %d, want %d", rep.Handshake.Count, conns)
	}
	if rep.Mismatched != 0 || rep.Missing != 0 {
		t.Errorf("mismatched %d, missing %d", rep.Mismatched, rep.Missing)
	}
}

func TestEchoClosedLoopWsloop(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Echo, URL: wsloopEcho(t), Conns: 20, Size: 200})
	checkEchoReport(t, rep, 20)
}

func TestEchoCoderBinaryCount(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Echo, URL: coderEcho(t, 0), Conns: 10, Size: 3000, Binary: true, Messages: 500, Duration: 20 * time.Second})
	checkEchoReport(t, rep, 10)
	if rep.Sent != 500 {
		t.Errorf("sent %d, want the 500 of -messages", rep.Sent)
	}
}

func TestEchoOpenLoop(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Echo, URL: coderEcho(t, 0), Conns: 5, Rate: 200})
	checkEchoReport(t, rep, 5)
	if rep.Sent != 200 {
		t.Errorf("sent %d in an open loop at 200/s for 1s, want 200", rep.Sent)
	}
}

func TestEchoCorruptionFails(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Echo, URL: coderEcho(t, 50), Conns: 4})
	if rep.Mismatched != 1 {
		t.Errorf("mismatched %d, want 1", rep.Mismatched)
	}
}

func TestConnectRefused(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Connect, URL: closedPort(t), Conns: 5, Rate: 100})
	if rep.Failed["refused"] != 5 || rep.Opened != 0 {
		t.Errorf("failed %v, opened %d; want refused 5", rep.Failed, rep.Opened)
	}
}

func TestHandshakeRejected(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Connect, URL: coderReject(t), Conns: 3, Rate: 100})
	if rep.Failed["bad_handshake"] != 3 {
		t.Errorf("failed %v, want bad_handshake 3", rep.Failed)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Connect, URL: silentServer(t), Conns: 3, Rate: 100, ConnectTimeout: 500 * time.Millisecond})
	if rep.Failed["timeout"] != 3 {
		t.Errorf("failed %v, want timeout 3", rep.Failed)
	}
}

func TestConnect(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Connect, URL: wsloopEcho(t), Conns: 100, Rate: 500})
	if rep.Opened != 100 || rep.Handshake.Count != 100 || rep.ConnectRate <= 0 {
		t.Errorf("opened %d, handshakes %d, rate %v", rep.Opened, rep.Handshake.Count, rep.ConnectRate)
	}
}

func TestIdle(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Idle, URL: coderEcho(t, 0), Conns: 50, Ping: 200 * time.Millisecond, ServerPID: os.Getpid()})
	if rep.HeldAtStart != 50 || rep.HeldAtEnd != 50 || len(rep.Dropped) != 0 {
		t.Errorf("held %d..%d, dropped %v", rep.HeldAtStart, rep.HeldAtEnd, rep.Dropped)
	}
	if rep.GeneratorRSS <= 0 || rep.ServerRSSBefore <= 0 || rep.ServerRSSAfter <= 0 {
		t.Errorf("RSS: generator %d, server %d..%d", rep.GeneratorRSS, rep.ServerRSSBefore, rep.ServerRSSAfter)
	}
}

// The server pings every 100 ms and closes a connection that does not
// answer within 200 ms: holding for a second proves the pongs.
func TestIdleAnswersPings(t *testing.T) {
	url := goroutineServer(t, session.HandlerFuncs{}, loop.Options{Engine: "goroutine",
		Session: session.Config{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond}})
	rep := mustPass(t, Config{Scenario: Idle, URL: url, Conns: 20})
	if rep.HeldAtEnd != 20 {
		t.Errorf("held %d at the end, want 20; dropped %v", rep.HeldAtEnd, rep.Dropped)
	}
}

func TestIdleDropDetected(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Idle, URL: coderDropOne(t), Conns: 10})
	if rep.Dropped["closed_by_server"] != 1 || rep.HeldAtEnd != 9 {
		t.Errorf("dropped %v, held at end %d", rep.Dropped, rep.HeldAtEnd)
	}
}

func TestBroadcastSelf(t *testing.T) {
	for name, url := range map[string]string{"coder": coderChat(t, 0), "wsloop": wsloopChat(t)} {
		t.Run(name, func(t *testing.T) {
			rep := mustPass(t, Config{Scenario: Broadcast, URL: url, Conns: 30, Messages: 20, Rate: 100,
				PublishTemplate: `{"text":"%s"}`})
			if rep.Sent != 20 || rep.Expected != 600 || rep.Delivered != 600 || rep.Lost != 0 {
				t.Errorf("sent %d, expected %d, delivered %d, lost %d", rep.Sent, rep.Expected, rep.Delivered, rep.Lost)
			}
			if rep.Latency.Count != 600 {
				t.Errorf("latency samples %d", rep.Latency.Count)
			}
		})
	}
}

func TestBroadcastLossFails(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Broadcast, URL: coderChat(t, 77), Conns: 10, Messages: 20, Rate: 100, Drain: time.Second})
	if rep.Lost != 1 || rep.Delivered != 199 {
		t.Errorf("lost %d, delivered %d of %d", rep.Lost, rep.Delivered, rep.Expected)
	}
}

func TestBroadcastServerPush(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Broadcast, URL: coderPush(t, false), Conns: 10, Publish: PublishServer})
	if rep.Delivered < 10 || rep.Gaps != 0 || rep.Lost != 0 {
		t.Errorf("delivered %d, gaps %d", rep.Delivered, rep.Gaps)
	}
}

func TestBroadcastServerPushGapFails(t *testing.T) {
	rep := mustFail(t, Config{Scenario: Broadcast, URL: coderPush(t, true), Conns: 5, Publish: PublishServer})
	if rep.Gaps != 1 || rep.Lost != 1 {
		t.Errorf("gaps %d, lost %d", rep.Gaps, rep.Lost)
	}
}

func TestChurn(t *testing.T) {
	rep := mustPass(t, Config{Scenario: Churn, URL: wsloopEcho(t), Rate: 50})
	if rep.Opened < 25 || rep.ClosedClean != rep.Opened || rep.Attempted != rep.Opened {
		t.Errorf("attempted %d, opened %d, closed clean %d", rep.Attempted, rep.Opened, rep.ClosedClean)
	}
}

func TestMultiProcess(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		rep := mustPass(t, Config{Scenario: Echo, URL: coderEcho(t, 0), Conns: 20, Procs: 2})
		checkEchoReport(t, rep, 20)
		if rep.Procs != 2 || len(rep.GeneratorRSSPerProc) != 2 {
			t.Errorf("procs %d, RSS per proc %v", rep.Procs, rep.GeneratorRSSPerProc)
		}
	})
	t.Run("broadcast", func(t *testing.T) {
		rep := mustPass(t, Config{Scenario: Broadcast, URL: coderChat(t, 0), Conns: 20, Messages: 10, Rate: 100, Procs: 2})
		if rep.Expected != 200 || rep.Delivered != 200 || rep.Latency.Count != 200 {
			t.Errorf("expected %d, delivered %d, latency samples %d", rep.Expected, rep.Delivered, rep.Latency.Count)
		}
	})
	t.Run("corruption", func(t *testing.T) {
		rep := mustFail(t, Config{Scenario: Echo, URL: coderEcho(t, 30), Conns: 6, Procs: 2})
		if rep.Mismatched != 1 {
			t.Errorf("mismatched %d, want 1", rep.Mismatched)
		}
	})
}

// wss: the generator speaks TLS to a wsloop server on the epoll engine,
// verifying it with a CA file, or with -insecure; without either it
// refuses the test certificate and every connection fails.
func TestEchoOverTLS(t *testing.T) {
	cert := testcert.New(t)
	o := loop.Options{Engine: "epoll", TLSConfig: cert.ServerConfig()}
	url := "wss" + strings.TrimPrefix(goroutineServer(t, session.HandlerFuncs{
		Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) },
	}, o), "ws")
	certFile, _ := cert.WriteFiles(t)
	rep := mustPass(t, Config{Scenario: Echo, URL: url, CAFile: certFile, Conns: 20, Size: 200, Duration: 2 * time.Second})
	checkEchoReport(t, rep, 20)
	rep = mustPass(t, Config{Scenario: Echo, URL: url, Insecure: true, Conns: 5, Duration: time.Second})
	checkEchoReport(t, rep, 5)
	rep = mustFail(t, Config{Scenario: Connect, URL: url, Conns: 3, Rate: 100})
	if rep.Failed["tls"] != 3 || rep.Opened != 0 {
		t.Errorf("without a CA: failed %v, opened %d; want tls 3 (the certificate is not trusted)", rep.Failed, rep.Opened)
	}
}

// TestProbeIntervalFollowsTheRoom: warm-up probes come every 100 ms in a
// small room and are paced to the probe budget in a large one, and the
// default warm-up leaves room for five rounds.
func TestProbeIntervalFollowsTheRoom(t *testing.T) {
	small := Config{Conns: 1000, Publishers: 3}
	if got := small.probeInterval(); got != 100*time.Millisecond {
		t.Errorf("1,000 x 3: %v, want 100ms", got)
	}
	big := Config{Conns: 100_000, Publishers: 3}
	if got := big.probeInterval(); got != 6*time.Second {
		t.Errorf("100,000 x 3: %v, want 6s (300,000 deliveries at 50,000 a second)", got)
	}
	cfg := Config{Scenario: Broadcast, URL: "ws://127.0.0.1:1/ws/chat?room=r", Conns: 200_000, Publishers: 3}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	if cfg.WarmUp != time.Minute {
		t.Errorf("default warm-up %v, want 1m (five rounds of 12s)", cfg.WarmUp)
	}
}
