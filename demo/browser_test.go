//go:build linux || darwin || freebsd

package demo

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/browsertest"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestBrowserSelftest loads the embedded page in headless Chromium with
// ?selftest=1: the page's own JavaScript exercises echo (text and binary),
// chat (two members of one room) and push (two increasing readings), then
// reports its verdict to /selftest-report.
func TestBrowserSelftest(t *testing.T) {
	browsertest.Require(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			browserSelftest(t, engine, "", nil, "transport=ws", "echo=ok", "chat=ok", "push=ok")
		})
	}
}

// TestBrowserSSE: with ?transport=sse the page's chat and push run over the
// fallback (EventSource down, fetch POST up) on every engine; echo, which
// is WebSocket only, is skipped.
func TestBrowserSSE(t *testing.T) {
	browsertest.Require(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			browserSelftest(t, engine, "&transport=sse", nil, "transport=sse", "echo=skip", "chat=ok", "push=ok")
		})
	}
}

// TestBrowserFallback: where every WebSocket upgrade is refused (as by a
// proxy that blocks them), the page finds out by itself and runs chat and
// push over the fallback.
func TestBrowserFallback(t *testing.T) {
	browsertest.Require(t)
	block := func(o *loop.Options) {
		o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
			return session.Accept{}, &session.RejectError{Status: http.StatusForbidden, Message: "upgrades are blocked here"}
		}
	}
	browserSelftest(t, "epoll", "", block, "transport=sse", "echo=skip", "chat=ok", "push=ok")
}

func browserSelftest(t *testing.T, engine, query string, edit func(o *loop.Options), want ...string) {
	report, reports := browsertest.Reports()
	_, _, addr := serveWith(t, engine, Options{PushInterval: 200 * time.Millisecond}, report, edit)
	got := browsertest.Run(t, "http://"+addr+"/?selftest=1&report=/selftest-report"+query, reports, 60*time.Second)
	t.Logf("%s: %s", engine, got)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("self-test report %q lacks %q", got, w)
		}
	}
	if !strings.HasPrefix(got, "SELFTEST PASS ") {
		t.Errorf("self-test failed: %q", got)
	}
}
