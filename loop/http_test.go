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

// rawHTTP sends req on a new connection (with Connection: close, unless it
// says otherwise) and returns everything the server sends until it closes
// the connection.
func rawHTTP(t *testing.T, s *Server, req string) string {
	t.Helper()
	if !strings.Contains(req, "\r\nConnection:") {
		line, rest, _ := strings.Cut(req, "\r\n")
		req = line + "\r\nConnection: close\r\n" + rest
	}
	return rawExchange(t, s, req, false)
}

// rawExchange sends req on a new connection, half-closing it after when
// halfClose is set (the client sends nothing more), and returns everything
// the server sends until it closes the connection.
func rawExchange(t *testing.T, s *Server, req string, halfClose bool) string {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testWait))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		_ = nc.(*net.TCPConn).CloseWrite()
	}
	resp, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("reading the response: %v (got %q)", err, resp)
	}
	return string(resp)
}

// splitResponse returns the head (without the blank line) and the body.
func splitResponse(t *testing.T, resp string) (head, body string) {
	t.Helper()
	head, body, ok := strings.Cut(resp, "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", resp)
	}
	return head, body
}

func wantHeader(t *testing.T, head, line string) {
	t.Helper()
	if !strings.Contains(head+"\r\n", "\r\n"+line+"\r\n") {
		t.Errorf("head lacks %q:\n%s", line, head)
	}
}

func TestHTTPDefault(t *testing.T) {
	for _, engine := range myEngines {
		t.Run(engine, func(t *testing.T) {
			s := startServer(t, engine, echoHandler(), Options{})

			head, body := splitResponse(t, rawHTTP(t, s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
			if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || body != "ok" {
				t.Errorf("/healthz: %q %q", head, body)
			}
			wantHeader(t, head, "Content-Length: 2")

			head, body = splitResponse(t, rawHTTP(t, s, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
			if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || body != "" {
				t.Errorf("HEAD /healthz: %q %q", head, body)
			}
			wantHeader(t, head, "Content-Length: 2")

			head, body = splitResponse(t, rawHTTP(t, s, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"))
			if !strings.HasPrefix(head, "HTTP/1.1 404 Not Found\r\n") || body != "404 page not found\n" {
				t.Errorf("404: %q %q", head, body)
			}
			wantHeader(t, head, fmt.Sprintf("Content-Length: %d", len(body)))
			waitUntil(t, "connections to close", func() bool { return s.Conns() == 0 })
		})
	}
}

func TestHTTPCustomHandler(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB: far more than a socket buffer
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "yes")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s q=%s", r.Method, r.URL.Path, r.URL.Query().Get("q"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/ctx", func(w http.ResponseWriter, r *http.Request) {
		if r.Context() == nil || r.Context().Err() != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})

	for _, engine := range myEngines {
		t.Run(engine, func(t *testing.T) {
			s := startServer(t, engine, echoHandler(), Options{HTTP: mux})
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			base := "http://" + s.Addr().String()

			resp, err := client.Get(base + "/hello?q=42")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated || string(b) != "GET /hello q=42" || resp.Header.Get("X-Test") != "yes" {
				t.Errorf("/hello: %d %q %v", resp.StatusCode, b, resp.Header)
			}

			head, body := splitResponse(t, rawHTTP(t, s, "HEAD /hello?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
			if !strings.HasPrefix(head, "HTTP/1.1 201 Created\r\n") || body != "" {
				t.Errorf("HEAD /hello: %q %q", head, body)
			}
			wantHeader(t, head, fmt.Sprintf("Content-Length: %d", len("HEAD /hello q=1")))
			wantHeader(t, head, "X-Test: yes")

			// A client that reads late makes the server keep most of the
			// body in user space: it must still all arrive before the close.
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_ = nc.SetDeadline(time.Now().Add(testWait))
			io.WriteString(nc, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			time.Sleep(300 * time.Millisecond)
			resp, err = http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			nc.Close()
			if err != nil || string(raw) != string(big) {
				t.Errorf("/big: %d of %d bytes, %v", len(raw), len(big), err)
			}

			resp, err = client.Get(base + "/panic")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("/panic: %d, want 500", resp.StatusCode)
			}

			head, body = splitResponse(t, rawHTTP(t, s, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"))
			if !strings.HasPrefix(head, "HTTP/1.1 204 No Content\r\n") || body != "" || strings.Contains(head, "Content-Length") {
				t.Errorf("204: %q %q", head, body)
			}

			resp, err = client.Get(base + "/ctx")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/ctx: %d", resp.StatusCode)
			}

			resp, err = client.Get(base + "/nothing-here")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("mux 404: %d", resp.StatusCode)
			}
			waitUntil(t, "connections to close", func() bool { return s.Conns() == 0 })
		})
	}
}

func TestFormatResponse(t *testing.T) {
	h := http.Header{"X-Evil": {"a\r\nInjected: 1"}, "Content-Length": {"999"}, "Content-Type": {"text/plain"}}
	got := string(formatResponse(nil, 200, h, []byte("hello"), false, false))
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	if body != "hello" {
		t.Errorf("body %q", body)
	}
	for _, line := range []string{"HTTP/1.1 200 OK", "Content-Type: text/plain", "X-Evil: aInjected: 1", "Content-Length: 5", "Connection: close"} {
		wantHeader(t, "\r\n"+head, line)
	}
	if strings.Contains(head, "999") || strings.Contains(head, "\r\nInjected") {
		t.Errorf("head %q", head)
	}
	head, body, _ = strings.Cut(string(formatResponse(nil, 599, http.Header{}, []byte("x"), true, true)), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 599 status code 599\r\n") || body != "" {
		t.Errorf("HEAD 599: %q %q", head, body)
	}
	wantHeader(t, "\r\n"+head, "Content-Length: 1")
}
