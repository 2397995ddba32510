package loadtest

import (
	"expvar"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/session"
)

var publishGoroutines sync.Once

// soakServer serves the demo in this process, with expvar and a GC trigger
// on a side listener, as a server under soak would (its figures are this
// process's: the generator runs in worker processes). With leak, every
// echo connection leaves a goroutine behind.
func soakServer(t *testing.T, leak bool) (addr, vars, gc string) {
	t.Helper()
	d := demo.New(demo.Options{})
	block := make(chan struct{})
	leaky := session.HandlerFuncs{
		Open:    func(c *session.Conn) { go func() { <-block }() },
		Message: demo.Echo.OnMessage,
	}
	upgrade := func(r *session.Request) (session.Accept, error) {
		acc, err := d.Upgrade(r)
		if leak && r.Path() == "/ws/echo" {
			acc.Handler = leaky
		}
		return acc, err
	}
	addr = serveDemo(t, d, upgrade)
	publishGoroutines.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	})
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) { runtime.GC() })
	side := httptest.NewServer(mux)
	t.Cleanup(func() {
		side.Close()
		close(block)
	})
	return addr, side.URL + "/debug/vars", side.URL + "/gc"
}

func soakConfig(addr, vars, gc string) Config {
	return Config{
		Scenario: Soak, URL: "ws://" + addr + "/ws/echo", Conns: 200, Duration: 3 * time.Second,
		Rate: 100, Procs: 2, ServerPID: os.Getpid(),
		Soak: SoakConfig{ChurnRate: 20, BroadcastRate: 5, Subscribers: 20, SlowReaders: 4,
			VarsURL: vars, GCURL: gc, Settle: 20 * time.Second},
	}
}

// TestSoakSmall: the soak's mix against the demo: every echo and room
// message verified, churn clean, and the server's descriptors,
// goroutines, heap and RSS back near the baseline.
func TestSoakSmall(t *testing.T) {
	rep := mustPass(t, soakConfig(soakServer(t, false)))
	if rep.Soak == nil || !rep.Soak.Before.HasProc || !rep.Soak.Before.HasVars {
		t.Fatalf("soak report %+v", rep.Soak)
	}
	if rep.Sent == 0 || rep.Missing != 0 || rep.Published < 10 || rep.Expected != rep.Published*20 || rep.Delivered != rep.Expected {
		t.Errorf("echo sent %d missing %d; room published %d, delivered %d of %d", rep.Sent, rep.Missing, rep.Published, rep.Delivered, rep.Expected)
	}
	if rep.ClosedClean < 30 || rep.SlowReaders != 4 {
		t.Errorf("churned %d, slow readers %d", rep.ClosedClean, rep.SlowReaders)
	}
	if p := rep.Soak.Peak; p.FDs < rep.Soak.Before.FDs+200 {
		t.Errorf("peak descriptors %d, baseline %d: the connections were not seen", p.FDs, rep.Soak.Before.FDs)
	}
	var b strings.Builder
	rep.WriteText(&b)
	t.Log("\n" + b.String())
}

// TestSoakCatchesLeak: a server that leaves a goroutine behind for every
// echo connection fails the soak, and the report says so.
func TestSoakCatchesLeak(t *testing.T) {
	cfg := soakConfig(soakServer(t, true))
	cfg.Soak.Settle = 3 * time.Second
	rep := mustFail(t, cfg)
	found := false
	for _, f := range rep.Failures {
		found = found || strings.Contains(f, "server goroutines")
	}
	if !found {
		t.Errorf("failures %q do not name the goroutines", rep.Failures)
	}
}
