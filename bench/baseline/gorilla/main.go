// Command gorilla is the gorilla/websocket baseline of wsbench, written the
// way the package's documentation and examples show: an Upgrader and one
// goroutine per connection running a ReadMessage/WriteMessage loop; for
// server push, the chat example's shape (a buffered send channel and a
// write pump goroutine per subscriber, each reading prepared once).
package main

import (
	"expvar"
	"flag"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	// The load generator sends no Origin; accept any.
	CheckOrigin: func(*http.Request) bool { return true },
}

var dropped atomic.Uint64

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	interval := flag.Duration("push-interval", time.Second, "time between push readings")
	flag.Int("max-conns", 0, "accepted for command-line compatibility with wsloop; not enforced")
	flag.Parse()

	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	expvar.Publish("dropped", expvar.Func(func() any { return dropped.Load() }))

	push := &pusher{subs: make(map[*subscriber]struct{}), interval: *interval}
	http.HandleFunc("/ws/echo", echo)
	http.HandleFunc("/ws/push", push.serve)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	slog.Info("gorilla baseline listening", "addr", *addr)
	if err := http.ListenAndServe(*addr, nil); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer c.Close()
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, message); err != nil {
			return
		}
	}
}

type subscriber struct {
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
}

type pusher struct {
	mu   sync.Mutex // held from making a reading to queueing it, so each subscriber gets every reading once
	subs map[*subscriber]struct{}
	last *websocket.PreparedMessage
	seq  uint64

	interval time.Duration
	started  bool // the first subscriber makes a reading and starts the ticker, as wsloop's push does
}

// next makes the next reading; called with p.mu held.
func (p *pusher) next(now time.Time) {
	p.seq++
	if pm, err := websocket.NewPreparedMessage(websocket.TextMessage, reading(now, p.seq)); err == nil {
		p.last = pm
	}
}

func (p *pusher) run(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for now := range t.C {
		p.mu.Lock()
		p.next(now)
		for s := range p.subs {
			select {
			case s.send <- p.last:
			default: // a subscriber 256 readings behind misses this one
				dropped.Add(1)
			}
		}
		p.mu.Unlock()
	}
}

func (p *pusher) serve(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s := &subscriber{conn: conn, send: make(chan *websocket.PreparedMessage, 256)}
	p.mu.Lock()
	if !p.started {
		p.started = true
		p.next(time.Now())
		go p.run(p.interval)
	}
	p.subs[s] = struct{}{}
	if p.last != nil {
		s.send <- p.last
	}
	p.mu.Unlock()
	go writePump(s)
	defer func() {
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
		close(s.send)
		conn.Close()
	}()
	for { // read (and drop) until the connection ends, answering control frames
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

func writePump(s *subscriber) {
	for pm := range s.send {
		if err := s.conn.WritePreparedMessage(pm); err != nil {
			s.conn.Close() // wakes the reader, which unsubscribes and closes send
			for range s.send {
			}
			return
		}
	}
}

// reading encodes one simulated sensor reading as cmd/wsloop's push does.
func reading(now time.Time, seq uint64) []byte {
	temp := 21.5 + 1.5*math.Sin(float64(now.UnixMilli()%600_000)/600_000*2*math.Pi)
	temp = math.Round(temp*10) / 10
	b := append(make([]byte, 0, 64), `{"t":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","temp":`...)
	b = strconv.AppendFloat(b, temp, 'f', 1, 64)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}
