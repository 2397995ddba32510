// Package ssetest is an event-stream (Server-Sent Events) client for tests:
// a plain HTTP/1.1 GET on its own TCP connection and a parser of its own
// (the WHATWG rules), sharing no code with the server it checks. It is
// strict about what wsloop sends: lines end in LF alone, events come whole.
package ssetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Timeout bounds every wait of a Client.
const Timeout = 10 * time.Second

// Event is one dispatched event, or a comment line (the heartbeat).
type Event struct {
	ID, Name, Data string
	Comment        bool
}

// Client is one event stream.
type Client struct {
	t        testing.TB
	Conn     net.Conn
	Response *http.Response // the head; the events are read from its Body
	br       *bufio.Reader
}

// Dial opens GET path on addr with the extra header lines (for example
// "Last-Event-ID: x"), wants 200 and text/event-stream, and closes the
// connection at the test's end.
func Dial(t testing.TB, addr, path string, header ...string) *Client {
	t.Helper()
	c, err := Open(addr, path, header...)
	if err != nil {
		t.Fatal(err)
	}
	c.t = t
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// DialOn is Dial on a connection the test made (a TLS client, say) to the
// server at host.
func DialOn(t testing.TB, conn net.Conn, host, path string, header ...string) *Client {
	t.Helper()
	c, err := OpenOn(conn, host, path, header...)
	if err != nil {
		t.Fatal(err)
	}
	c.t = t
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// Open is Dial without a test: it returns what went wrong.
func Open(addr, path string, header ...string) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		return nil, err
	}
	return OpenOn(conn, addr, path, header...)
}

// OpenOn is DialOn without a test.
func OpenOn(conn net.Conn, host, path string, header ...string) (*Client, error) {
	var err error
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(Timeout))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{Conn: conn}
	c.Response, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("GET %s: response head: %w", path, err)
	}
	if mt, _, _ := mime.ParseMediaType(c.Response.Header.Get("Content-Type")); c.Response.StatusCode != 200 || mt != "text/event-stream" {
		conn.Close()
		return nil, fmt.Errorf("GET %s: %s with Content-Type %q, want 200 text/event-stream", path, c.Response.Status, c.Response.Header.Get("Content-Type"))
	}
	// The body as framed: to the connection's end (wsloop), or chunked (a
	// proxy in front).
	c.br = bufio.NewReader(c.Response.Body)
	return c, nil
}

// Read returns the next event or comment line.
func (c *Client) Read() (Event, error) {
	var ev Event
	var data []string
	_ = c.Conn.SetReadDeadline(time.Now().Add(Timeout))
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.ContainsRune(line, '\r') {
			return ev, fmt.Errorf("a CR in line %q", line)
		}
		switch {
		case line == "":
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
			ev = Event{} // an event without data is not dispatched
		case line[0] == ':':
			if data == nil && ev.ID == "" && ev.Name == "" {
				return Event{Comment: true, Data: line[1:]}, nil
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "data":
				data = append(data, value)
			case "id":
				ev.ID = value
			case "event":
				ev.Name = value
			}
		}
	}
}

// Next is Read that fails the test on an error.
func (c *Client) Next() Event {
	c.t.Helper()
	ev, err := c.Read()
	if err != nil {
		c.t.Fatalf("event stream: %v", err)
	}
	return ev
}

// Event returns the next event, skipping comments.
func (c *Client) Event() Event {
	c.t.Helper()
	for {
		if ev := c.Next(); !ev.Comment {
			return ev
		}
	}
}

// Until returns the next event whose data is data, skipping others.
func (c *Client) Until(data string) Event {
	c.t.Helper()
	for {
		if ev := c.Event(); ev.Data == data {
			return ev
		}
	}
}

// ExpectEnd reads until the server ends the stream.
func (c *Client) ExpectEnd() {
	c.t.Helper()
	for {
		_, err := c.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.t.Fatalf("event stream: %v, want its end", err)
		}
	}
}

// Close closes the connection: the server sees its client go.
func (c *Client) Close() { c.Conn.Close() }
