// Command gobwas is the gobwas/ws baseline of wsbench in its blocking mode,
// the way the package's README shows it: ws.UpgradeHTTP from a net/http
// handler, then one goroutine per connection looping over
// wsutil.ReadClientData and wsutil.WriteServerMessage. A push reading is
// compiled into frame bytes once and written to each subscriber in turn
// by the ticker goroutine.
package main

import (
	"bytes"
	"expvar"
	"flag"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	interval := flag.Duration("push-interval", time.Second, "time between push readings")
	flag.Int("max-conns", 0, "accepted for command-line compatibility with wsloop; not enforced")
	flag.Parse()

	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))

	push := &pusher{subs: make(map[*subscriber]struct{}), interval: *interval}
	http.HandleFunc("/ws/echo", echo)
	http.HandleFunc("/ws/push", push.serve)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	slog.Info("gobwas baseline listening", "addr", *addr)
	if err := http.ListenAndServe(*addr, nil); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

// upgrade hijacks the connection. Bytes the client sent right behind its
// request may sit in the hijacked bufio.Reader; they are kept, and the
// reader (4 KiB) is dropped so that it does not count against every idle
// connection.
func upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, io.Reader, bool) {
	conn, brw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, nil, false
	}
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		return conn, io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), true
	}
	return conn, conn, true
}

func echo(w http.ResponseWriter, r *http.Request) {
	conn, rd, ok := upgrade(w, r)
	if !ok {
		return
	}
	defer conn.Close()
	rw := struct {
		io.Reader
		io.Writer
	}{rd, conn}
	for {
		msg, op, err := wsutil.ReadClientData(rw)
		if err != nil {
			return
		}
		if err := wsutil.WriteServerMessage(conn, op, msg); err != nil {
			return
		}
	}
}

// subscriber serializes the ticker's frames and the reader's control
// replies (pong, close), which wsutil writes as header and payload apart.
type subscriber struct {
	mu   sync.Mutex
	conn net.Conn
}

func (s *subscriber) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.Write(p)
}

type pusher struct {
	mu   sync.Mutex // held from making a reading to sending it, so each subscriber gets every reading once
	subs map[*subscriber]struct{}
	last []byte // the latest reading's frame
	seq  uint64

	interval time.Duration
	started  bool // the first subscriber makes a reading and starts the ticker, as wsloop's push does
}

// next makes the next reading; called with p.mu held.
func (p *pusher) next(now time.Time) {
	p.seq++
	p.last = ws.MustCompileFrame(ws.NewTextFrame(reading(now, p.seq)))
}

func (p *pusher) run(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for now := range t.C {
		p.mu.Lock()
		p.next(now)
		for s := range p.subs {
			s.Write(p.last) // a failed subscriber is removed by its own reader
		}
		p.mu.Unlock()
	}
}

func (p *pusher) serve(w http.ResponseWriter, r *http.Request) {
	conn, rd, ok := upgrade(w, r)
	if !ok {
		return
	}
	s := &subscriber{conn: conn}
	p.mu.Lock()
	if !p.started {
		p.started = true
		p.next(time.Now())
		go p.run(p.interval)
	}
	p.subs[s] = struct{}{}
	if p.last != nil {
		s.Write(p.last)
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
		conn.Close()
	}()
	rw := struct {
		io.Reader
		io.Writer
	}{rd, s}
	for { // read (and drop) until the connection ends, answering control frames
		if _, _, err := wsutil.ReadClientData(rw); err != nil {
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
