// Package servetest starts wsloop servers for tests in other packages and
// talks plain HTTP to them.
package servetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Start serves h with o on a free port of 127.0.0.1 (logs discarded unless
// o.Logger is set) and shuts the server down when the test ends; a
// shutdown that does not finish within 10 s fails the test. Cleanups the
// caller registers before Start run after that shutdown.
func Start(t testing.TB, h session.Handler, o loop.Options) *loop.Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := loop.NewServer(h, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// RawHTTP sends req to addr as bytes (with Connection: close unless req
// says otherwise: the server keeps HTTP/1.1 connections alive) and returns
// the response's status code (0 when no status line came), head and body,
// as read until the server closes the connection.
func RawHTTP(t testing.TB, addr, req string) (status int, head, body string) {
	t.Helper()
	if !strings.Contains(req, "\r\nConnection:") {
		line, rest, _ := strings.Cut(req, "\r\n")
		req = line + "\r\nConnection: close\r\n" + rest
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	head, body, _ = strings.Cut(string(b), "\r\n\r\n")
	if f := strings.Fields(head); len(f) >= 2 {
		status, _ = strconv.Atoi(f[1])
	}
	return status, head, body
}
