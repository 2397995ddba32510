//go:build linux || darwin || freebsd

package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/browsertest"
)

// TestBrowserSelftest loads the embedded page in headless Chromium with
// ?selftest=1: the page's own JavaScript exercises echo (text and binary),
// chat (two members of one room) and push (two increasing readings), then
// reports its verdict to /selftest-report.
func TestBrowserSelftest(t *testing.T) {
	browsertest.Require(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { browserSelftest(t, engine) })
	}
}

func browserSelftest(t *testing.T, engine string) {
	report, reports := browsertest.Reports()
	_, _, addr := serve(t, engine, Options{PushInterval: 200 * time.Millisecond}, report)
	got := browsertest.Run(t, "http://"+addr+"/?selftest=1&report=/selftest-report", reports, 60*time.Second)
	t.Logf("%s: %s", engine, got)
	for _, want := range []string{"echo=ok", "chat=ok", "push=ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("self-test report %q lacks %q", got, want)
		}
	}
	if !strings.HasPrefix(got, "SELFTEST PASS ") {
		t.Errorf("self-test failed: %q", got)
	}
}
