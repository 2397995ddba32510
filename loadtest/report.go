package loadtest

import (
	"fmt"
	"io"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Counts are the event counters of a run; a process reports its own and the
// parent adds them up.
type Counts struct {
	Attempted int64 `json:"attempted"` // connects started
	Opened    int64 `json:"opened"`    // handshakes completed
	// Compressed are the opened connections that negotiated
	// permessage-deflate (Config.Compress).
	Compressed int64            `json:"compressed,omitempty"`
	Failed     map[string]int64 `json:"failed,omitempty"` // connects that did not open, by cause
	// Dropped are open connections the server closed (or lost) when the
	// generator had not asked, by cause.
	Dropped map[string]int64 `json:"dropped,omitempty"`
	// HeldAtStart and HeldAtEnd are the connections open when the traffic
	// started and when it ended.
	HeldAtStart int64 `json:"held_at_start"`
	HeldAtEnd   int64 `json:"held_at_end"`
	// ClosedClean are connections closed by the generator whose close
	// handshake completed (churn).
	ClosedClean int64 `json:"closed_clean,omitempty"`

	Sent          int64 `json:"sent"`     // messages sent (echo: requests; broadcast: published)
	Received      int64 `json:"received"` // messages received, all of them
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	SendErrors    int64 `json:"send_errors,omitempty"` // sends the connection refused (backpressure, closed)

	Mismatched int64 `json:"mismatched,omitempty"` // echoes that differ from what was sent
	Missing    int64 `json:"missing,omitempty"`    // echoes that never came back

	Delivered  int64 `json:"delivered,omitempty"`  // broadcast messages received, once each, intact
	Duplicates int64 `json:"duplicates,omitempty"` // broadcast messages received again (server messages: or out of order)
	Gaps       int64 `json:"gaps,omitempty"`       // server-originated messages skipped in their sequence
	Corrupt    int64 `json:"corrupt,omitempty"`    // broadcast messages whose token or time did not parse
	Foreign    int64 `json:"foreign,omitempty"`    // messages that were not this run's (other chat users)
	// Reordered are self-published broadcasts received after a later one
	// of the same publisher (counted in Delivered too).
	Reordered  int64 `json:"reordered,omitempty"`
	Published  int64 `json:"published,omitempty"`  // soak: room messages published (Sent counts echoes)
	Heartbeats int64 `json:"heartbeats,omitempty"` // sse: comment lines (keep-alives) received
	// SlowReaders are soak connections that completed their handshake and
	// then never read.
	SlowReaders int64 `json:"slow_readers,omitempty"`
	// Subscribers are the soak's room subscribers open when the traffic
	// started: the room's deliveries due are Published times them.
	Subscribers int64 `json:"subscribers,omitempty"`
}

func (c *Counts) add(o *Counts) {
	c.Attempted += o.Attempted
	c.Opened += o.Opened
	c.Compressed += o.Compressed
	c.Failed = addMap(c.Failed, o.Failed)
	c.Dropped = addMap(c.Dropped, o.Dropped)
	c.HeldAtStart += o.HeldAtStart
	c.HeldAtEnd += o.HeldAtEnd
	c.ClosedClean += o.ClosedClean
	c.Sent += o.Sent
	c.Received += o.Received
	c.BytesSent += o.BytesSent
	c.BytesReceived += o.BytesReceived
	c.SendErrors += o.SendErrors
	c.Mismatched += o.Mismatched
	c.Missing += o.Missing
	c.Delivered += o.Delivered
	c.Duplicates += o.Duplicates
	c.Gaps += o.Gaps
	c.Corrupt += o.Corrupt
	c.Foreign += o.Foreign
	c.Reordered += o.Reordered
	c.Published += o.Published
	c.Heartbeats += o.Heartbeats
	c.SlowReaders += o.SlowReaders
	c.Subscribers += o.Subscribers
}

func addMap(dst, src map[string]int64) map[string]int64 {
	for k, v := range src {
		if dst == nil {
			dst = make(map[string]int64)
		}
		dst[k] += v
	}
	return dst
}

func sumMap(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func fmtMap(m map[string]int64) string {
	var b strings.Builder
	for _, k := range causeNames {
		if v := m[k]; v != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, v)
		}
	}
	return b.String()
}

// partResult is what one process reports at the end of a run.
type partResult struct {
	Counts
	Handshake *HistSnapshot `json:"handshake"`
	Latency   *HistSnapshot `json:"latency"`
	RSS       int64         `json:"rss"`  // VmRSS with every connection held, after the traffic
	Ramp      float64       `json:"ramp"` // seconds from the first connect to the last open
	Traffic   float64       `json:"traffic"`
	// TrafficMsgs and TrafficBytes are what was received during the traffic.
	TrafficMsgs  int64    `json:"traffic_msgs"`
	TrafficBytes int64    `json:"traffic_bytes"`
	Notes        []string `json:"notes,omitempty"` // first occurrences of failures, with detail
}

// Report is the result of a run: what was asked, what happened, and what
// was wrong (Failures). Latencies are in microseconds.
type Report struct {
	Scenario string  `json:"scenario"`
	URL      string  `json:"url"`
	Conns    int     `json:"conns"`
	Procs    int     `json:"procs"`
	Src      int     `json:"source_addresses"`
	Size     int     `json:"size,omitempty"`
	Rate     float64 `json:"rate,omitempty"`

	Counts
	// Expected are the broadcast deliveries due: published messages times
	// subscribers held when publishing started (with PublishServer: what
	// was delivered plus the gaps); Lost is Expected less Delivered.
	Expected int64 `json:"expected,omitempty"`
	Lost     int64 `json:"lost,omitempty"`

	RampSeconds    float64 `json:"ramp_seconds"`
	ConnectRate    float64 `json:"connect_rate"` // opened per second of ramp
	TrafficSeconds float64 `json:"traffic_seconds"`
	TrafficMsgs    int64   `json:"traffic_msgs"`     // messages received during the traffic
	MessagesPerSec float64 `json:"messages_per_sec"` // received during the traffic, per second of it
	MBPerSec       float64 `json:"mb_per_sec"`       // received MB (10^6 B) per second of traffic

	Handshake Latency `json:"handshake_latency"`
	Latency   Latency `json:"message_latency"` // echo round trip, or broadcast send to delivery

	// GeneratorRSS is the largest VmRSS of a generator process with its
	// connections held; GeneratorRSSPerConn divides it by that process's share.
	GeneratorRSS        int64   `json:"generator_rss"`
	GeneratorRSSPerProc []int64 `json:"generator_rss_per_proc"`

	// Soak is the soak scenario's server figures, before, at peak and after.
	Soak *SoakReport `json:"soak,omitempty"`

	ServerRSSBefore    int64   `json:"server_rss_before,omitempty"`
	ServerRSSAfter     int64   `json:"server_rss_after,omitempty"`
	ServerBytesPerConn float64 `json:"server_bytes_per_conn,omitempty"`

	Notes    []string `json:"notes,omitempty"`
	Failures []string `json:"failures,omitempty"`

	handshake, latency *hdrhistogram.Histogram
}

// Passed reports whether the run found nothing wrong.
func (r *Report) Passed() bool { return len(r.Failures) == 0 }

// VerificationError is returned by Run when the server did something wrong.
type VerificationError struct{ Failures []string }

func (e *VerificationError) Error() string {
	return "verification failed: " + strings.Join(e.Failures, "; ")
}

// merge adds up the processes' results into r and derives the rates.
func (r *Report) merge(cfg *Config, parts []*partResult) error {
	var trafficBytes int64
	r.handshake = hdrhistogram.New(histLowest, histHighest, histDigits)
	r.latency = hdrhistogram.New(histLowest, histHighest, histDigits)
	for _, p := range parts {
		r.Counts.add(&p.Counts)
		for _, pair := range []struct {
			dst *hdrhistogram.Histogram
			src *HistSnapshot
		}{{r.handshake, p.Handshake}, {r.latency, p.Latency}} {
			h, err := pair.src.histogram()
			if err != nil {
				return err
			}
			pair.dst.Merge(h)
		}
		r.GeneratorRSSPerProc = append(r.GeneratorRSSPerProc, p.RSS)
		r.GeneratorRSS = max(r.GeneratorRSS, p.RSS)
		r.RampSeconds = max(r.RampSeconds, p.Ramp)
		r.TrafficSeconds = max(r.TrafficSeconds, p.Traffic)
		r.Notes = append(r.Notes, p.Notes...)
		r.TrafficMsgs += p.TrafficMsgs
		trafficBytes += p.TrafficBytes
	}
	r.Handshake = summarize(r.handshake)
	r.Latency = summarize(r.latency)
	if r.RampSeconds > 0 {
		r.ConnectRate = float64(r.Opened) / r.RampSeconds
	}
	if r.TrafficSeconds > 0 {
		r.MessagesPerSec = float64(r.TrafficMsgs) / r.TrafficSeconds
		r.MBPerSec = float64(trafficBytes) / 1e6 / r.TrafficSeconds
	}
	switch {
	case r.Scenario == Soak:
		r.Expected = r.Published * r.Subscribers
		r.Lost = max(0, r.Expected-r.Delivered)
	case r.Scenario != Broadcast && r.Scenario != SSE:
	case cfg.Publish == PublishSelf:
		r.Expected = r.Sent * r.HeldAtStart
		r.Lost = max(0, r.Expected-r.Delivered)
	default:
		r.Expected = r.Delivered + r.Gaps
		r.Lost = r.Gaps
	}
	return nil
}

// verify lists what the server did wrong.
func (r *Report) verify(cfg *Config) {
	f := func(format string, a ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, a...)) }
	if n := r.Failed[causeHandshake.String()]; n > 0 {
		f("%d handshakes rejected by the server", n)
	}
	if n := sumMap(r.Failed) - r.Failed[causeHandshake.String()]; n > 0 {
		f("%d of %d connects failed (%s)", n, r.Attempted, fmtMap(r.Failed))
	}
	if n := sumMap(r.Dropped); n > 0 {
		f("%d connections dropped by the server (%s)", n, fmtMap(r.Dropped))
	}
	if r.Mismatched > 0 {
		f("%d echoed payloads differ from what was sent", r.Mismatched)
	}
	if r.Missing > 0 {
		f("%d echoes never came back", r.Missing)
	}
	if r.Scenario == Broadcast || r.Scenario == SSE || r.Scenario == Soak {
		if r.Lost > 0 {
			f("%d of %d broadcast deliveries lost", r.Lost, r.Expected)
		}
		if r.Duplicates > 0 && cfg.Publish == PublishSelf {
			f("%d broadcast messages delivered twice", r.Duplicates)
		}
		if r.Duplicates > 0 && cfg.Publish == PublishServer {
			f("%d broadcast messages delivered twice or out of order", r.Duplicates)
		}
		if r.Reordered > 0 {
			f("%d broadcast messages arrived after a later one of the same publisher", r.Reordered)
		}
		if r.Corrupt > 0 {
			f("%d broadcast messages with a damaged token or time field", r.Corrupt)
		}
		if cfg.Publish == PublishSelf && r.Scenario != Soak && r.Sent < int64(cfg.Messages*cfg.Publishers) {
			f("published %d of %d messages", r.Sent, cfg.Messages*cfg.Publishers)
		}
		if cfg.Publish == PublishServer && r.Delivered == 0 {
			f("no server message carried a %q time field", cfg.StampField)
		}
	}
	held := int64(cfg.Conns)
	if r.Scenario == Soak {
		held -= int64(cfg.Soak.SlowReaders) // not among the generator's event-loop connections
	}
	if r.Scenario != Connect && r.Scenario != Churn && r.HeldAtStart < held && sumMap(r.Failed) == 0 {
		f("only %d of %d connections were open when the traffic started", r.HeldAtStart, held)
	}
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	what := fmt.Sprintf("conns %d", r.Conns)
	if r.Scenario == Churn {
		what = fmt.Sprintf("rate %g/s", r.Rate)
	}
	p("scenario   %s  %s  %s  procs %d  source addresses %d", r.Scenario, r.URL, what, r.Procs, r.Src)
	p("connects   %d attempted, %d opened in %.2fs (%.0f/s); failed: %s", r.Attempted, r.Opened, r.RampSeconds, r.ConnectRate, orNone(fmtMap(r.Failed)))
	if r.Compressed > 0 {
		p("compressed %d of %d connections negotiated permessage-deflate", r.Compressed, r.Opened)
	}
	p("handshake  %s", r.Handshake)
	p("held       %d at traffic start, %d at end; dropped by server: %s", r.HeldAtStart, r.HeldAtEnd, orNone(fmtMap(r.Dropped)))
	if r.ClosedClean > 0 {
		p("closed     %d with a complete close handshake", r.ClosedClean)
	}
	if r.Sent > 0 || r.Received > 0 {
		p("messages   %d sent, %d received (%d during the %.2fs of traffic: %.0f msg/s, %.2f MB/s)",
			r.Sent, r.Received, r.TrafficMsgs, r.TrafficSeconds, r.MessagesPerSec, r.MBPerSec)
		p("latency    %s", r.Latency)
	}
	if r.Scenario == Echo || r.Scenario == Soak {
		p("verified   %d mismatched, %d missing, %d send errors", r.Mismatched, r.Missing, r.SendErrors)
	}
	if r.Scenario == Broadcast || r.Scenario == SSE || r.Scenario == Soak {
		p("delivered  %d of %d expected, lost %d, duplicates %d, reordered %d, corrupt %d, gaps %d, other messages %d",
			r.Delivered, r.Expected, r.Lost, r.Duplicates, r.Reordered, r.Corrupt, r.Gaps, r.Foreign)
	}
	if r.Scenario == SSE {
		p("sse        %d heartbeats (comment lines)", r.Heartbeats)
	}
	if r.Soak != nil {
		p("soak       %d room subscribers, %d slow readers (never read), %d churned", r.Subscribers, r.SlowReaders, r.ClosedClean)
		r.Soak.writeText(p)
	}
	p("generator  VmRSS %s max per process %v", fmtBytes(r.GeneratorRSS), fmtAll(r.GeneratorRSSPerProc))
	if r.ServerRSSBefore > 0 {
		p("server     VmRSS %s before, %s after: %.0f B per connection", fmtBytes(r.ServerRSSBefore), fmtBytes(r.ServerRSSAfter), r.ServerBytesPerConn)
	}
	for _, n := range r.Notes {
		p("note       %s", n)
	}
	if r.Passed() {
		p("result     PASS")
	} else {
		for _, f := range r.Failures {
			p("FAIL       %s", f)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

func fmtAll(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmtBytes(n)
	}
	return "[" + strings.Join(s, " ") + "]"
}
