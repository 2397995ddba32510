package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// running is the binary's body started by startRun.
type running struct {
	addr string
	logs *syncBuffer
	stop func() error // cancels as SIGTERM would and waits for run to return
}

// startRun runs the binary's body with args on 127.0.0.1:0; it is stopped
// at the end of the test unless the test stops it first.
func startRun(t *testing.T, args ...string) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := new(syncBuffer)
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), logs, func(a string) { addrc <- a })
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("no graceful stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case addr := <-addrc:
		return running{addr: addr, logs: logs, stop: stop}
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("server did not start")
	}
	return running{}
}

func TestExpvarOnlyWhenAsked(t *testing.T) {
	if code, _ := get(t, "http://"+startRun(t).addr+"/debug/vars"); code != 404 {
		t.Fatalf("GET /debug/vars without -expvar: %d, want 404", code)
	}
	addr := startRun(t, "-expvar").addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	code, body := get(t, "http://"+addr+"/debug/vars")
	var doc struct {
		Memstats   struct{ HeapInuse uint64 } `json:"memstats"`
		Goroutines int                        `json:"goroutines"`
		Wsloop     map[string]uint64          `json:"wsloop"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("GET /debug/vars with -expvar: %d %.80q", code, body)
	}
	if doc.Memstats.HeapInuse == 0 || doc.Goroutines == 0 || doc.Wsloop["opened"] != 1 || doc.Wsloop["messages"] != 1 {
		t.Fatalf("vars: heap %d goroutines %d wsloop %v", doc.Memstats.HeapInuse, doc.Goroutines, doc.Wsloop)
	}
}
