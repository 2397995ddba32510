package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeResults makes results for two servers and two repetitions in which
// epoll uses 1/100 of gorilla's memory and 1.5x its echo efficiency.
func fakeResults(cfg *Config) *Results {
	res := &Results{Start: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC),
		Machine: Machine{CPUModel: "Test CPU", CPUs: 2, Kernel: "Linux 6.1", GoVersion: "go1.26", Commit: "abc123"}}
	for _, c := range cfg.cases() {
		for rep := 1; rep <= cfg.Reps; rep++ {
			jitter := float64(rep) // repetitions differ, so spreads show
			for _, s := range cfg.Servers {
				m := map[string]float64{}
				scale := 1.0
				if s.Name == "gorilla" {
					scale = 100
				}
				switch c.Scenario {
				case ScenarioIdle, ScenarioIdleSSE:
					m[mRSSPerConn] = 180 * scale * (1 + jitter/100)
					if c.Scenario == ScenarioIdleSSE {
						m[mRSSPerConn] *= 2
					}
					m[mRSSGrowth] = m[mRSSPerConn] * float64(c.Load.Conns)
					m[mThreads] = 5
				case ScenarioEcho:
					m[mMsgsPerSec] = 1000 * jitter
					if s.Name == "gorilla" {
						m[mMsgsPerCPU] = 100000
					} else {
						m[mMsgsPerCPU] = 150000
					}
					m[mLatencyP99] = 0.002
				case ScenarioPushWire:
					m[mWirePerMsg], m[mPayloadPerMsg], m[mCompressedShare] = 54, 52, 0
				default:
					m[mConnectRate] = 5000
					m[mMsgsPerSec] = 190000
				}
				res.Measurements = append(res.Measurements, Measurement{Case: c.ID, Server: s.Name, Rep: rep, Metrics: m})
			}
		}
	}
	return res
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	cfg := QuickConfig()
	cfg.Reps = 2
	cfg.Servers, _ = LookupServers("epoll,epoll-deflate,gorilla")
	cfg.Scenarios = AllScenarios
	cfg.Out = filepath.Join(dir, "BENCHMARKS.md")
	cfg.ChartsDir = filepath.Join(dir, "bench", "charts")
	cfg.Command = "wsbench -reps 2"
	cases := cfg.cases()
	res := fakeResults(&cfg)
	if f := emptyRows(&cfg, cases, res); len(f) != 0 {
		t.Fatalf("complete results reported empty rows: %v", f)
	}
	if err := writeReport(&cfg, cases, res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"Test CPU, 2 logical CPUs",
		"abc123",
		"`wsbench -reps 2`",
		"| wsloop epoll | 500 | 183 B (182 B–184 B) | 0.01x | 183 B (182 B–184 B) |", // ratio 1/100; marginal = per-conn here
		"target at most 1/80 (0.0125x): **MET**",
		"| wsloop epoll | 500 | 365 B (364 B–367 B) | 183 B (182 B–184 B) | 2x |", // the SSE row beside the WebSocket figure
		"ratio 1.5x; target at least 1.2x: **MET**",
		"wsloop epoll: 183 B (182 B–184 B); target at most 180 B: **MISSED**",
		"wsloop epoll+deflate minus epoll: 0 B (Go heap: n/a); target at most 16 B: **MET**",
		"| push feed: bytes per reading on the wire (5 readings) | 54 B | 54 B | 1x |",
		"A push reading is 52 B of JSON",
		"![memory per connection versus connections, per server](bench/charts/memory.svg)",
		"(bench/charts/echo.svg)",
		"[results.json](bench/charts/results.json)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, f := range []string{"memory.svg", "echo.svg", "echo-cpu.svg", "broadcast.svg", "results.json"} {
		b, err := os.ReadFile(filepath.Join(cfg.ChartsDir, f))
		if err != nil {
			t.Errorf("chart %s: %v", f, err)
			continue
		}
		if strings.HasSuffix(f, ".svg") {
			elements(t, string(b))
		}
	}
}

func TestTargetsMissedAndEmptyRows(t *testing.T) {
	cfg := QuickConfig()
	cfg.Reps = 1
	cfg.Servers, _ = LookupServers("epoll,gorilla")
	cfg.Scenarios = []string{ScenarioIdle, ScenarioEcho}
	cases := cfg.cases()
	res := fakeResults(&cfg)
	// gorilla as frugal as epoll; epoll's first echo row lost.
	var kept []Measurement
	for _, m := range res.Measurements {
		if m.Server == "gorilla" && m.Metrics[mRSSPerConn] > 0 {
			m.Metrics[mRSSPerConn] /= 100
		}
		if m.Server == "epoll" && m.Case == cases[len(cfg.Sizes)].ID {
			m.Error = "server died"
		}
		kept = append(kept, m)
	}
	res.Measurements = kept
	empty := emptyRows(&cfg, cases, res)
	if len(empty) != 1 || !strings.Contains(empty[0], "wsloop epoll") {
		t.Errorf("empty rows %v: want exactly epoll's first echo row", empty)
	}
	p := &page{cfg: &cfg, cases: cases, res: res}
	p.targets()
	got := p.b.String()
	if !strings.Contains(got, "**MISSED**") || !strings.Contains(got, "**NOT MEASURED (a run failed)**") {
		t.Errorf("targets:\n%s\nwant the memory target MISSED and the echo target NOT MEASURED", got)
	}
}
