package loop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpServer serves h on every engine of myEngines and the epoll engine.
func httpEngines() []string { return append([]string{"epoll"}, myEngines...) }

func echoBody() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d:%s", r.Method, r.URL.Path, r.ContentLength, b)
	})
}

// Keep-alive: one connection carries several requests, each with its body,
// one after the other and pipelined; Connection: close ends it.
func TestHTTPKeepAliveAndBodies(t *testing.T) {
	for _, engine := range httpEngines() {
		t.Run(engine, func(t *testing.T) {
			s := startServer(t, engine, echoHandler(), Options{HTTP: echoBody()})
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(testWait))
			br := bufio.NewReader(nc)
			read := func(want string) {
				t.Helper()
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != want {
					t.Fatalf("got %d %q, want %q", resp.StatusCode, b, want)
				}
			}
			io.WriteString(nc, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
			read("POST /a 5:hello")
			// a body that comes in pieces
			io.WriteString(nc, "PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel")
			time.Sleep(20 * time.Millisecond)
			io.WriteString(nc, "lo world")
			read("PUT /b 11:hello world")
			// two pipelined requests in one write
			io.WriteString(nc, "GET /c HTTP/1.1\r\nHost: x\r\n\r\nPOST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
			read("GET /c 0:")
			read("POST /d 2:ok")
			// the last one
			io.WriteString(nc, "GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			read("GET /e 0:")
			if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("after Connection: close: %d bytes, %v", n, err)
			}
		})
	}
}

// What the HTTP side refuses: bodies over the limit (413), chunked bodies
// (411), smuggling-prone framing (400); Expect: 100-continue is answered.
func TestHTTPRequestBodyRules(t *testing.T) {
	for _, engine := range httpEngines() {
		t.Run(engine, func(t *testing.T) {
			opts := Options{HTTP: echoBody()}
			opts.Session.MaxRequestBody = 100
			s := startServer(t, engine, echoHandler(), opts)
			for req, want := range map[string]string{
				"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n":                               "HTTP/1.1 413 ",
				"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n": "HTTP/1.1 411 ",
				"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n":                           "HTTP/1.1 501 ",
				"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n":   "HTTP/1.1 400 ",
				"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n":            "HTTP/1.1 400 ",
			} {
				if got := rawHTTP(t, s, req); !strings.HasPrefix(got, want) {
					t.Errorf("%q: got %q, want %s", req, got, want)
				}
			}
			// 100-continue: the client waits for it before sending the body
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(testWait))
			io.WriteString(nc, "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
			br := bufio.NewReader(nc)
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("before the body: %q %v", line, err)
			}
			br.ReadString('\n')
			io.WriteString(nc, "data")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "POST /u 4:data" {
				t.Fatalf("after 100-continue: %q", b)
			}
		})
	}
}

// A handler's large response is streamed, not held whole: with a client
// that reads late, the server holds about its HighWater, and everything
// arrives in order. A handler that flushes (an event stream) is sent part
// by part as it goes.
func TestHTTPStreamsResponses(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	for _, engine := range httpEngines() {
		t.Run(engine, func(t *testing.T) {
			events := make(chan string)
			defer close(events)
			mux := http.NewServeMux()
			mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
			mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.(http.Flusher).Flush() // the head goes out before the first event
				for ev := range events {
					fmt.Fprintf(w, "data: %s\n\n", ev)
					w.(http.Flusher).Flush()
				}
			})
			opts := Options{HTTP: mux}
			opts.Session.HighWater = 64 << 10
			s := startServer(t, engine, echoHandler(), opts)
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(testWait))
			io.WriteString(nc, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(200 * time.Millisecond) // the handler runs ahead of the reader
			if _, mem := s.Queued(); mem > 256<<10 {
				t.Fatalf("the server holds %d bytes of queue for a client that reads nothing", mem)
			}
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, big) || resp.TransferEncoding[0] != "chunked" {
				t.Fatalf("/big: %d of %d bytes (%v), encoding %v", len(b), len(big), err, resp.TransferEncoding)
			}

			req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/events", nil)
			resp, err = http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			er := bufio.NewReader(resp.Body)
			for i := 0; i < 3; i++ {
				events <- fmt.Sprint("tick ", i)
				line, err := er.ReadString('\n')
				if err != nil || line != fmt.Sprintf("data: tick %d\n", i) {
					t.Fatalf("event %d: %q %v", i, line, err)
				}
				er.ReadString('\n')
			}
		})
	}
}

// A client that half-closes its socket right after its request (as
// "printf ... | nc" does) still gets the answer, then the server closes.
// (Not on gnet, which closes a socket on EOF.)
func TestHTTPHalfClosedClientIsAnswered(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the EOF arrives before the answer
		io.WriteString(w, "late answer")
	})
	for _, engine := range []string{"epoll", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			s := startServer(t, engine, echoHandler(), Options{HTTP: slow})
			got := rawExchange(t, s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "late answer") {
				t.Fatalf("half-closed client got %q", got)
			}
			// and for an answer given at once, on the loop
			s2 := startServer(t, engine, echoHandler(), Options{})
			if got := rawExchange(t, s2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true); !strings.HasSuffix(got, "\r\n\r\nok") {
				t.Fatalf("healthz: %q", got)
			}
		})
	}
}
