package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// ServerSample is what the soak reads of the server at one moment: from
// /proc (with Config.ServerPID) its descriptors and RSS, summed with its
// children's (a -procs supervisor's workers), from its expvar page
// (Soak.VarsURL, when it answers) goroutines and heap.
type ServerSample struct {
	At         time.Time `json:"at"`
	FDs        int       `json:"fds,omitempty"`
	RSS        int64     `json:"rss,omitempty"`
	Goroutines int       `json:"goroutines,omitempty"`
	HeapAlloc  int64     `json:"heap_alloc,omitempty"`
	NumGC      uint32    `json:"num_gc,omitempty"`
	HasProc    bool      `json:"has_proc"`
	HasVars    bool      `json:"has_vars"`
}

// SoakReport is the soak's verdict on the server's resources.
type SoakReport struct {
	Before    ServerSample `json:"before"`
	Peak      ServerSample `json:"peak"` // the largest of each figure during the traffic
	After     ServerSample `json:"after"`
	Tolerance Tolerance    `json:"tolerance"`
	// SettledIn is how long after the teardown the figures came back
	// within tolerance (or Settle, when they did not).
	SettledIn float64  `json:"settled_in_seconds"`
	Failures  []string `json:"failures,omitempty"`
}

// soakHTTP keeps no connection open between samples: an idle keep-alive
// socket would count as one of the server's descriptors.
var soakHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// sampleServer reads the server's figures; gc makes it collect garbage
// first when Soak.GCURL is set.
func sampleServer(ctx context.Context, cfg *Config, gc bool) (ServerSample, error) {
	s := ServerSample{At: time.Now()}
	if cfg.ServerPID > 0 {
		for _, pid := range withChildren(cfg.ServerPID) {
			ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
			if err != nil && pid == cfg.ServerPID {
				return s, fmt.Errorf("reading the server's descriptors: %w", err)
			}
			s.FDs += len(ents)
		}
		var err error
		if s.RSS, err = serverRSS(cfg.ServerPID); err != nil {
			return s, err
		}
		s.HasProc = true
	}
	if gc && cfg.Soak.GCURL != "" {
		if err := getBody(ctx, cfg.Soak.GCURL, nil); err != nil {
			return s, fmt.Errorf("-server-gc: %w", err)
		}
	}
	var v struct {
		Goroutines int `json:"goroutines"`
		Memstats   struct {
			HeapAlloc int64  `json:"HeapAlloc"`
			NumGC     uint32 `json:"NumGC"`
		} `json:"memstats"`
	}
	if err := getBody(ctx, cfg.Soak.VarsURL, &v); err == nil && v.Goroutines > 0 {
		s.Goroutines, s.HeapAlloc, s.NumGC, s.HasVars = v.Goroutines, v.Memstats.HeapAlloc, v.Memstats.NumGC, true
	}
	return s, nil
}

func getBody(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if into == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<20))
		return err
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(into)
}

// peakOf keeps the largest of each figure.
func peakOf(a, b ServerSample) ServerSample {
	a.FDs, a.RSS = max(a.FDs, b.FDs), max(a.RSS, b.RSS)
	a.Goroutines, a.HeapAlloc = max(a.Goroutines, b.Goroutines), max(a.HeapAlloc, b.HeapAlloc)
	a.HasProc, a.HasVars = a.HasProc || b.HasProc, a.HasVars || b.HasVars
	return a
}

// check lists how after is not near before; the heap is judged only when
// the server has collected garbage since the teardown.
func (r *SoakReport) check(judgeHeap bool) []string {
	var out []string
	b, a, t := r.Before, r.After, r.Tolerance
	if b.HasProc {
		if a.FDs > b.FDs+t.FDs {
			out = append(out, fmt.Sprintf("server descriptors %d after the soak, %d before (tolerance %d)", a.FDs, b.FDs, t.FDs))
		}
		limit := b.RSS + max(t.RSSBytes, int64(t.RSSPeak*float64(r.Peak.RSS-b.RSS)))
		if a.RSS > limit {
			out = append(out, fmt.Sprintf("server RSS %s after the soak, %s before, %s at peak (tolerance: up to %s)",
				fmtBytes(a.RSS), fmtBytes(b.RSS), fmtBytes(r.Peak.RSS), fmtBytes(limit)))
		}
	}
	if b.HasVars {
		if a.Goroutines > b.Goroutines+t.Goroutines {
			out = append(out, fmt.Sprintf("server goroutines %d after the soak, %d before (tolerance %d)", a.Goroutines, b.Goroutines, t.Goroutines))
		}
		limit := b.HeapAlloc + max(t.HeapBytes, int64(t.HeapRatio*float64(b.HeapAlloc)))
		if judgeHeap && a.HeapAlloc > limit {
			out = append(out, fmt.Sprintf("server heap %s after the soak, %s before (tolerance: up to %s)",
				fmtBytes(a.HeapAlloc), fmtBytes(b.HeapAlloc), fmtBytes(limit)))
		}
	}
	return out
}

// settle samples the server every second after the teardown until its
// figures are back within tolerance, or Settle has passed. Without a way
// to force a collection, the heap only counts once the server has
// collected after the teardown.
func (r *SoakReport) settle(ctx context.Context, cfg *Config, teardown time.Time) {
	gc := cfg.Soak.GCURL != ""
	end := teardown.Add(cfg.Soak.Settle)
	var afterGC uint32
	first := true
	for {
		s, err := sampleServer(ctx, cfg, true)
		if err != nil {
			r.Failures = []string{"sampling the server after the soak: " + err.Error()}
			return
		}
		if first {
			afterGC, first = s.NumGC, false
		}
		r.After = s
		r.SettledIn = time.Since(teardown).Seconds()
		collected := gc || !s.HasVars || s.NumGC > afterGC
		fails := r.check(collected)
		if collected && len(fails) == 0 {
			r.Failures = nil
			return
		}
		r.Failures = fails
		if !time.Now().Before(end) || ctx.Err() != nil {
			if !collected {
				r.Failures = append(r.Failures, fmt.Sprintf("the server did not collect garbage within -settle %v of the teardown: heap not judged (give -server-gc)", cfg.Soak.Settle))
			}
			return
		}
		sleepCtx(ctx, time.Second)
	}
}

func (r *SoakReport) writeText(p func(format string, a ...any)) {
	row := func(name string, f func(s ServerSample) string) {
		p("soak       %-10s before %-10s peak %-10s after %-10s", name, f(r.Before), f(r.Peak), f(r.After))
	}
	if r.Before.HasProc {
		row("fds", func(s ServerSample) string { return strconv.Itoa(s.FDs) })
		row("rss", func(s ServerSample) string { return fmtBytes(s.RSS) })
	}
	if r.Before.HasVars {
		row("goroutines", func(s ServerSample) string { return strconv.Itoa(s.Goroutines) })
		row("heap", func(s ServerSample) string { return fmtBytes(s.HeapAlloc) })
	}
	t := r.Tolerance
	p("soak       tolerance: fds +%d, goroutines +%d, heap +max(%s, %.0f%%), rss +max(%s, %.0f%% of the peak growth); settled in %.1fs",
		t.FDs, t.Goroutines, fmtBytes(t.HeapBytes), 100*t.HeapRatio, fmtBytes(t.RSSBytes), 100*t.RSSPeak, r.SettledIn)
}
