package demo

import (
	"bytes"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// DefaultPushInterval is how often Push publishes a reading.
const DefaultPushInterval = time.Second

// PushTopic is the bus topic of the readings.
const PushTopic = "push"

// PushHistory is how many of the latest readings the feed keeps for event
// streams that reconnect (about a minute's at the default interval).
const PushHistory = 64

// pushEpoch is where reading numbers start: reading n is the one for the
// n-th interval after it.
var pushEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Push is the server-push application, like a sensor that reports to every
// browser watching it: once per interval one reading, for example
//
//	{"t":"2026-11-21T09:30:00.000Z","temp":21.4,"seq":42}
//
// is encoded once and published to all subscribers through a loop.Room (one
// task per loop, not one per connection): WebSocket connections (/ws/push)
// and event streams (/sse/push, served on the loops: see Stream) alike. A
// new subscriber gets the latest reading at once. Messages from
// subscribers are ignored.
//
// Each reading's event id is "push-<seq>". The room keeps the latest
// PushHistory readings, so a stream that reconnects with Last-Event-ID gets
// the ones it missed, in any process of the feed (their ids are the same
// everywhere); one that missed more, or names an id no process made, gets
// an event named "gap" (its data the id it sent) and then the latest
// reading.
//
// Readings are a function of the clock: the one for interval n since
// 2026-01-01 UTC has seq n, the interval's start as t and a temperature
// computed from t. So every process makes the same reading for the same
// interval, and a restarted process goes on where it left off instead of
// counting from 1. On a bus (NewPushOn) every process also publishes the
// readings it makes first and relays those that arrive first from the
// others: a subscriber anywhere gets each seq once, in order, even while
// its own process's ticker runs late (readings skipped over are made up
// for, up to 16 in a row).
//
// The ticker goroutine starts with the first subscriber and stops on Close.
type Push struct {
	interval time.Duration
	room     *loop.Room
	bus      bus.Bus // nil: this process only

	mu      sync.Mutex
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	cancel  func() // the bus subscription
	lastSeq uint64 // the latest reading published

	noTicker bool // tests: make no readings, relay only (guarded by mu)
}

// NewPush returns a Push publishing every interval (DefaultPushInterval when
// interval <= 0) in this process.
func NewPush(interval time.Duration) *Push { return NewPushOn(interval, nil) }

// NewPushOn returns a Push whose readings also go over b, topic PushTopic
// (nil: this process only). Processes sharing a feed must use the same
// interval.
func NewPushOn(interval time.Duration, b bus.Bus) *Push {
	if interval <= 0 {
		interval = DefaultPushInterval
	}
	return &Push{interval: interval, room: loop.NewRoomWith(loop.RoomOptions{History: PushHistory, Epoch: PushTopic}),
		bus: b, stop: make(chan struct{}), done: make(chan struct{})}
}

// Subscribers returns the number of open subscriber connections.
func (p *Push) Subscribers() int { return p.room.Len() }

// Close stops the ticker and waits for its goroutine to end. Subscribers
// stay connected but get no more readings. Close is idempotent.
func (p *Push) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	started, cancel := p.started, p.cancel
	close(p.stop)
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if started {
		<-p.done
	} else {
		close(p.done)
	}
}

// OnOpen subscribes the connection, starting the ticker on first use, and
// sends it the latest reading, or, for a stream that resumes
// (Last-Event-ID), the readings it missed.
func (p *Push) OnOpen(c *session.Conn) {
	p.mu.Lock()
	if !p.started && !p.closed {
		p.started = true
		now := time.Now()
		p.publishLocked(p.slot(now), p.reading(now)) // the room keeps it for the joiner
		if p.bus != nil {
			// Refused only when the bus is closed: this process's own
			// readings still flow.
			p.cancel, _ = p.bus.Subscribe(PushTopic, p.relay)
		}
		go p.run(p.noTicker)
	}
	p.mu.Unlock()
	// The room hands over its kept readings and takes the joiner in as one
	// step between publishes: each reading exactly once.
	last, _ := c.Value().(resumeFrom)
	p.room.JoinFrom(c, string(last), 1)
}

// OnMessage ignores what subscribers send.
func (p *Push) OnMessage(c *session.Conn, op session.Opcode, payload []byte) {}

// OnClose unsubscribes the connection.
func (p *Push) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	p.room.Leave(c.Handle())
}

// run makes one reading at the start of every interval.
func (p *Push) run(noTicker bool) {
	defer close(p.done)
	if noTicker {
		<-p.stop
		return
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		t.Reset(p.slotStart(p.slot(now) + 1).Sub(now))
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now = time.Now()
		if r := p.reading(now); p.accept(p.slot(now), r) && p.bus != nil {
			_ = p.bus.Publish(PushTopic, session.Text, r) // dropped: the others make it themselves
		}
	}
}

// relay takes a reading from another process.
func (p *Push) relay(op session.Opcode, r []byte) {
	if seq, ok := readingSeq(r); ok && op == session.Text {
		p.accept(seq, append([]byte(nil), r...))
	}
}

// maxFill bounds the readings accept makes up for: after a longer stall
// the feed skips ahead.
const maxFill = 16

// accept publishes reading r, number seq, to the subscribers unless a
// reading as recent has been published; it reports whether it did. Readings
// skipped since the last one (this process's ticker ran late, and another
// process's newer reading came first) are published first: they are a
// function of their number, so this process makes them as every other
// would, and subscribers see every seq once and in order.
func (p *Push) accept(seq uint64, r []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.lastSeq || p.closed {
		return false
	}
	if p.lastSeq > 0 && seq-p.lastSeq <= maxFill {
		for n := p.lastSeq + 1; n < seq; n++ {
			p.publishLocked(n, p.readingAt(n))
		}
	}
	p.publishLocked(seq, r)
	return true
}

func (p *Push) publishLocked(seq uint64, r []byte) {
	p.lastSeq = seq
	// Posts tasks, never blocks; a full loop queue skips its subscribers
	// once (a stream among them gets it back when it reconnects).
	_ = p.room.PublishID(seq, session.Text, r)
}

// slot is the number of the interval now falls in.
func (p *Push) slot(now time.Time) uint64 {
	return uint64(max(0, now.Sub(pushEpoch)) / p.interval)
}

func (p *Push) slotStart(n uint64) time.Time { return pushEpoch.Add(time.Duration(n) * p.interval) }

// reading makes the reading of the interval now falls in.
func (p *Push) reading(now time.Time) []byte { return p.readingAt(p.slot(now)) }

// readingAt makes reading n: a gentle daily-looking wave around 21.5 °C
// rounded to 0.1.
func (p *Push) readingAt(n uint64) []byte {
	t := p.slotStart(n)
	temp := 21.5 + 1.5*math.Sin(float64(t.UnixMilli()%600_000)/600_000*2*math.Pi)
	temp = math.Round(temp*10) / 10
	return appendReading(make([]byte, 0, 64), t, temp, n)
}

// appendReading encodes one reading as JSON.
func appendReading(b []byte, t time.Time, temp float64, seq uint64) []byte {
	b = append(b, `{"t":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","temp":`...)
	b = strconv.AppendFloat(b, temp, 'f', 1, 64)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// readingSeq reads the seq of a reading made by appendReading.
func readingSeq(r []byte) (uint64, bool) {
	i := bytes.LastIndex(r, []byte(`,"seq":`))
	if i < 0 || len(r) == 0 || r[len(r)-1] != '}' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(r[i+len(`,"seq":`):len(r)-1]), 10, 64)
	return v, err == nil
}
