package bus_test

import (
	"testing"
	"time"

	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/bus/bustest"
	"github.com/wsloop/wsloop/session"
)

func memoryBuses(t *testing.T, n int) []bus.Bus {
	m := bus.NewMemory(0)
	out := make([]bus.Bus, n)
	for i := range out {
		nd := m.Connect()
		t.Cleanup(func() { _ = nd.Close() })
		out[i] = nd
	}
	return out
}

func TestMemoryConformance(t *testing.T) { bustest.Run(t, memoryBuses) }

// TestMemoryDropsWhenInboxFull: a node whose handler is stuck holds inbox
// messages, drops and counts the rest, and the publisher never waits.
func TestMemoryDropsWhenInboxFull(t *testing.T) {
	const inbox, extra = 8, 5
	m := bus.NewMemory(inbox)
	pub, sub := m.Connect(), m.Connect()
	defer pub.Close()
	defer sub.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan string, 2*inbox+extra)
	first := true
	if _, err := sub.Subscribe("t", func(op session.Opcode, p []byte) {
		if first {
			first = false
			close(entered)
			<-release
		}
		got <- string(p)
	}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t", session.Text, []byte("0")); err != nil {
		t.Fatal(err)
	}
	<-entered // the delivery goroutine is stuck in message 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= inbox+extra; i++ {
			_ = pub.Publish("t", session.Text, []byte{byte('0' + i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a stuck subscriber")
	}
	if s := sub.Stats(); s.DroppedIn != extra {
		t.Errorf("dropped %d, want %d", s.DroppedIn, extra)
	}
	close(release)
	for i := 0; i <= inbox; i++ {
		select {
		case m := <-got:
			if want := string(rune('0' + i)); m != want {
				t.Fatalf("message %d is %q, want %q", i, m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never came", i)
		}
	}
	if s := pub.Stats(); s.Published != inbox+extra+1 {
		t.Errorf("published %d, want %d", s.Published, inbox+extra+1)
	}
}

// TestRoomsWithoutBus: a nil bus keeps rooms to this process, and Publish
// to a room nobody is in is fine.
func TestRoomsWithoutBus(t *testing.T) {
	rs := bus.NewRooms(nil, "x.")
	if err := rs.Publish("empty", session.Text, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if rs.Len() != 0 || rs.Members("empty") != 0 {
		t.Fatalf("len %d members %d", rs.Len(), rs.Members("empty"))
	}
	if n, ok := rs.Leave("nope", session.Handle{}); n != 0 || ok {
		t.Fatalf("leave of unknown room: %d %v", n, ok)
	}
}
