// Command gobwas is the gobwas/ws baseline of wsbench in its blocking mode,
// the way the package's README shows it: ws.UpgradeHTTP from a net/http
// handler, then one goroutine per connection looping over
// wsutil.ReadClientData and wsutil.WriteServerMessage. A chat message is
// compiled into frame bytes once and written to each member in turn by the
// sender's goroutine.
package main

import (
	"bytes"
	"expvar"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"

	"github.com/wsloop/wsloop/bench/baseline/chatrules"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Int("max-conns", 0, "accepted for command-line compatibility with wsloop; not enforced")
	flag.Parse()

	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))

	chat := &chat{rooms: make(map[string]*room)}
	http.HandleFunc("/ws/echo", echo)
	http.HandleFunc("/ws/chat", chat.serve)
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

// member serializes the frames other members' goroutines write to it and
// its own reader's control replies (pong, close), which wsutil writes as
// header and payload apart.
type member struct {
	mu   sync.Mutex
	conn net.Conn
}

func (m *member) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn.Write(p)
}

type room struct {
	mu      sync.RWMutex
	members map[*member]struct{}
}

// publish compiles the frame once and writes it to every member.
func (rm *room) publish(p []byte) {
	frame := ws.MustCompileFrame(ws.NewTextFrame(p))
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	for m := range rm.members {
		m.Write(frame) // a failed member leaves through its own reader
	}
}

type chat struct {
	mu    sync.Mutex // guards rooms and member counts
	rooms map[string]*room
}

func (ch *chat) serve(w http.ResponseWriter, r *http.Request) {
	name, nick, err := chatrules.Params(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	conn, rd, ok := upgrade(w, r)
	if !ok {
		return
	}
	m := &member{conn: conn}

	ch.mu.Lock()
	rm := ch.rooms[name]
	if rm == nil {
		rm = &room{members: make(map[*member]struct{})}
		ch.rooms[name] = rm
	}
	rm.mu.Lock()
	rm.members[m] = struct{}{}
	n := len(rm.members)
	rm.mu.Unlock()
	ch.mu.Unlock()
	if n <= chatrules.MaxAnnouncedRoom {
		rm.publish([]byte("* " + nick + " joined"))
	}

	defer func() {
		ch.mu.Lock()
		rm.mu.Lock()
		delete(rm.members, m)
		n := len(rm.members)
		rm.mu.Unlock()
		if n == 0 {
			delete(ch.rooms, name)
		}
		ch.mu.Unlock()
		if n > 0 && n < chatrules.MaxAnnouncedRoom {
			rm.publish([]byte("* " + nick + " left"))
		}
		conn.Close()
	}()
	rw := struct {
		io.Reader
		io.Writer
	}{rd, m}
	for {
		// The blocking helpers read a whole message before its size can be
		// judged; the close code is the one wsloop sends all the same.
		msg, op, err := wsutil.ReadClientData(rw)
		if err != nil {
			return
		}
		if len(msg) > chatrules.MaxChatMessage {
			m.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusMessageTooBig, "chat messages are at most 4 KiB"))))
			return
		}
		if op != ws.OpText {
			m.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusUnsupportedData, "chat takes text messages"))))
			return
		}
		rm.publish(chatrules.Message(nick, msg))
	}
}
