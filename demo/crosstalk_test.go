package demo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestEchoNoCrossTalk: an echo goes back to its sender only, with several
// connections open at once (as the demo page has).
func TestEchoNoCrossTalk(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, _, addr := serve(t, engine, Options{}, nil)
			var conns []*websocket.Conn
			for i := 0; i < 4; i++ {
				conns = append(conns, dial(t, addr, "/ws/echo", nil))
			}
			for round := 0; round < 3; round++ {
				for i, c := range conns {
					msg := fmt.Sprintf("conn %d round %d", i, round)
					if err := c.Write(ctx(t), websocket.MessageText, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					if _, got := read(t, c); got != msg {
						t.Fatalf("conn %d read %q, want %q", i, got, msg)
					}
				}
			}
			for i, c := range conns {
				rc, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				_, b, err := c.Read(rc)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("conn %d got an extra message %q (%v)", i, b, err)
				}
			}
		})
	}
}
