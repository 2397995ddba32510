package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/bus/bustest"
	"github.com/wsloop/wsloop/bus/natsbus"
	"github.com/wsloop/wsloop/internal/natstest"
	"github.com/wsloop/wsloop/session"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func connect(t testing.TB, url string, opts natsbus.Options) *natsbus.Bus {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	b, err := natsbus.Connect(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func factory(start func(testing.TB) natstest.Server) bustest.Factory {
	return func(t *testing.T, n int) []bus.Bus {
		srv := start(t)
		out := make([]bus.Bus, n)
		for i := range out {
			out[i] = connect(t, srv.URL(), natsbus.Options{})
		}
		return out
	}
}

func TestConformanceEmbedded(t *testing.T) { bustest.Run(t, factory(natstest.Embedded)) }

// TestConformanceDebian runs the suite on Debian's nats-server (v2.9 in
// bookworm), a build independent of the embedded library.
func TestConformanceDebian(t *testing.T) { bustest.Run(t, factory(natstest.Debian)) }

func TestOutageEmbedded(t *testing.T) { testOutage(t, natstest.Embedded(t)) }
func TestOutageDebian(t *testing.T)   { testOutage(t, natstest.Debian(t)) }

// testOutage stops the NATS server under two connected buses and starts it
// again: publishing never blocks and never fails while it is down, what
// does not fit the reconnect buffer is dropped and counted, both buses
// reconnect and resubscribe by themselves, and what arrives is in order
// and at most once.
func testOutage(t *testing.T, srv natstest.Server) {
	const size, bufSize = 1 << 10, 8 << 10
	opts := natsbus.Options{ReconnectBuffer: bufSize, ReconnectWait: 50 * time.Millisecond}
	a := connect(t, srv.URL(), opts)
	b := connect(t, srv.URL(), opts)
	c := connect(t, srv.URL(), opts) // closed during the outage
	if _, err := c.Subscribe("outage", func(session.Opcode, []byte) {}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int
	if _, err := b.Subscribe("outage", func(_ session.Opcode, p []byte) {
		n, _ := strconv.Atoi(string(p[:8]))
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	bustest.Sync(t, a, b)
	msg := func(i int) []byte { return fmt.Appendf(nil, "%08d%0*d", i, size-8, 0) }
	received := func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), got...) }
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		end := time.Now().Add(d)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := a.Publish("outage", session.Text, msg(0)); err != nil {
		t.Fatal(err)
	}
	waitFor("message 0", bustest.Timeout, func() bool { return len(received()) == 1 })

	srv.Stop()
	waitFor("both disconnected", bustest.Timeout, func() bool { return !a.Connected() && !b.Connected() })
	const during = 40 // 40 KiB against an 8 KiB reconnect buffer
	start := time.Now()
	for i := 1; i <= during; i++ {
		if err := a.Publish("outage", session.Text, msg(i)); err != nil {
			t.Fatalf("publish %d while down: %v (the outbox must take it)", i, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publishing while NATS was down took %v", d)
	}
	waitFor("the outbox to drain into the reconnect buffer", bustest.Timeout, func() bool {
		s := a.Stats()
		return s.Published+s.DroppedOut == during+1
	})
	if s := a.Stats(); s.DroppedOut < during-bufSize/size || s.DroppedOut == during {
		t.Errorf("dropped %d of %d publishes with a %d-byte reconnect buffer and %d-byte messages", s.DroppedOut, during, bufSize, size)
	}
	start = time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("close while down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close while NATS was down took %v", d)
	}

	srv.Start()
	waitFor("both reconnected", 3*bustest.Timeout, func() bool {
		return a.Connected() && b.Connected() && a.Stats().Reconnects >= 1 && b.Stats().Reconnects >= 1
	})
	bustest.Sync(t, a, b)
	if err := a.Publish("outage", session.Text, msg(during+1)); err != nil {
		t.Fatal(err)
	}
	waitFor("the first message after the outage", bustest.Timeout, func() bool {
		r := received()
		return len(r) > 0 && r[len(r)-1] == during+1
	})
	r := received()
	for i := 1; i < len(r); i++ {
		if r[i] <= r[i-1] {
			t.Fatalf("received %v: duplicated or reordered", r)
		}
	}
	t.Logf("received %d of %d messages across the outage; a: %+v; b: %+v", len(r), during+2, a.Stats(), b.Stats())
	if s := b.Stats(); s.Disconnects < 1 || s.Reconnects < 1 {
		t.Errorf("b's stats %+v do not show the outage", s)
	}
}

// TestConnectUnreachable: no server is an error of Connect within its
// timeout, saying what to check.
func TestConnectUnreachable(t *testing.T) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))
	start := time.Now()
	_, err := natsbus.Connect(url, natsbus.Options{ConnectTimeout: time.Second, Logger: quiet})
	if err == nil || !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("err = %v, want one wrapping nats.ErrNoServers", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	t.Log(err)
}

// TestSlowHandlerDropsCounted: a handler that stops fills the inbox; NATS
// then drops and counts, the rest arrive in order once it goes on.
func TestSlowHandlerDropsCounted(t *testing.T) {
	srv := natstest.Embedded(t)
	a := connect(t, srv.URL(), natsbus.Options{})
	b := connect(t, srv.URL(), natsbus.Options{Inbox: 4})
	release := make(chan struct{})
	var mu sync.Mutex
	var got []int
	if _, err := b.Subscribe("slow", func(_ session.Opcode, p []byte) {
		<-release
		n, _ := strconv.Atoi(string(p))
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	bustest.Sync(t, a, b)
	const n = 200
	for i := range n {
		if err := a.Publish("slow", session.Text, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	if err := a.Sync(ctx); err != nil { // a's publishes are at the server
		t.Fatal(err)
	}
	end := time.Now().Add(bustest.Timeout)
	for b.Stats().DroppedIn == 0 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	dropped := b.Stats().DroppedIn
	if dropped == 0 {
		t.Fatal("no incoming drops counted with a stuck handler and a 4-message inbox")
	}
	for time.Now().Before(end) {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if uint64(k)+b.Stats().DroppedIn >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(got))+b.Stats().DroppedIn != n {
		t.Errorf("received %d + dropped %d != published %d", len(got), b.Stats().DroppedIn, n)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
}

func TestMain(m *testing.M) {
	natstest.MaybeChild()
	os.Exit(m.Run())
}

// TestPublishAllocs: publishing a message, all the way into nats.go's
// buffer, allocates nothing (the server runs in another process).
func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	srv := natstest.Child(t)
	a := connect(t, srv.URL(), natsbus.Options{})
	p := make([]byte, 100)
	want := uint64(0)
	publish := func() {
		if err := a.Publish("allocs", session.Text, p); err != nil {
			t.Fatal(err)
		}
		want++
		for a.Stats().Published < want { // steady state: the outbox keeps up
			runtime.Gosched()
		}
	}
	for range 100 {
		publish()
	}
	allocs := testing.AllocsPerRun(1000, publish)
	if allocs > 0 {
		t.Errorf("%.1f allocations per Publish", allocs)
	}
}
