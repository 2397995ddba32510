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
		t.Run(engine, func(t *testing.T) { browserSelftest(t, engine, false) })
		// The same page over https and wss (the page picks wss itself).
		t.Run(engine+"+tls", func(t *testing.T) { browserSelftest(t, engine+"+tls", false) })
	}
	// With compression: Chromium offers permessage-deflate, the server
	// accepts, and echo (a 4 KB message both ways), chat (a 2 KB message to
	// two members) and push (the readings) work compressed; the page
	// reports each test's sockets as compressed and the server's counters
	// show compressed messages both ways.
	t.Run("epoll/compressed", func(t *testing.T) { browserSelftest(t, "epoll", true) })
}

func browserSelftest(t *testing.T, engine string, compress bool) {
	report, reports := browsertest.Reports()
	cfg := session.Config{Stats: &session.Stats{}}
	if compress {
		// Every message that shrinks is compressed: the short ones too.
		cfg.Compression = &session.Compression{Threshold: -1}
	}
	_, _, addr := serveConfig(t, engine, Options{PushInterval: 200 * time.Millisecond}, report, cfg)
	scheme := "http://"
	if strings.HasSuffix(engine, "+tls") {
		scheme = "https://"
	}
	got := browsertest.Run(t, scheme+addr+"/?selftest=1&report=/selftest-report", reports, 60*time.Second)
	t.Logf("%s: %s", engine, got)
	for _, app := range []string{"transport=ws", "echo", "chat", "push"} {
		want := app
		if app != "transport=ws" {
			want += "=ok"
			if compress {
				want += "+deflate"
			}
		}
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("self-test report %q lacks %q", got, want)
		}
	}
	if !strings.HasPrefix(got, "SELFTEST PASS ") {
		t.Errorf("self-test failed: %q", got)
	}
	st := cfg.Stats
	t.Logf("connections compressed %d of %d; messages inflated %d, deflated %d; TLS handshakes %d",
		st.Compressed.Load(), st.Opened.Load(), st.Inflated.Load(), st.Deflated.Load(), st.TLSHandshakes.Load())
	if tlsOn := strings.HasSuffix(engine, "+tls"); tlsOn != (st.TLSHandshakes.Load() > 0) {
		t.Errorf("over TLS %v, but %d TLS handshakes", tlsOn, st.TLSHandshakes.Load())
	}
	if !compress {
		if st.Compressed.Load() != 0 || st.Inflated.Load() != 0 {
			t.Errorf("compression in use without Compression")
		}
		return
	}
	// Every socket negotiated (the self-test's four at least); the browser
	// compressed its long echo and chat messages at least, the server the
	// echo and the chat message to both members. (A reading, 52 bytes, does
	// not shrink without context takeover: it goes out as it is.)
	if st.Compressed.Load() < 4 || st.Compressed.Load() != st.Opened.Load() || st.Inflated.Load() < 2 || st.Deflated.Load() < 3 {
		t.Errorf("compression not in use: %d of %d connections, %d inflated, %d deflated",
			st.Compressed.Load(), st.Opened.Load(), st.Inflated.Load(), st.Deflated.Load())
	}
}

// TestBrowserSSE: with ?transport=sse the page's chat and push run over the
// fallback (EventSource down, fetch POST up) on every engine; echo, which
// is WebSocket only, is skipped.
func TestBrowserSSE(t *testing.T) {
	browsertest.Require(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { browserFallback(t, engine, "&transport=sse", nil) })
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
	browserFallback(t, "epoll", "", block)
}

// browserFallback runs the self-test with query added to its URL and the
// server's options edited, and wants it to pass over event streams.
func browserFallback(t *testing.T, engine, query string, edit func(o *loop.Options)) {
	report, reports := browsertest.Reports()
	_, _, addr := serveWith(t, engine, Options{PushInterval: 200 * time.Millisecond}, report, session.Config{}, edit)
	got := browsertest.Run(t, "http://"+addr+"/?selftest=1&report=/selftest-report"+query, reports, 60*time.Second)
	t.Logf("%s: %s", engine, got)
	for _, want := range []string{"transport=sse", "echo=skip", "chat=ok", "push=ok"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("self-test report %q lacks %q", got, want)
		}
	}
	if !strings.HasPrefix(got, "SELFTEST PASS ") {
		t.Errorf("self-test failed: %q", got)
	}
}
