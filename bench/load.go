package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// latency is the part of a wsload latency summary the benchmark uses
// (microseconds).
type latency struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_us"`
	P99   int64 `json:"p99_us"`
}

// loadReport is the part of wsload's -json report (loadtest.Report) the
// benchmark reads. It is decoded from JSON rather than imported so that the
// benchmark measures the wsload binary exactly as a user runs it.
type loadReport struct {
	Scenario       string   `json:"scenario"`
	Conns          int      `json:"conns"`
	Opened         int64    `json:"opened"`
	HeldAtStart    int64    `json:"held_at_start"`
	HeldAtEnd      int64    `json:"held_at_end"`
	Sent           int64    `json:"sent"`
	Received       int64    `json:"received"`
	Delivered      int64    `json:"delivered"`
	Expected       int64    `json:"expected"`
	Lost           int64    `json:"lost"`
	RampSeconds    float64  `json:"ramp_seconds"`
	ConnectRate    float64  `json:"connect_rate"`
	TrafficSeconds float64  `json:"traffic_seconds"`
	MessagesPerSec float64  `json:"messages_per_sec"`
	Handshake      latency  `json:"handshake_latency"`
	Latency        latency  `json:"message_latency"`
	RSSBefore      int64    `json:"server_rss_before"`
	RSSAfter       int64    `json:"server_rss_after"`
	BytesPerConn   float64  `json:"server_bytes_per_conn"`
	Failures       []string `json:"failures"`
}

// loadRun is one invocation of wsload.
type loadRun struct {
	Scenario string
	URL      string
	Conns    int
	Size     int           // echo message size
	Rate     float64       // scenario rate
	Messages int           // messages in total (0: until Duration)
	Publish  string        // broadcast source: "server" (push) or "self"
	Duration time.Duration // traffic (idle: how long connections are held)
	Drain    time.Duration
	PID      int // server, for its RSS per connection
	Extra    []string
}

// args is the wsload command line for r, writing its report to jsonPath.
func (r loadRun) args(jsonPath string) []string {
	a := []string{
		"-scenario", r.Scenario,
		"-url", r.URL,
		"-conns", strconv.Itoa(r.Conns),
		"-json", jsonPath,
	}
	if r.Size > 0 {
		a = append(a, "-size", strconv.Itoa(r.Size))
	}
	if r.Rate > 0 {
		a = append(a, "-rate", strconv.FormatFloat(r.Rate, 'f', -1, 64))
	}
	if r.Messages > 0 {
		a = append(a, "-messages", strconv.Itoa(r.Messages))
	}
	if r.Publish != "" {
		a = append(a, "-publish", r.Publish)
	}
	if r.Duration > 0 {
		a = append(a, "-duration", r.Duration.String())
	}
	if r.Drain > 0 {
		a = append(a, "-drain", r.Drain.String())
	}
	if r.PID > 0 {
		a = append(a, "-server-pid", strconv.Itoa(r.PID))
	}
	return append(a, r.Extra...)
}

// errVerification marks a wsload run that finished but found the server at fault.
var errVerification = errors.New("wsload verification failed")

// runLoad runs wsload and decodes its report. A run that exits non-zero
// with a report whose Failures are set returns the report and an error
// wrapping errVerification.
func runLoad(ctx context.Context, bin, tmpDir string, r loadRun, log *slog.Logger) (*loadReport, error) {
	f, err := os.CreateTemp(tmpDir, "wsload-*.json")
	if err != nil {
		return nil, err
	}
	jsonPath := f.Name()
	f.Close()
	defer os.Remove(jsonPath)

	// Generous bound: connects, traffic, drain, and closing 19,000 sockets.
	limit := r.Duration + r.Drain + 2*time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	args := r.args(jsonPath)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	log.Debug("wsload", "args", strings.Join(args, " "))
	runErr := cmd.Run()

	b, err := os.ReadFile(jsonPath)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("wsload %s wrote no report (%v); exit: %v; output:\n%s", strings.Join(args, " "), err, runErr, out.String())
	}
	var rep loadReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("wsload report %s: %v", jsonPath, err)
	}
	if len(rep.Failures) > 0 {
		return &rep, fmt.Errorf("%w: %s", errVerification, strings.Join(rep.Failures, "; "))
	}
	if runErr != nil {
		return &rep, fmt.Errorf("wsload %s: %v; output:\n%s", strings.Join(args, " "), runErr, out.String())
	}
	return &rep, nil
}

// tail keeps the last 4 KiB written to it: wsload's output, for errors.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// binPath is where buildAll put a binary.
func binPath(dir, name string) string { return filepath.Join(dir, name) }
