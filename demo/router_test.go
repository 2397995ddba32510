package demo

import (
	"errors"
	"net/url"
	"testing"

	"github.com/wsloop/wsloop/session"
)

type fakeRequest struct {
	path, query, origin, host string
}

func (r fakeRequest) Path() string { return r.path }
func (r fakeRequest) Query() url.Values {
	v, _ := url.ParseQuery(r.query)
	return v
}

func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var re *session.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *session.RejectError", err)
	}
	return re.Status
}

func TestRouterPaths(t *testing.T) {
	d := New(Options{})
	defer d.Close()
	cases := []struct {
		path   string
		status int
		want   session.Handler
	}{
		{"/ws/echo", 0, Echo},
		{"/ws/push", 0, d.Push},
		{"/ws/chat", 0, d.Chat},
		{"/ws/nope", 404, nil},
		{"/", 404, nil},
		{"/ws/echo/", 404, nil},
		{"/WS/ECHO", 404, nil},
	}
	for _, c := range cases {
		acc, err := d.Router.upgrade(fakeRequest{path: c.path, host: "h"})
		if got := status(t, err); got != c.status {
			t.Errorf("%s: status %d, want %d", c.path, got, c.status)
			continue
		}
		if c.status == 0 && acc.Handler != c.want {
			t.Errorf("%s: handler %T, want %T", c.path, acc.Handler, c.want)
		}
	}
}

func TestChatAccept(t *testing.T) {
	ch := NewChat()
	cases := []struct {
		query      string
		status     int
		room, nick string
	}{
		{"", 0, DefaultRoom, ""},
		{"room=dev&nick=ana", 0, "dev", "ana"},
		{"room=a.b_c-1", 0, "a.b_c-1", ""},
		{"nick=J%C3%BCrgen%20K", 0, DefaultRoom, "Jürgen K"},
		{"room=has%20space", 400, "", ""},
		{"room=%2e%2e%2fx", 400, "", ""},
		{"room=abcdefghijklmnopqrstuvwxyz0123456", 400, "", ""}, // 33 bytes
		{"room=abcdefghijklmnopqrstuvwxyz012345", 0, "abcdefghijklmnopqrstuvwxyz012345", ""},
		{"nick=abcdefghijklmnopqrstuvwx", 0, DefaultRoom, "abcdefghijklmnopqrstuvwx"}, // 24 runes
		{"nick=" + "abcdefghijklmnopqrstuvwxy", 400, "", ""},                          // 25 runes
		{"nick=a%0Ab", 400, "", ""},                                                   // control character
		{"nick=%FF", 400, "", ""},                                                     // not UTF-8
	}
	for _, c := range cases {
		acc, err := ch.accept(fakeRequest{path: "/ws/chat", query: c.query})
		if got := status(t, err); got != c.status {
			t.Errorf("?%s: status %d, want %d", c.query, got, c.status)
			continue
		}
		if c.status != 0 {
			continue
		}
		m, ok := acc.Value.(*member)
		if !ok || acc.Handler != ch {
			t.Fatalf("?%s: accept %+v", c.query, acc)
		}
		if m.room != c.room || m.nick != c.nick {
			t.Errorf("?%s: room %q nick %q, want %q %q", c.query, m.room, m.nick, c.room, c.nick)
		}
	}
}
