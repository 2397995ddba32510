package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Scenario names accepted by Config.Scenarios.
const (
	ScenarioIdle      = "idle"
	ScenarioIdleSSE   = "idle-sse" // event-stream subscribers; servers with SSE only
	ScenarioConnect   = "connect"
	ScenarioEcho      = "echo"
	ScenarioBroadcast = "broadcast"
	ScenarioPushWire  = "push-wire" // the push feed's bytes on the wire; servers with Push only
)

// AllScenarios is every scenario in the order they run.
var AllScenarios = []string{ScenarioIdle, ScenarioIdleSSE, ScenarioConnect, ScenarioEcho, ScenarioBroadcast, ScenarioPushWire}

// idleSSEHold is how long the idle-sse scenario holds its subscribers
// before the server's RSS is read.
const idleSSEHold = 15 * time.Second

// EchoShape is one echo configuration: connections times message size.
type EchoShape struct{ Conns, Size int }

func (e EchoShape) String() string {
	size := fmt.Sprintf("%d B", e.Size)
	if e.Size%1024 == 0 {
		size = fmt.Sprintf("%d KiB", e.Size/1024)
	}
	return fmt.Sprintf("C=%s x %s", FormatCount(float64(e.Conns)), size)
}

// Config is one benchmark run.
type Config struct {
	Servers   []ServerSpec
	Scenarios []string
	Reps      int
	Sizes     []int       // idle connection counts, ascending
	Echo      []EchoShape // echo configurations
	// ConnectConns is the connect scenario's connection count.
	ConnectConns int
	// BroadcastConns members of one chat room receive BroadcastMessages
	// messages that one more connection publishes at BroadcastRate per second.
	BroadcastConns    int
	BroadcastRate     float64
	BroadcastMessages int
	EchoDuration      time.Duration
	Quick             bool
	// GOGC is given to every server process, so that all of them collect
	// garbage alike; empty leaves each its own default.
	GOGC string

	Root      string // repository root
	Out       string // the Markdown page
	ChartsDir string // the SVG charts (and results.json)
	Keep      bool   // keep the build and log directory
	Command   string // the command line, for the page
	Logger    *slog.Logger
}

// QuickConfig and FullConfig hold the defaults of -quick and of a full run.
func QuickConfig() Config {
	return Config{
		Reps:              1,
		Sizes:             []int{250, 500},
		Echo:              []EchoShape{{100, 64}, {200, 1024}},
		ConnectConns:      500,
		BroadcastConns:    500,
		BroadcastRate:     10,
		BroadcastMessages: 20,
		EchoDuration:      2 * time.Second,
		Quick:             true,
	}
}

func FullConfig() Config {
	return Config{
		Reps:              3,
		Sizes:             []int{5000, 10000, 19000},
		Echo:              []EchoShape{{100, 64}, {1000, 1024}, {10000, 64}},
		ConnectConns:      10000,
		BroadcastConns:    19000,
		BroadcastRate:     2,
		BroadcastMessages: 30,
		EchoDuration:      10 * time.Second,
	}
}

// benchCase is one cell row of the matrix, run for every server and repetition.
type benchCase struct {
	ID       string // stable key: "idle/5000", "echo/100x64"
	Scenario string
	Load     loadRun // URL and PID are filled in per run
	Path     string
	Echo     EchoShape
}

func (c *Config) cases() []benchCase {
	var out []benchCase
	for _, sc := range c.Scenarios {
		switch sc {
		case ScenarioIdle:
			for _, n := range c.Sizes {
				// wsload's echo scenario with one message per connection:
				// every connection echoes once, then wsload holds them all
				// while the server's RSS settles and samples it.
				out = append(out, benchCase{ID: fmt.Sprintf("idle/%d", n), Scenario: sc, Path: "/ws/echo",
					Load: loadRun{Scenario: "echo", Conns: n, Messages: n, Size: 64, Duration: time.Minute, Drain: 5 * time.Second}})
			}
		case ScenarioIdleSSE:
			for _, n := range c.Sizes {
				// The demo's push feed as an event stream (text/event-stream,
				// served on the loops): n subscribers held while the feed
				// sends its reading once a second, every reading verified.
				out = append(out, benchCase{ID: fmt.Sprintf("idle-sse/%d", n), Scenario: sc, Path: "/sse/push",
					Load: loadRun{Scenario: "sse", Publish: "server", Conns: n, Duration: idleSSEHold, Drain: 2 * time.Second}})
			}
		case ScenarioConnect:
			out = append(out, benchCase{ID: fmt.Sprintf("connect/%d", c.ConnectConns), Scenario: sc, Path: "/ws/echo",
				Load: loadRun{Scenario: "connect", Conns: c.ConnectConns}})
		case ScenarioEcho:
			for _, e := range c.Echo {
				out = append(out, benchCase{ID: fmt.Sprintf("echo/%dx%d", e.Conns, e.Size), Scenario: sc, Path: "/ws/echo", Echo: e,
					Load: loadRun{Scenario: "echo", Conns: e.Conns, Size: e.Size, Duration: c.EchoDuration, Drain: 3 * time.Second}})
			}
		case ScenarioBroadcast:
			out = append(out, benchCase{ID: fmt.Sprintf("broadcast/%d", c.BroadcastConns), Scenario: sc, Path: "/ws/chat?room=bench",
				Load: loadRun{Scenario: "broadcast", Publish: "self", Conns: c.BroadcastConns, Rate: c.BroadcastRate, Messages: c.BroadcastMessages,
					// wsload stops publishing at Duration: leave room for every message.
					Duration: time.Duration(float64(c.BroadcastMessages)/c.BroadcastRate*float64(time.Second)) + 5*time.Second,
					Drain:    5 * time.Second}})
		case ScenarioPushWire:
			out = append(out, benchCase{ID: "push-wire", Scenario: sc, Path: "/ws/push"})
		}
	}
	return out
}

// Measurement is what one run of one server in one case measured.
type Measurement struct {
	Case    string             `json:"case"`
	Server  string             `json:"server"`
	Rep     int                `json:"rep"`
	Metrics map[string]float64 `json:"metrics"`
	Error   string             `json:"error,omitempty"`
}

// Results are everything a benchmark run produced.
type Results struct {
	Machine      Machine       `json:"machine"`
	Start        time.Time     `json:"start"`
	End          time.Time     `json:"end"`
	LoadBefore   string        `json:"loadavg_before"`
	LoadAfter    string        `json:"loadavg_after"`
	Measurements []Measurement `json:"measurements"`
	Failures     []string      `json:"failures"`
}

// Metric keys of Measurement.Metrics.
const (
	mRSSPerConn    = "rss_per_conn"    // server VmRSS growth / connections (bytes)
	mRSSGrowth     = "rss_growth"      // server VmRSS growth (bytes)
	mHeapPerConn   = "heap_per_conn"   // Go HeapInuse growth / connections (bytes)
	mThreads       = "threads"         // OS threads with every connection held
	mGoroutines    = "goroutines"      // goroutines with every connection held
	mConnectRate   = "connect_rate"    // connections opened per second
	mHandshakeP50  = "handshake_p50"   // seconds
	mHandshakeP99  = "handshake_p99"   // seconds
	mMsgsPerSec    = "msgs_per_sec"    // echo: round trips per second; broadcast: deliveries per second
	mLatencyP50    = "latency_p50"     // seconds
	mLatencyP99    = "latency_p99"     // seconds
	mCPUSeconds    = "cpu_seconds"     // server utime+stime over the wsload run
	mCPUPerMillion = "cpu_per_million" // server CPU seconds per million messages
	mMsgsPerCPU    = "msgs_per_cpu_s"  // messages per server CPU second

	mWirePerMsg      = "wire_per_msg"     // push-wire: bytes per reading on the wire, frame headers included
	mPayloadPerMsg   = "payload_per_msg"  // push-wire: bytes per reading, inflated
	mCompressedShare = "compressed_share" // push-wire: the share of readings sent compressed
)

// Run builds the binaries, runs the matrix and writes the page and charts.
// It returns the results and an error when the harness broke: a binary did
// not build, a server did not start or died, wsload failed or found the
// server at fault, or a table row came out empty. The page is written even
// then, with the failures listed on it.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Reps < 1 {
		return nil, fmt.Errorf("-reps %d: want at least 1", cfg.Reps)
	}
	work, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		log.Info("keeping binaries and logs", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	binDir := filepath.Join(work, "bin")
	logDir := filepath.Join(work, "logs")
	for _, d := range []string{binDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	cert, err := writeCert(work)
	if err != nil {
		return nil, err
	}
	res := &Results{Start: time.Now().UTC(), LoadBefore: LoadAvg()}
	res.Machine = ReadMachine(ctx, cfg.Root)
	if err := buildAll(ctx, cfg.Root, binDir, cfg.Servers, log); err != nil {
		return nil, err
	}

	cases := cfg.cases()
	total := 0
	for _, c := range cases {
		for _, s := range cfg.Servers {
			if c.servedBy(s) {
				total += cfg.Reps
			}
		}
	}
	done := 0
	for _, c := range cases {
		for rep := 1; rep <= cfg.Reps; rep++ {
			// Interleave: every server once per repetition, the order rotated
			// so that no server always runs first (or right after the most
			// demanding one).
			n := len(cfg.Servers)
			for i := range n {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				s := cfg.Servers[(i+rep-1)%n]
				if !c.servedBy(s) {
					continue
				}
				done++
				log.Info("run", "n", fmt.Sprintf("%d/%d", done, total), "case", c.ID, "rep", rep, "server", s.Name)
				m := Measurement{Case: c.ID, Server: s.Name, Rep: rep}
				metrics, err := runOne(ctx, &cfg, c, s, binDir, logDir, work, cert, log)
				m.Metrics = finite(metrics)
				if err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					m.Error = err.Error()
					msg := fmt.Sprintf("%s, %s, repetition %d: %v", c.ID, s.Label, rep, err)
					res.Failures = append(res.Failures, msg)
					log.Error("run failed", "case", c.ID, "server", s.Name, "rep", rep, "err", firstLine(err.Error()))
				} else {
					log.Info("measured", "case", c.ID, "server", s.Name, "rep", rep, "metrics", brief(metrics))
				}
				res.Measurements = append(res.Measurements, m)
			}
		}
	}
	res.End = time.Now().UTC()
	res.LoadAfter = LoadAvg()
	res.Failures = append(res.Failures, emptyRows(&cfg, cases, res)...)
	if err := writeReport(&cfg, cases, res); err != nil {
		return res, err
	}
	log.Info("wrote", "page", cfg.Out, "charts", cfg.ChartsDir, "took", res.End.Sub(res.Start).Round(time.Second))
	if len(res.Failures) > 0 {
		return res, fmt.Errorf("%d failures: first: %s", len(res.Failures), firstLine(res.Failures[0]))
	}
	return res, nil
}

// emptyRows lists case and server pairs without the case's main figure in
// any repetition: a table row with nothing in it.
func emptyRows(cfg *Config, cases []benchCase, res *Results) []string {
	var out []string
	for _, c := range cases {
		key := primaryMetric(c.Scenario)
		for _, s := range cfg.Servers {
			if !c.servedBy(s) {
				continue
			}
			if !Summarize(values(res, c.ID, s.Name, key, cfg.Reps)).Valid() {
				out = append(out, fmt.Sprintf("%s, %s: no %s measured (empty row)", c.ID, s.Label, key))
			}
		}
	}
	return out
}

// servedBy reports whether server s takes part in case c: event streams
// only where the server has them.
func (c benchCase) servedBy(s ServerSpec) bool {
	switch c.Scenario {
	case ScenarioIdleSSE:
		return s.SSE
	case ScenarioPushWire:
		return s.Push
	}
	return true
}

// idleScenario reports whether the scenario holds idle connections and
// measures their memory.
func idleScenario(scenario string) bool {
	return scenario == ScenarioIdle || scenario == ScenarioIdleSSE
}

func primaryMetric(scenario string) string {
	switch scenario {
	case ScenarioIdle, ScenarioIdleSSE:
		return mRSSPerConn
	case ScenarioConnect:
		return mConnectRate
	case ScenarioPushWire:
		return mWirePerMsg
	}
	return mMsgsPerSec
}

// runOne starts a fresh server, drives it with wsload and reads its costs.
func runOne(ctx context.Context, cfg *Config, c benchCase, s ServerSpec, binDir, logDir, tmpDir string, cert certFiles, log *slog.Logger) (map[string]float64, error) {
	p, err := startServer(ctx, s, binDir, logDir, cert, cfg.GOGC, log)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	pid := p.pid()
	metrics := map[string]float64{}
	if c.Scenario == ScenarioPushWire {
		wire, payload, compressed, err := pushWire(ctx, p.addr, pushWireReadings)
		if err != nil {
			return nil, err
		}
		metrics[mWirePerMsg], metrics[mPayloadPerMsg] = wire, payload
		metrics[mCompressedShare] = float64(compressed) / pushWireReadings
		return metrics, p.alive()
	}

	// Let the runtime finish starting (GC of init garbage, thread spawns)
	// before the baseline is read.
	time.Sleep(300 * time.Millisecond)
	var vars0 runtimeVars
	haveVars := false
	if idleScenario(c.Scenario) {
		if v, err := fetchVars(ctx, p.vars); err == nil {
			vars0, haveVars = v, true
		}
		time.Sleep(200 * time.Millisecond)
	}
	st0, err := ReadStatus(pid)
	if err != nil {
		return nil, fmt.Errorf("reading the server's status: %w", err)
	}
	cpu0, err := ReadCPU(pid)
	if err != nil {
		return nil, err
	}

	baseFDs, err := countFDs(pid)
	if err != nil {
		return nil, err
	}
	lr := c.Load
	lr.URL = "ws://" + p.addr + c.Path
	if c.Scenario == ScenarioIdleSSE {
		lr.URL = "http://" + p.addr + c.Path
	}
	if s.TLS {
		lr.URL = strings.Replace(strings.Replace(lr.URL, "ws://", "wss://", 1), "http://", "https://", 1)
		lr.CAFile = cert.cert
	}
	lr.PID = pid
	lr.Extra = s.LoadArgs

	// While idle connections are held, sample what wsload cannot see:
	// threads, goroutines and the Go heap.
	var samp *idleSample
	var wg sync.WaitGroup
	stopSampler := make(chan struct{})
	if idleScenario(c.Scenario) {
		samp = &idleSample{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			samp.run(ctx, p, baseFDs+lr.Conns, haveVars, stopSampler)
		}()
	}
	rep, loadErr := runLoad(ctx, binPath(binDir, "wsload"), tmpDir, lr, log)
	close(stopSampler)
	wg.Wait()
	cpu1, cpuErr := ReadCPU(pid)
	if err := p.alive(); err != nil {
		return nil, err
	}
	if loadErr != nil {
		return nil, loadErr
	}
	if cpuErr != nil {
		return nil, cpuErr
	}
	cpu := cpu1 - cpu0
	metrics[mCPUSeconds] = cpu

	switch c.Scenario {
	case ScenarioIdle, ScenarioIdleSSE:
		n := float64(lr.Conns)
		if rep.RSSAfter > 0 && rep.RSSBefore > 0 {
			metrics[mRSSGrowth] = float64(rep.RSSAfter - rep.RSSBefore)
		} else if samp.ok {
			// wsload did not sample the server: fall back to ours.
			metrics[mRSSGrowth] = float64(samp.status.RSS - st0.RSS)
		} else {
			return metrics, fmt.Errorf("no server RSS: wsload reported none and the sampler never saw %d connections", lr.Conns)
		}
		metrics[mRSSPerConn] = metrics[mRSSGrowth] / n
		metrics[mConnectRate] = rep.ConnectRate
		if samp.ok {
			metrics[mThreads] = float64(samp.status.Threads)
			if samp.haveVars && haveVars {
				metrics[mHeapPerConn] = (samp.vars.HeapInuse - vars0.HeapInuse) / n
				if samp.vars.Goroutines >= 0 {
					metrics[mGoroutines] = samp.vars.Goroutines
				}
			}
		} else {
			log.Warn("threads not sampled: the server never held every connection long enough", "server", s.Name, "case", c.ID)
		}
	case ScenarioConnect:
		metrics[mConnectRate] = rep.ConnectRate
		metrics[mHandshakeP50] = float64(rep.Handshake.P50) / 1e6
		metrics[mHandshakeP99] = float64(rep.Handshake.P99) / 1e6
	case ScenarioEcho, ScenarioBroadcast:
		msgs := rep.Received
		if c.Scenario == ScenarioBroadcast {
			msgs = rep.Delivered
		}
		if rep.TrafficSeconds > 0 {
			metrics[mMsgsPerSec] = float64(msgs) / rep.TrafficSeconds
		}
		metrics[mLatencyP50] = float64(rep.Latency.P50) / 1e6
		metrics[mLatencyP99] = float64(rep.Latency.P99) / 1e6
		if msgs > 0 {
			metrics[mCPUPerMillion] = cpu / float64(msgs) * 1e6
		}
		if cpu > 0 {
			metrics[mMsgsPerCPU] = float64(msgs) / cpu
		}
	}
	return metrics, nil
}

// idleSample watches a server while wsload holds its idle connections:
// it keeps the last /proc status seen with every connection open, and
// reads /debug/vars once, half a second after they are all open (after
// their single echo, which takes milliseconds).
type idleSample struct {
	ok       bool
	status   ProcStatus
	vars     runtimeVars
	haveVars bool
}

func (s *idleSample) run(ctx context.Context, p *serverProc, wantFDs int, tryVars bool, stop <-chan struct{}) {
	pid := p.pid()
	var since time.Time
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fds, err := countFDs(pid)
		if err != nil {
			return
		}
		if fds < wantFDs {
			if s.ok {
				return // wsload has started closing
			}
			continue
		}
		st, err := ReadStatus(pid)
		if err != nil {
			return
		}
		if st.Threads == 0 {
			st.Threads, _ = CountTasks(pid)
		}
		s.status, s.ok = st, true
		if since.IsZero() {
			since = time.Now()
		}
		if tryVars && !s.haveVars && time.Since(since) >= 500*time.Millisecond {
			if v, err := fetchVars(ctx, p.vars); err == nil {
				s.vars, s.haveVars = v, true
			}
		}
	}
}

// countFDs counts the open files of a process.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// values returns a metric's value for each repetition (NaN where missing).
func values(res *Results, caseID, server, key string, reps int) []float64 {
	out := make([]float64, reps)
	for i := range out {
		out[i] = nan
	}
	for _, m := range res.Measurements {
		if m.Case == caseID && m.Server == server && m.Rep >= 1 && m.Rep <= reps && m.Error == "" {
			if v, ok := m.Metrics[key]; ok {
				out[m.Rep-1] = v
			}
		}
	}
	return out
}

// finite drops NaN and infinite values, which JSON cannot carry.
func finite(m map[string]float64) map[string]float64 {
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, k)
		}
	}
	return m
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// brief renders metrics for a progress line.
func brief(m map[string]float64) string {
	var b strings.Builder
	for _, k := range []string{mRSSPerConn, mHeapPerConn, mThreads, mGoroutines, mConnectRate, mMsgsPerSec, mLatencyP99, mMsgsPerCPU, mWirePerMsg, mCompressedShare} {
		if v, ok := m[k]; ok {
			fmt.Fprintf(&b, "%s=%.4g ", k, v)
		}
	}
	return strings.TrimSpace(b.String())
}
