package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var nan = math.NaN()

// targets the issue sets for wsloop.
const (
	targetMemoryRatio = 1.0 / 80 // epoll RSS per idle connection, at most this times gorilla's
	targetEchoCPU     = 1.2      // epoll echo messages per server CPU-second at C=100 x 64 B, at least this times gorilla's
	targetTLSMemory   = 6000     // epoll RSS per idle wss connection, at most this many bytes (aim: 4000)
	targetIdleMemory  = 180      // epoll RSS per idle connection at the largest size, at most this many bytes
	targetDeflateCost = 16       // epoll+deflate RSS per idle connection minus epoll's, at most this many bytes
)

// page builds BENCHMARKS.md.
type page struct {
	cfg   *Config
	cases []benchCase
	res   *Results
	b     bytes.Buffer
}

func (p *page) f(format string, a ...any) { fmt.Fprintf(&p.b, format, a...) }

// sum summarizes a metric of a case and server over the repetitions.
func (p *page) sum(caseID, server, key string) Summary {
	return Summarize(values(p.res, caseID, server, key, p.cfg.Reps))
}

// ratioTo summarizes the per-repetition ratios of server's metric to
// base's in the same repetition.
func (p *page) ratioTo(caseID, server, base, key string) Summary {
	return Summarize(Ratios(values(p.res, caseID, server, key, p.cfg.Reps), values(p.res, caseID, base, key, p.cfg.Reps)))
}

// diff summarizes the per-repetition differences of server's metric and
// base's in the same repetition.
func (p *page) diff(caseID, server, base, key string) Summary {
	a, b := values(p.res, caseID, server, key, p.cfg.Reps), values(p.res, caseID, base, key, p.cfg.Reps)
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i] // NaN when either is missing
	}
	return Summarize(d)
}

// previous is the server measured at an earlier git revision, if any.
func (p *page) previous() (ServerSpec, bool) {
	for _, s := range p.cfg.Servers {
		if s.Rev != "" {
			return s, true
		}
	}
	return ServerSpec{}, false
}

// ratio summarizes the per-repetition ratios of a metric to the reference
// server's in the same repetition.
func (p *page) ratio(caseID, server, key string) Summary {
	ref := refOf(server)
	if !p.has(ref) {
		return Summary{}
	}
	return Summarize(Ratios(values(p.res, caseID, server, key, p.cfg.Reps), values(p.res, caseID, ref, key, p.cfg.Reps)))
}

func (p *page) has(server string) bool {
	for _, s := range p.cfg.Servers {
		if s.Name == server {
			return true
		}
	}
	return false
}

func (p *page) casesOf(scenario string) []benchCase {
	var out []benchCase
	for _, c := range p.cases {
		if c.Scenario == scenario {
			out = append(out, c)
		}
	}
	return out
}

func (p *page) table(t *Table) {
	t.Render(&p.b)
	p.f("\n")
}

// writeReport writes the page, the charts and results.json.
func writeReport(cfg *Config, cases []benchCase, res *Results) error {
	if err := os.MkdirAll(cfg.ChartsDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
		return err
	}
	p := &page{cfg: cfg, cases: cases, res: res}
	charts, err := p.charts()
	if err != nil {
		return err
	}
	p.render(charts)
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.ChartsDir, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(cfg.Out, p.b.Bytes(), 0o644)
}

// charts writes the SVG files and returns their links relative to the page.
func (p *page) charts() (map[string]string, error) {
	links := map[string]string{}
	write := func(name string, c interface{ WriteSVG(io.Writer) error }) error {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			return err
		}
		path := filepath.Join(p.cfg.ChartsDir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(p.cfg.Out), path)
		if err != nil {
			rel = path
		}
		links[name] = filepath.ToSlash(rel)
		return nil
	}
	if idle := p.casesOf(ScenarioIdle); len(idle) > 0 {
		lc := &LineChart{Title: "Server memory per idle connection (VmRSS growth, log scale)", XLabel: "connections", YLabel: "bytes per connection", LogY: true, YFormat: FormatBytes}
		for _, s := range p.cfg.Servers {
			se := Series{Name: s.Label}
			for _, c := range idle {
				se.Points = append(se.Points, Point{X: float64(c.Load.Conns), Y: p.sum(c.ID, s.Name, mRSSPerConn).Median})
			}
			lc.Series = append(lc.Series, se)
		}
		for _, s := range p.cfg.Servers {
			sse := p.casesOf(ScenarioIdleSSE)
			if len(sse) == 0 || !sse[0].servedBy(s) {
				continue
			}
			se := Series{Name: s.Label + ", event streams"}
			for _, c := range sse {
				se.Points = append(se.Points, Point{X: float64(c.Load.Conns), Y: p.sum(c.ID, s.Name, mRSSPerConn).Median})
			}
			lc.Series = append(lc.Series, se)
		}
		if err := write("memory.svg", lc); err != nil {
			return nil, err
		}
	}
	if echo := p.casesOf(ScenarioEcho); len(echo) > 0 {
		for _, ch := range []struct{ file, title, ylabel, key string }{
			{"echo.svg", "Echo throughput (round trips per second)", "messages per second", mMsgsPerSec},
			{"echo-cpu.svg", "Echo efficiency (messages per server CPU-second)", "messages per CPU-second", mMsgsPerCPU},
		} {
			bc := &BarChart{Title: ch.title, YLabel: ch.ylabel}
			for _, c := range echo {
				bc.Groups = append(bc.Groups, c.Echo.String())
			}
			for _, s := range p.cfg.Servers {
				bc.Series = append(bc.Series, s.Label)
				row := make([]float64, len(echo))
				for i, c := range echo {
					row[i] = p.sum(c.ID, s.Name, ch.key).Median
				}
				bc.Values = append(bc.Values, row)
			}
			if err := write(ch.file, bc); err != nil {
				return nil, err
			}
		}
	}
	if bcast := p.casesOf(ScenarioBroadcast); len(bcast) > 0 {
		c := bcast[0]
		bc := &BarChart{Title: fmt.Sprintf("Broadcast delivery latency, %s subscribers", FormatCount(float64(c.Load.Conns))),
			YLabel: "milliseconds", YFormat: func(v float64) string { return trimFloat(v, 3) }, Groups: []string{"p50", "p99"}}
		for _, s := range p.cfg.Servers {
			bc.Series = append(bc.Series, s.Label)
			bc.Values = append(bc.Values, []float64{
				p.sum(c.ID, s.Name, mLatencyP50).Median * 1e3,
				p.sum(c.ID, s.Name, mLatencyP99).Median * 1e3,
			})
		}
		if err := write("broadcast.svg", bc); err != nil {
			return nil, err
		}
	}
	return links, nil
}

func (p *page) render(charts map[string]string) {
	cfg, res := p.cfg, p.res
	m := res.Machine
	p.f("# Benchmarks\n\n")
	p.f("<!-- Generated by wsbench (cmd/wsbench); do not edit by hand: rerun it. -->\n\n")
	if cfg.Quick {
		p.f("**Quick run** (`-quick`): small counts and a single repetition, a smoke test of the harness. Its figures are not the project's benchmark.\n\n")
	}
	commit := m.Commit
	if m.Dirty {
		commit += " (with uncommitted changes)"
	}
	mt := Table{Header: []string{"", ""}}
	mt.Add("CPU", fmt.Sprintf("%s, %d logical CPUs", m.CPUModel, m.CPUs))
	mt.Add("memory", m.MemTotal)
	mt.Add("kernel", m.Kernel)
	mt.Add("Go", m.GoVersion)
	mt.Add("commit", commit)
	mt.Add("date", res.Start.Format("2006-01-02 15:04 UTC"))
	mt.Add("duration", res.End.Sub(res.Start).Round(time.Second).String())
	mt.Add("load average (1, 5, 15 min)", fmt.Sprintf("%s at the start, %s at the end", res.LoadBefore, res.LoadAfter))
	mt.Add("command", "`"+cfg.Command+"`")
	mt.Add("repetitions", fmt.Sprintf("%d, interleaved", cfg.Reps))
	if cfg.GOGC != "" {
		mt.Add("garbage collector", fmt.Sprintf("GOGC=%s in every server process (wsloop's own default is 50, Go's 100)", cfg.GOGC))
	} else {
		mt.Add("garbage collector", "each server's own default: GOGC=50 for wsloop, Go's 100 for the others")
	}
	mt.Header = []string{"machine and run", ""}
	p.table(&mt)

	p.f("Every figure is the median over the repetitions, with the spread (min–max) in parentheses when they differ. " +
		"\"vs gorilla\" is the figure divided by gorilla/websocket's figure **in the same repetition** (median of those ratios): " +
		"the machine is shared and noisy, so only ratios measured side by side are compared. " +
		"The wss rows (TLS 1.3 over loopback, wsload verifying a throwaway certificate) are divided by gorilla/websocket over crypto/tls instead. " +
		"For memory, latency and CPU per message lower is better; for rates higher is better.\n\n")

	p.targets()
	p.idle(charts)
	p.idleSSE()
	p.connect()
	p.echo(charts)
	p.broadcast(charts)
	p.compression()
	p.method()
	p.failures()
}

// targets states whether the targets are met.
func (p *page) targets() {
	p.f("## Targets\n\n")
	var lines []string
	idle := p.casesOf(ScenarioIdle)
	switch {
	case !p.has("epoll") || !p.has(Reference) || len(idle) == 0:
		lines = append(lines, "- Memory per idle connection (wsloop epoll at most 1/80 of gorilla): **not measured** in this run (needs the idle scenario with epoll and gorilla).")
	default:
		c := idle[len(idle)-1]
		r := p.ratio(c.ID, "epoll", mRSSPerConn)
		lines = append(lines, fmt.Sprintf("- Memory per idle connection at %s connections, wsloop epoll vs gorilla: %s %s, ratio %s; target at most 1/80 (%s): **%s**.",
			FormatCount(float64(c.Load.Conns)),
			FormatBytes(p.sum(c.ID, "epoll", mRSSPerConn).Median), "vs "+FormatBytes(p.sum(c.ID, Reference, mRSSPerConn).Median),
			FormatSummary(r, FormatRatio), FormatRatio(targetMemoryRatio), verdict(r, func(v float64) bool { return v <= targetMemoryRatio })))
	}
	var echo *benchCase
	for _, c := range p.casesOf(ScenarioEcho) {
		if c.Echo == (EchoShape{100, 64}) {
			echo = &c
		}
	}
	switch {
	case !p.has("epoll") || !p.has(Reference) || echo == nil:
		lines = append(lines, "- Echo messages per server CPU-second at C=100 x 64 B (wsloop epoll at least 1.2x gorilla): **not measured** in this run (needs echo C=100 x 64 B with epoll and gorilla).")
	default:
		r := p.ratio(echo.ID, "epoll", mMsgsPerCPU)
		lines = append(lines, fmt.Sprintf("- Echo messages per server CPU-second at C=100 x 64 B, wsloop epoll vs gorilla: %s vs %s, ratio %s; target at least %s: **%s**.",
			FormatCount(p.sum(echo.ID, "epoll", mMsgsPerCPU).Median), FormatCount(p.sum(echo.ID, Reference, mMsgsPerCPU).Median),
			FormatSummary(r, FormatRatio), FormatRatio(targetEchoCPU), verdict(r, func(v float64) bool { return v >= targetEchoCPU })))
	}
	switch {
	case !p.has("epoll-tls") || len(idle) == 0:
		lines = append(lines, "- Memory per idle wss connection (wsloop epoll at most 6 KB, aim 4 KB): **not measured** in this run (needs the idle scenario with epoll-tls).")
	default:
		c := idle[len(idle)-1]
		s := p.sum(c.ID, "epoll-tls", mRSSPerConn)
		lines = append(lines, fmt.Sprintf("- Memory per idle wss connection at %s connections, wsloop epoll: %s (gorilla over crypto/tls: %s, ratio %s); target at most %s, aim 4 KB: **%s**.",
			FormatCount(float64(c.Load.Conns)), FormatSummary(s, FormatBytes), FormatBytes(p.sum(c.ID, TLSReference, mRSSPerConn).Median),
			FormatSummary(p.ratio(c.ID, "epoll-tls", mRSSPerConn), FormatRatio), FormatBytes(targetTLSMemory),
			verdict(s, func(v float64) bool { return v <= targetTLSMemory })))
	}
	if len(idle) > 0 && p.has("epoll") {
		c := idle[len(idle)-1]
		s := p.sum(c.ID, "epoll", mRSSPerConn)
		lines = append(lines, fmt.Sprintf("- Memory per idle connection at %s connections, wsloop epoll: %s; target at most %s: **%s**.",
			FormatCount(float64(c.Load.Conns)), FormatSummary(s, FormatBytes), FormatBytes(targetIdleMemory),
			verdict(s, func(v float64) bool { return v <= targetIdleMemory })))
	}
	if prev, ok := p.previous(); ok && p.has("epoll") {
		if len(idle) > 0 {
			c := idle[len(idle)-1]
			lines = append(lines, fmt.Sprintf("- Memory per idle connection at %s connections, wsloop epoll now vs at %s: %s vs %s, ratio %s (reported).",
				FormatCount(float64(c.Load.Conns)), prev.Rev, FormatBytes(p.sum(c.ID, "epoll", mRSSPerConn).Median),
				FormatBytes(p.sum(c.ID, prev.Name, mRSSPerConn).Median), FormatSummary(p.ratioTo(c.ID, "epoll", prev.Name, mRSSPerConn), FormatRatio)))
		}
		if echo != nil {
			r := p.ratioTo(echo.ID, "epoll", prev.Name, mMsgsPerCPU)
			lines = append(lines, fmt.Sprintf("- Echo messages per server CPU-second at C=100 x 64 B, wsloop epoll now vs at %s: %s vs %s, ratio %s; target not lower (at least 1x): **%s**.",
				prev.Rev, FormatCount(p.sum(echo.ID, "epoll", mMsgsPerCPU).Median), FormatCount(p.sum(echo.ID, prev.Name, mMsgsPerCPU).Median),
				FormatSummary(r, FormatRatio), verdict(r, func(v float64) bool { return v >= 1 })))
		}
	}
	if len(idle) > 0 && p.has("epoll") && p.has("epoll-deflate") {
		c := idle[len(idle)-1]
		d := p.diff(c.ID, "epoll-deflate", "epoll", mRSSPerConn)
		lines = append(lines, fmt.Sprintf("- Memory per idle connection with permessage-deflate negotiated at %s connections, wsloop epoll+deflate minus epoll: %s (Go heap: %s); target at most %s: **%s**.",
			FormatCount(float64(c.Load.Conns)), FormatSummary(d, FormatBytes), FormatSummary(p.diff(c.ID, "epoll-deflate", "epoll", mHeapPerConn), FormatBytes),
			FormatBytes(targetDeflateCost), verdict(d, func(v float64) bool { return v <= targetDeflateCost })))
	}
	if echo != nil && p.has("epoll-tls") && p.has(TLSReference) {
		lines = append(lines, fmt.Sprintf("- Echo messages per server CPU-second over TLS at C=100 x 64 B, wsloop epoll vs gorilla over crypto/tls: %s vs %s, ratio %s (no target: reported).",
			FormatCount(p.sum(echo.ID, "epoll-tls", mMsgsPerCPU).Median), FormatCount(p.sum(echo.ID, TLSReference, mMsgsPerCPU).Median),
			FormatSummary(p.ratio(echo.ID, "epoll-tls", mMsgsPerCPU), FormatRatio)))
	}
	p.f("%s\n\n", strings.Join(lines, "\n"))
}

// verdict judges the median ratio; with the spread straddling the target
// it says so.
func verdict(r Summary, ok func(float64) bool) string {
	if !r.Valid() {
		return "NOT MEASURED (a run failed)"
	}
	switch {
	case ok(r.Median) && ok(r.Min) && ok(r.Max):
		return "MET"
	case ok(r.Median):
		return "MET by the median, not by every repetition"
	case ok(r.Min) || ok(r.Max):
		return "MISSED by the median, met by some repetitions"
	}
	return "MISSED"
}

func (p *page) chart(charts map[string]string, name, alt string) {
	if link, ok := charts[name]; ok {
		p.f("![%s](%s)\n\n", alt, link)
	}
}

func (p *page) idle(charts map[string]string) {
	idle := p.casesOf(ScenarioIdle)
	if len(idle) == 0 {
		return
	}
	p.f("## Memory per idle connection\n\n")
	p.f("Each connection echoes one 64-byte message, then stays idle. RSS per connection is the growth of the server's VmRSS " +
		"from before the first connection to after all have echoed and RSS has settled, divided by the connections (no forced GC in the server). " +
		"\"Marginal\" is the growth from the previous size to this one, per added connection. Go heap is the growth of HeapInuse from the server's `/debug/vars` " +
		"(n/a: the server does not expose it). Threads are from /proc/PID/status with every connection held. " +
		"The kernel's own cost per TCP socket (about 3.8 KB of slab, the same for every server) is not in RSS.\n\n")
	t := Table{Header: []string{"server", "connections", "RSS per conn", "vs gorilla", "marginal RSS per conn", "Go heap per conn", "threads", "goroutines"}}
	for _, s := range p.cfg.Servers {
		for i, c := range idle {
			marginal := "—"
			if i > 0 {
				prev := idle[i-1]
				a := values(p.res, prev.ID, s.Name, mRSSGrowth, p.cfg.Reps)
				b := values(p.res, c.ID, s.Name, mRSSGrowth, p.cfg.Reps)
				d := make([]float64, len(a))
				for k := range a {
					d[k] = (b[k] - a[k]) / float64(c.Load.Conns-prev.Load.Conns)
				}
				marginal = FormatSummary(Summarize(d), FormatBytes)
			}
			t.Add(s.Label, FormatCount(float64(c.Load.Conns)),
				FormatSummary(p.sum(c.ID, s.Name, mRSSPerConn), FormatBytes),
				FormatSummary(p.ratio(c.ID, s.Name, mRSSPerConn), FormatRatio),
				marginal,
				FormatSummary(p.sum(c.ID, s.Name, mHeapPerConn), FormatBytes),
				FormatSummary(p.sum(c.ID, s.Name, mThreads), FormatCount),
				FormatSummary(p.sum(c.ID, s.Name, mGoroutines), FormatCount))
		}
	}
	p.table(&t)
	p.chart(charts, "memory.svg", "memory per connection versus connections, per server")
}

// idleSSE is the event-stream subscribers' memory, beside the WebSocket
// figure of the same server and count.
func (p *page) idleSSE() {
	cs := p.casesOf(ScenarioIdleSSE)
	if len(cs) == 0 {
		return
	}
	p.f("## Memory per idle event-stream subscriber\n\n")
	p.f("Subscribers of the push feed as Server-Sent Events (`GET /sse/push`, text/event-stream, served on the event loops: "+
		"a stream is a write-only connection, no goroutine each), held for %s while the feed sends each of them its reading once a second "+
		"(every reading verified by wsload), then the server's VmRSS settles; RSS per subscriber is its growth from before the first connection, "+
		"divided by the subscribers (no forced GC), as for the WebSocket connections above, whose figure for the same server and count is beside it. "+
		"Only servers that serve event streams take part.\n\n", idleSSEHold)
	t := Table{Header: []string{"server", "subscribers", "RSS per subscriber", "WebSocket idle RSS per conn", "SSE vs WebSocket", "Go heap per subscriber", "threads", "goroutines"}}
	for _, s := range p.cfg.Servers {
		for _, c := range cs {
			if !c.servedBy(s) {
				continue
			}
			ws, vs := "—", "—"
			wsID := fmt.Sprintf("idle/%d", c.Load.Conns)
			if w := p.sum(wsID, s.Name, mRSSPerConn); w.Valid() {
				ws = FormatSummary(w, FormatBytes)
				vs = FormatSummary(Summarize(Ratios(values(p.res, c.ID, s.Name, mRSSPerConn, p.cfg.Reps), values(p.res, wsID, s.Name, mRSSPerConn, p.cfg.Reps))), FormatRatio)
			}
			t.Add(s.Label, FormatCount(float64(c.Load.Conns)),
				FormatSummary(p.sum(c.ID, s.Name, mRSSPerConn), FormatBytes), ws, vs,
				FormatSummary(p.sum(c.ID, s.Name, mHeapPerConn), FormatBytes),
				FormatSummary(p.sum(c.ID, s.Name, mThreads), FormatCount),
				FormatSummary(p.sum(c.ID, s.Name, mGoroutines), FormatCount))
		}
	}
	p.table(&t)
}

func (p *page) connect() {
	cs := p.casesOf(ScenarioConnect)
	if len(cs) == 0 {
		return
	}
	c := cs[0]
	p.f("## Connect rate\n\n")
	p.f("wsload opens %s connections as fast as it can (at most 256 connects in flight per process) on the same 2 cores as the server; "+
		"connects per second from the first connect to the last completed handshake.\n\n", FormatCount(float64(c.Load.Conns)))
	t := Table{Header: []string{"server", "connects/s", "vs gorilla", "handshake p50", "handshake p99"}}
	for _, s := range p.cfg.Servers {
		t.Add(s.Label,
			FormatSummary(p.sum(c.ID, s.Name, mConnectRate), FormatCount),
			FormatSummary(p.ratio(c.ID, s.Name, mConnectRate), FormatRatio),
			FormatSummary(p.sum(c.ID, s.Name, mHandshakeP50), FormatDuration),
			FormatSummary(p.sum(c.ID, s.Name, mHandshakeP99), FormatDuration))
	}
	p.table(&t)
}

func (p *page) echo(charts map[string]string) {
	cs := p.casesOf(ScenarioEcho)
	if len(cs) == 0 {
		return
	}
	p.f("## Echo\n\n")
	p.f("Closed loop: each connection sends its next message when the previous one has come back, verified byte for byte, for %s. "+
		"Latency is the round trip seen by wsload. Server CPU is utime+stime from /proc/PID/stat over the whole wsload run "+
		"(connects included, which matters only at C=10k).\n\n", p.cfg.EchoDuration)
	t := Table{Header: []string{"server", "shape", "messages/s", "vs gorilla", "p50", "p99", "messages per CPU-s", "vs gorilla", "CPU-s per million"}}
	for _, c := range cs {
		for _, s := range p.cfg.Servers {
			t.Add(s.Label, c.Echo.String(),
				FormatSummary(p.sum(c.ID, s.Name, mMsgsPerSec), FormatCount),
				FormatSummary(p.ratio(c.ID, s.Name, mMsgsPerSec), FormatRatio),
				FormatSummary(p.sum(c.ID, s.Name, mLatencyP50), FormatDuration),
				FormatSummary(p.sum(c.ID, s.Name, mLatencyP99), FormatDuration),
				FormatSummary(p.sum(c.ID, s.Name, mMsgsPerCPU), FormatCount),
				FormatSummary(p.ratio(c.ID, s.Name, mMsgsPerCPU), FormatRatio),
				FormatSummary(p.sum(c.ID, s.Name, mCPUPerMillion), func(v float64) string { return trimFloat(v, 3) }))
		}
	}
	p.table(&t)
	p.chart(charts, "echo.svg", "echo throughput per server and shape")
	p.chart(charts, "echo-cpu.svg", "echo messages per server CPU-second")
}

func (p *page) broadcast(charts map[string]string) {
	cs := p.casesOf(ScenarioBroadcast)
	if len(cs) == 0 {
		return
	}
	c := cs[0]
	p.f("## Broadcast\n\n")
	p.f("%s members join the chat room `/ws/chat?room=bench`; one more wsload connection publishes %d timestamped text messages at %g per second, "+
		"and the server sends each, encoded once, to every member as \"nick: text\" (the chat application of cmd/wsloop; the baselines do the same). "+
		"Latency is from publishing to delivery at a member, with nanosecond time stamps; every delivery is accounted for "+
		"(a lost or duplicated one fails the run). Deliveries per second are over the publishing time plus the wait for the last deliveries: "+
		"they equal the offered %s per second unless a server falls behind, so latency and CPU per delivery are what tell the servers apart.\n\n",
		FormatCount(float64(c.Load.Conns)), c.Load.Messages, c.Load.Rate, FormatCount(c.Load.Rate*float64(c.Load.Conns)))
	t := Table{Header: []string{"server", "deliveries/s", "vs gorilla", "p50", "p99", "vs gorilla (p99)", "CPU-s per million deliveries", "vs gorilla"}}
	for _, s := range p.cfg.Servers {
		t.Add(s.Label,
			FormatSummary(p.sum(c.ID, s.Name, mMsgsPerSec), FormatCount),
			FormatSummary(p.ratio(c.ID, s.Name, mMsgsPerSec), FormatRatio),
			FormatSummary(p.sum(c.ID, s.Name, mLatencyP50), FormatDuration),
			FormatSummary(p.sum(c.ID, s.Name, mLatencyP99), FormatDuration),
			FormatSummary(p.ratio(c.ID, s.Name, mLatencyP99), FormatRatio),
			FormatSummary(p.sum(c.ID, s.Name, mCPUPerMillion), func(v float64) string { return trimFloat(v, 3) }),
			FormatSummary(p.ratio(c.ID, s.Name, mCPUPerMillion), FormatRatio))
	}
	p.table(&t)
	p.chart(charts, "broadcast.svg", "broadcast delivery latency per server")
}

// compression puts what permessage-deflate costs and saves side by side:
// idle memory, CPU per echoed message, and the push feed on the wire.
func (p *page) compression() {
	if !p.has("epoll") || !p.has("epoll-deflate") {
		return
	}
	p.f("## Compression\n\n")
	p.f("wsloop epoll with and without permessage-deflate (`wsloop -compress`: no context takeover, one compressor and one decompressor per loop, " +
		"messages under 128 bytes sent as they are), from the runs above and in the same repetitions. wsload compresses every message it sends, " +
		"so the server inflates every echo request and compresses the replies of 128 bytes or more. Echo payloads are wsload's checked text " +
		"(printable pseudo-random characters: they shrink little, so their CPU is the cost of compression, not a saving). " +
		"The push feed's bytes are read off the socket by a raw client that offers compression as Chromium does, " +
		"frame headers included, every reading inflated and parsed.\n\n")
	t := Table{Header: []string{"figure", "wsloop epoll", "wsloop epoll+deflate", "deflate vs plain"}}
	for _, c := range p.casesOf(ScenarioIdle) {
		t.Add(fmt.Sprintf("RSS per idle connection, %s connections", FormatCount(float64(c.Load.Conns))),
			FormatSummary(p.sum(c.ID, "epoll", mRSSPerConn), FormatBytes), FormatSummary(p.sum(c.ID, "epoll-deflate", mRSSPerConn), FormatBytes),
			FormatSummary(p.diff(c.ID, "epoll-deflate", "epoll", mRSSPerConn), FormatBytes)+" more")
	}
	for _, c := range p.casesOf(ScenarioEcho) {
		t.Add(fmt.Sprintf("server CPU-s per million echoed messages, %s", c.Echo),
			FormatSummary(p.sum(c.ID, "epoll", mCPUPerMillion), func(v float64) string { return trimFloat(v, 3) }),
			FormatSummary(p.sum(c.ID, "epoll-deflate", mCPUPerMillion), func(v float64) string { return trimFloat(v, 3) }),
			FormatSummary(p.ratioTo(c.ID, "epoll-deflate", "epoll", mCPUPerMillion), FormatRatio))
	}
	for _, c := range p.casesOf(ScenarioPushWire) {
		t.Add(fmt.Sprintf("push feed: bytes per reading on the wire (%d readings)", pushWireReadings),
			FormatSummary(p.sum(c.ID, "epoll", mWirePerMsg), FormatBytes), FormatSummary(p.sum(c.ID, "epoll-deflate", mWirePerMsg), FormatBytes),
			FormatSummary(p.ratioTo(c.ID, "epoll-deflate", "epoll", mWirePerMsg), FormatRatio))
		t.Add("push feed: payload bytes per reading",
			FormatSummary(p.sum(c.ID, "epoll", mPayloadPerMsg), FormatBytes), FormatSummary(p.sum(c.ID, "epoll-deflate", mPayloadPerMsg), FormatBytes), "")
		pct := func(v float64) string { return trimFloat(100*v, 3) + " %" }
		t.Add("push feed: readings sent compressed",
			FormatSummary(p.sum(c.ID, "epoll", mCompressedShare), pct), FormatSummary(p.sum(c.ID, "epoll-deflate", mCompressedShare), pct), "")
	}
	p.table(&t)
	for _, c := range p.casesOf(ScenarioPushWire) {
		if share := p.sum(c.ID, "epoll-deflate", mCompressedShare); share.Valid() && share.Max == 0 {
			p.f("A push reading is %s of JSON: under the threshold, and too short to shrink without a compression context kept "+
				"between messages (which would cost a compressor window per connection), so compression leaves the push feed as it is.\n\n",
				FormatBytes(p.sum(c.ID, "epoll-deflate", mPayloadPerMsg).Median))
		}
	}
}

func (p *page) method() {
	p.f("## Method\n\n")
	p.f("- Servers: %s. The wsloop servers are `cmd/wsloop -engine NAME`; the baselines are the goroutine-per-connection "+
		"programs of the nested module `bench/baseline` (gorilla/websocket v1.5.3 with Upgrader and a ReadMessage/WriteMessage loop; "+
		"gobwas/ws v1.5.0 in blocking mode with UpgradeHTTP and wsutil). All serve the same echo and chat-room semantics (the baselines copy cmd/wsloop's chat: \"nick: text\" to every member, the sender included, joins announced only in rooms of at most 100).\n", p.serverList())
	p.f("- Every measurement starts a fresh server process on a fresh port and runs one `wsload` (`cmd/wsload`) against it; the servers of one " +
		"repetition run back to back, in an order rotated each repetition, so each ratio compares runs minutes apart at most.\n")
	p.f("- Client and server share the machine's %d CPUs; loopback only. wsload binds its sockets to 127.0.0.2 onwards and spreads over "+
		"processes when one process's 20,000 open files are not enough.\n", p.res.Machine.CPUs)
	p.f("- Raw per-repetition figures: [results.json](%s).\n\n", p.rel(filepath.Join(p.cfg.ChartsDir, "results.json")))
}

func (p *page) serverList() string {
	var n []string
	for _, s := range p.cfg.Servers {
		n = append(n, s.Label)
	}
	return strings.Join(n, ", ")
}

func (p *page) rel(path string) string {
	rel, err := filepath.Rel(filepath.Dir(p.cfg.Out), path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

func (p *page) failures() {
	if len(p.res.Failures) == 0 {
		return
	}
	p.f("## Failures\n\n")
	p.f("These runs failed; their figures are missing from the tables above.\n\n")
	for _, f := range p.res.Failures {
		p.f("- %s\n", strings.ReplaceAll(firstLines(f, 3), "\n", " / "))
	}
	p.f("\n")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
