// Package servetest starts wsloop servers for tests in other packages.
package servetest

import (
	"context"
	"io"
	"log/slog"
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
