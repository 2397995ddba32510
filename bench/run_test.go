package bench

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunBaseline runs the whole harness (build, server subprocesses,
// wsload, /proc sampling, page) on a tiny matrix with the gorilla
// baseline alone: about 15 seconds, most of it compiling.
func TestRunBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs subprocesses; skipped with -short")
	}
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := QuickConfig()
	cfg.Servers, _ = LookupServers("gorilla")
	cfg.Scenarios = AllScenarios
	cfg.Sizes = []int{20, 40}
	cfg.Echo = []EchoShape{{10, 64}}
	cfg.ConnectConns = 20
	cfg.BroadcastConns = 20
	cfg.BroadcastMessages = 3
	cfg.EchoDuration = 500 * time.Millisecond
	cfg.Root = root
	cfg.Out = filepath.Join(dir, "B.md")
	cfg.ChartsDir = filepath.Join(dir, "charts")
	cfg.Command = "test"
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(res.Measurements); n != 5 {
		t.Errorf("%d measurements, want 5 (2 idle, connect, echo, broadcast)", n)
	}
	for _, m := range res.Measurements {
		key := primaryMetric(strings.Split(m.Case, "/")[0])
		if v := m.Metrics[key]; !(v > 0) {
			t.Errorf("%s: %s = %v, want > 0", m.Case, key, v)
		}
		if m.Case == "idle/40" {
			// A goroutine per connection: at least 40 goroutines, and the
			// RSS of 40 idle gorilla connections is positive.
			if m.Metrics[mGoroutines] < 40 || m.Metrics[mThreads] < 1 {
				t.Errorf("idle/40: goroutines %v threads %v", m.Metrics[mGoroutines], m.Metrics[mThreads])
			}
		}
	}
	page, err := os.ReadFile(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "| gorilla/websocket | C=10 x 64 B |") {
		t.Errorf("page lacks the echo row:\n%s", page)
	}
}
