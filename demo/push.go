package demo

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// DefaultPushInterval is how often Push publishes a reading.
const DefaultPushInterval = time.Second

// Push is the server-push application, like a sensor that reports to every
// browser watching it: once per interval one reading, for example
//
//	{"t":"2026-11-21T09:30:00.000Z","temp":21.4,"seq":42}
//
// is encoded once and published to all subscribers through a loop.Room (one
// task per loop, not one per connection). A new subscriber gets the latest
// reading at once. Messages from subscribers are ignored.
//
// The ticker goroutine starts with the first subscriber and stops on Close.
type Push struct {
	interval time.Duration
	room     *loop.Room

	mu      sync.Mutex
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	last    []byte // latest reading; replaced, never modified
	seq     uint64
}

// NewPush returns a Push publishing every interval (DefaultPushInterval when
// interval <= 0).
func NewPush(interval time.Duration) *Push {
	if interval <= 0 {
		interval = DefaultPushInterval
	}
	return &Push{interval: interval, room: loop.NewRoom(),
		stop: make(chan struct{}), done: make(chan struct{})}
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
	started := p.started
	close(p.stop)
	p.mu.Unlock()
	if started {
		<-p.done
	} else {
		close(p.done)
	}
}

// OnOpen subscribes the connection, starting the ticker on first use, and
// sends it the latest reading.
func (p *Push) OnOpen(c *session.Conn) {
	// Joining and reading p.last under p.mu, which the ticker holds from
	// making a reading to publishing it, gives each subscriber every reading
	// exactly once.
	p.mu.Lock()
	p.room.Join(c.Handle())
	if !p.started && !p.closed {
		p.started = true
		p.last = p.reading(time.Now())
		go p.run()
	}
	last := p.last
	p.mu.Unlock()
	if last != nil {
		_ = c.Send(session.Text, last)
	}
}

// OnMessage ignores what subscribers send.
func (p *Push) OnMessage(c *session.Conn, op session.Opcode, payload []byte) {}

// OnClose unsubscribes the connection.
func (p *Push) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	p.room.Leave(c.Handle())
}

func (p *Push) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			p.last = p.reading(now)
			if p.room.Len() > 0 {
				p.room.Publish(session.Text, p.last) // posts tasks; never blocks
			}
			p.mu.Unlock()
		}
	}
}

// reading makes the next reading, a gentle daily-looking wave around 21.5 °C
// rounded to 0.1. Called with p.mu held.
func (p *Push) reading(now time.Time) []byte {
	p.seq++
	temp := 21.5 + 1.5*math.Sin(float64(now.UnixMilli()%600_000)/600_000*2*math.Pi)
	temp = math.Round(temp*10) / 10
	return appendReading(make([]byte, 0, 64), now, temp, p.seq)
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
