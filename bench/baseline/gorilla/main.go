// Command gorilla is the gorilla/websocket baseline of wsbench, written the
// way the package's documentation and examples show: an Upgrader and one
// goroutine per connection running a ReadMessage/WriteMessage loop; for chat
// rooms, the chat example's shape (a buffered send channel and a write pump
// goroutine per member, each message prepared once).
package main

import (
	"expvar"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/bench/baseline/chatrules"

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
	flag.Int("max-conns", 0, "accepted for command-line compatibility with wsloop; not enforced")
	certFile := flag.String("tls-cert", "", "serve wss with this certificate (PEM), through net/http's ListenAndServeTLS")
	keyFile := flag.String("tls-key", "", "private key (PEM) for -tls-cert")
	flag.Parse()

	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	expvar.Publish("dropped", expvar.Func(func() any { return dropped.Load() }))

	chat := &chat{rooms: make(map[string]*room)}
	http.HandleFunc("/ws/echo", echo)
	http.HandleFunc("/ws/chat", chat.serve)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	slog.Info("gorilla baseline listening", "addr", *addr)
	var err error
	if *certFile != "" {
		err = http.ListenAndServeTLS(*addr, *certFile, *keyFile, nil)
	} else {
		err = http.ListenAndServe(*addr, nil)
	}
	if err != nil {
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

type member struct {
	conn *websocket.Conn
	nick string
	send chan *websocket.PreparedMessage
}

type room struct {
	members map[*member]struct{}
}

type chat struct {
	mu    sync.Mutex // guards rooms and their members
	rooms map[string]*room
}

// publish prepares p once and queues it for every member of rm; a member
// 256 messages behind misses it (counted in dropped) rather than stalling
// the room. Called with ch.mu held.
func (rm *room) publish(p []byte) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, p)
	if err != nil {
		return
	}
	for m := range rm.members {
		select {
		case m.send <- pm:
		default:
			dropped.Add(1)
		}
	}
}

func (ch *chat) serve(w http.ResponseWriter, r *http.Request) {
	name, nick, err := chatrules.Params(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(chatrules.MaxChatMessage) // over it: close 1009
	m := &member{conn: conn, nick: nick, send: make(chan *websocket.PreparedMessage, 256)}
	go writePump(m)

	ch.mu.Lock()
	rm := ch.rooms[name]
	if rm == nil {
		rm = &room{members: make(map[*member]struct{})}
		ch.rooms[name] = rm
	}
	rm.members[m] = struct{}{}
	if len(rm.members) <= chatrules.MaxAnnouncedRoom {
		rm.publish([]byte("* " + nick + " joined"))
	}
	ch.mu.Unlock()

	defer func() {
		ch.mu.Lock()
		delete(rm.members, m)
		if len(rm.members) == 0 {
			delete(ch.rooms, name)
		} else if len(rm.members) < chatrules.MaxAnnouncedRoom {
			rm.publish([]byte("* " + nick + " left"))
		}
		ch.mu.Unlock()
		close(m.send)
		conn.Close()
	}()
	for {
		mt, p, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "chat takes text messages"), deadline())
			return
		}
		msg := chatrules.Message(nick, p)
		ch.mu.Lock()
		rm.publish(msg)
		ch.mu.Unlock()
	}
}

func writePump(m *member) {
	for pm := range m.send {
		if err := m.conn.WritePreparedMessage(pm); err != nil {
			m.conn.Close() // wakes the reader, which leaves the room and closes send
			for range m.send {
			}
			return
		}
	}
}

func deadline() time.Time { return time.Now().Add(time.Second) }
