package loop_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationLifecycle: the Server's life at its edges. Shutdown without
// Listen, after a failed Listen, twice, and racing Broadcast: each returns,
// none panics, and nothing is left behind.
func TestIntegrationLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		bounded := func(what string, fn func()) {
			t.Helper()
			done := make(chan struct{})
			go func() { defer close(done); fn() }()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Fatalf("%s did not return within %v", what, waitTimeout)
			}
		}
		ctx := func() context.Context {
			c, cancel := context.WithTimeout(context.Background(), waitTimeout)
			t.Cleanup(cancel)
			return c
		}
		warmUp()
		baseG, baseFD := settledGoroutines(), countFDs()
		leaks := &testServer{t: t, rec: newRecorder(), baseG: baseG, baseFD: baseFD}

		// Never listened.
		s, err := loop.NewServer(newRecorder(), loop.Options{Engine: engine, Loops: 2})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		bounded("Shutdown without Listen", func() { s.Shutdown(ctx()) })
		bounded("Broadcast after Shutdown", func() { s.Broadcast(session.Text, []byte("x")) })

		// Listen fails: the port is taken.
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err = loop.NewServer(newRecorder(), loop.Options{Engine: engine, Loops: 2})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if err := s.Listen(taken.Addr().String()); err == nil {
			t.Errorf("Listen on a port in use succeeded")
		}
		bounded("Shutdown after a failed Listen", func() { s.Shutdown(ctx()) })
		taken.Close()
		leaks.checkLeaks()

		// Broadcast racing Shutdown, then Shutdown again, then Wait.
		ts := startServer(t, engine, newRecorder(), nil)
		c := ts.dialWS("/", nil)
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		waitFor(t, "the client open", func() bool { return ts.rec.opened() == 1 })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					ts.srv.Broadcast(session.Text, []byte("racing"))
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
		bounded("Shutdown while broadcasting", func() { ts.shutdown() })
		close(stop)
		wg.Wait()
		bounded("a second Shutdown", func() {
			if err := ts.srv.Shutdown(ctx()); err != nil {
				t.Logf("second Shutdown: %v", err)
			}
		})
		bounded("Broadcast after Shutdown", func() { ts.srv.Broadcast(session.Binary, []byte("late")) })
		bounded("Wait after Shutdown", func() { ts.srv.Wait() })
		c.CloseNow()
		ts.closeClients()
		ts.checkLeaks()
	})
}
