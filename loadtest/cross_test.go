package loadtest

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/internal/servetest"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// demoOn serves the demo applications on b (one "process" of several).
func demoOn(t *testing.T, b bus.Bus) string {
	t.Helper()
	d := demo.New(demo.Options{Bus: b})
	return serveDemo(t, d, d.Upgrade)
}

// serveDemo serves d with upgrade on 127.0.0.1.
func serveDemo(t *testing.T, d *demo.Demo, upgrade session.UpgradeFunc) string {
	t.Helper()
	t.Cleanup(d.Close) // after the server's shutdown
	srv := servetest.Start(t, demo.Echo, loop.Options{Loops: 2, Session: session.Config{Upgrade: upgrade}, HTTP: d.Page()})
	return srv.Addr().String()
}

// TestBroadcastAcrossServers: one run over two servers whose chat rooms
// span both (a bus between them): one publisher per URL, every subscriber
// on either server gets every message of both exactly once.
func TestBroadcastAcrossServers(t *testing.T) {
	m := bus.NewMemory(0)
	a, b := m.Connect(), m.Connect()
	t.Cleanup(func() { a.Close(); b.Close() })
	urls := "ws://" + demoOn(t, a) + "/ws/chat?room=x," + "ws://" + demoOn(t, b) + "/ws/chat?room=x"
	for _, procs := range []int{1, 2} {
		rep := mustPass(t, Config{Scenario: Broadcast, URL: urls, Conns: 20, Messages: 30, Rate: 200, Procs: procs})
		if rep.Delivered != 20*30*2 || rep.Expected != rep.Delivered || rep.Reordered != 0 || rep.Duplicates != 0 {
			t.Errorf("procs %d: delivered %d of %d, reordered %d, duplicates %d", procs, rep.Delivered, rep.Expected, rep.Reordered, rep.Duplicates)
		}
	}
}

// twinChat is two chat servers that share their members, as two processes
// on a bus do, with a fault on delivery number faultAt (counted over
// deliveries of real messages to subscribers, probes aside): drop it, send
// it twice, or hold it back until after the next message to the same
// member. Publishers hear the room too, but the generator does not verify
// what they hear, so a fault on a delivery to a publisher would go unseen:
// a member that has sent anything (every publisher sends probes before the
// traffic starts) is a publisher and never gets the fault.
type twinChat struct {
	mu      sync.Mutex
	members map[*websocket.Conn]*sync.Mutex // write lock per member
	senders map[*websocket.Conn]bool
	n       atomic.Int64
	faultAt int64
	fault   string // "drop", "dup", "swap"
	held    map[*websocket.Conn][]byte
}

var probeRE = regexp.MustCompile(`:w\d+$`)

func (tc *twinChat) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		tc.mu.Lock()
		tc.members[c] = new(sync.Mutex)
		tc.mu.Unlock()
		defer func() { tc.mu.Lock(); delete(tc.members, c); delete(tc.senders, c); tc.mu.Unlock() }()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			tc.mu.Lock()
			tc.senders[c] = true
			type to struct {
				c      *websocket.Conn
				mu     *sync.Mutex
				sender bool
			}
			var tos []to
			for m, mu := range tc.members {
				if m != c {
					tos = append(tos, to{m, mu, tc.senders[m]})
				}
			}
			tc.mu.Unlock()
			for _, d := range tos {
				out := [][]byte{msg}
				if !probeRE.Match(msg) && !d.sender && tc.n.Add(1) == tc.faultAt {
					switch tc.fault {
					case "drop":
						out = nil
					case "dup":
						out = [][]byte{msg, msg}
					case "swap":
						tc.mu.Lock()
						tc.held[d.c] = msg
						tc.mu.Unlock()
						out = nil
					}
				} else if tc.fault == "swap" && !probeRE.Match(msg) {
					tc.mu.Lock()
					if h := tc.held[d.c]; h != nil {
						out = [][]byte{msg, h}
						delete(tc.held, d.c)
					}
					tc.mu.Unlock()
				}
				d.mu.Lock()
				for _, o := range out {
					_ = d.c.Write(ctx, typ, o)
				}
				d.mu.Unlock()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String() + "/chat"
}

func twins(t *testing.T, fault string, at int64) string {
	tc := &twinChat{members: map[*websocket.Conn]*sync.Mutex{}, senders: map[*websocket.Conn]bool{}, faultAt: at, fault: fault, held: map[*websocket.Conn][]byte{}}
	return tc.serve(t) + "," + tc.serve(t)
}

// TestCrossVerificationCatchesFaults: a multi-URL run fails, saying what,
// when one delivery is lost, duplicated or reordered.
func TestCrossVerificationCatchesFaults(t *testing.T) {
	base := Config{Scenario: Broadcast, Conns: 6, Messages: 20, Rate: 200, Drain: time.Second}
	ok := base
	ok.URL = twins(t, "", 0)
	mustPass(t, ok)

	drop := base
	drop.URL = twins(t, "drop", 37)
	if rep := mustFail(t, drop); rep.Lost != 1 || rep.Duplicates != 0 || rep.Reordered != 0 {
		t.Errorf("one dropped delivery: lost %d, duplicates %d, reordered %d", rep.Lost, rep.Duplicates, rep.Reordered)
	}
	dup := base
	dup.URL = twins(t, "dup", 37)
	if rep := mustFail(t, dup); rep.Duplicates != 1 || rep.Lost != 0 {
		t.Errorf("one duplicated delivery: duplicates %d, lost %d", rep.Duplicates, rep.Lost)
	}
	swap := base
	swap.URL = twins(t, "swap", 37)
	swap.Publishers = 1 // one publisher: the held message is that publisher's next to the same member
	if rep := mustFail(t, swap); rep.Reordered != 1 || rep.Lost != 0 || rep.Duplicates != 0 {
		t.Errorf("one reordered delivery: reordered %d, lost %d, duplicates %d", rep.Reordered, rep.Lost, rep.Duplicates)
	}
}
