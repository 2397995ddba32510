//go:build linux || darwin || freebsd

package demo

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

const chromiumPath = "/usr/bin/chromium"

// chromiumFlags are the flags of every headless run (the user-data-dir is
// added per run).
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// TestBrowserSelftest loads the embedded page in headless Chromium with
// ?selftest=1: the page's own JavaScript exercises echo (text and binary),
// chat (two members of one room) and push (two increasing readings), then
// POSTs its verdict to /selftest-report. --dump-dom cannot be used: it
// snapshots the page on load (or when virtual time runs out, which does not
// wait for WebSocket traffic), before the self-test has finished.
func TestBrowserSelftest(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI (apt-get install -y chromium): %v", err)
		}
		t.Skipf("%s not installed (apt-get install -y chromium); skipped outside CI", chromiumPath)
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { browserSelftest(t, engine, false) })
	}
	// With compression: Chromium offers permessage-deflate, the server
	// accepts, and echo (a 4 KB message both ways), chat (a 2 KB message to
	// two members) and push (the readings) work compressed; the page
	// reports each test's sockets as compressed and the server's counters
	// show compressed messages both ways.
	t.Run("epoll/compressed", func(t *testing.T) { browserSelftest(t, "epoll", true) })
}

func browserSelftest(t *testing.T, engine string, compress bool) {
	reports := make(chan string, 1)
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reports <- r.URL.Query().Get("result"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	cfg := session.Config{Stats: &session.Stats{}}
	if compress {
		// Every message that shrinks is compressed: the short ones too.
		cfg.Compression = &session.Compression{Threshold: -1}
	}
	_, _, addr := serveConfig(t, engine, Options{PushInterval: 200 * time.Millisecond}, report, cfg)

	var stderr lockedBuffer
	args := append(append([]string{}, chromiumFlags...),
		"--user-data-dir="+t.TempDir(),
		"http://"+addr+"/?selftest=1&report=/selftest-report")
	cmd := exec.Command(chromiumPath, args...)
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	// Its own process group, so that the renderer and helper processes go
	// with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopChromium(t, cmd, exited)

	select {
	case got := <-reports:
		t.Logf("%s: %s", engine, got)
		for _, app := range []string{"echo", "chat", "push"} {
			want := app + "=ok"
			if compress {
				want += "+deflate"
			}
			if !strings.Contains(" "+got+" ", " "+want+" ") {
				t.Errorf("self-test report %q lacks %q", got, want)
			}
		}
		if !strings.HasPrefix(got, "SELFTEST PASS ") {
			t.Errorf("self-test failed: %q", got)
		}
		st := cfg.Stats
		t.Logf("connections compressed %d of %d; messages inflated %d, deflated %d",
			st.Compressed.Load(), st.Opened.Load(), st.Inflated.Load(), st.Deflated.Load())
		if compress {
			// Every socket negotiated (the self-test's four at least); the
			// browser compressed its long echo and chat messages at least,
			// the server the echo and the chat message to both members.
			// (A reading, 56 bytes, does not shrink without context
			// takeover: it goes out as it is.)
			if st.Compressed.Load() < 4 || st.Compressed.Load() != st.Opened.Load() || st.Inflated.Load() < 2 || st.Deflated.Load() < 3 {
				t.Errorf("compression not in use: %d connections, %d inflated, %d deflated",
					st.Compressed.Load(), st.Inflated.Load(), st.Deflated.Load())
			}
		} else if st.Compressed.Load() != 0 || st.Inflated.Load() != 0 {
			t.Errorf("compression in use without Compression")
		}
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited before reporting: %v\n%s", err, tail(stderr.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("no self-test report within 60s\n%s", tail(stderr.String()))
	}
}

// stopChromium asks Chromium to quit, then kills its process group if it
// lingers, and waits so that the user-data-dir can be removed.
func stopChromium(t *testing.T, cmd *exec.Cmd, exited chan error) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Helpers may outlive the browser process by a moment.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return s
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
