package demo

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendReading(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 30, 0, 123_456_789, time.FixedZone("CET", 3600))
	got := string(appendReading(nil, at, 21.4, 42))
	want := `{"t":"2026-11-21T09:30:00.123Z","temp":21.4,"seq":42}`
	if got != want {
		t.Fatalf("reading %s, want %s", got, want)
	}
	var r struct {
		T    time.Time
		Temp float64
		Seq  uint64
	}
	if err := json.Unmarshal([]byte(got), &r); err != nil {
		t.Fatal(err)
	}
	if !r.T.Equal(at.Truncate(time.Millisecond)) || r.Temp != 21.4 || r.Seq != 42 {
		t.Fatalf("decoded %+v", r)
	}
	if got := string(appendReading(nil, at, 20, 1)); got != `{"t":"2026-11-21T09:30:00.123Z","temp":20.0,"seq":1}` {
		t.Fatalf("whole degrees: %s", got)
	}
}

func TestReadingsCountUpAndStayPlausible(t *testing.T) {
	p := NewPush(0)
	defer p.Close()
	if p.interval != DefaultPushInterval {
		t.Fatalf("default interval %v", p.interval)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 700; i++ {
		var r struct {
			Temp float64
			Seq  uint64
		}
		b := p.reading(start.Add(time.Duration(i) * time.Second))
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("reading %d: %v: %s", i, err, b)
		}
		if r.Seq != uint64(i) || r.Temp < 19.9 || r.Temp > 23.1 {
			t.Fatalf("reading %d: %s", i, b)
		}
	}
}

// TestPushCloseWithoutSubscribers: Close must not hang when the ticker never
// started, and must be safe to call twice.
func TestPushCloseWithoutSubscribers(t *testing.T) {
	p := NewPush(time.Millisecond)
	done := make(chan struct{})
	go func() {
		p.Close()
		p.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
}
