package loadtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour, with three
// significant digits: about 200 KB per histogram, a handful per process.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

// recorder is an HDR histogram shared by every connection of a process.
// Loops record concurrently, so it is guarded by a mutex: one uncontended
// lock per message is far below the cost of the message itself.
type recorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newRecorder() *recorder {
	return &recorder{h: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// record adds one latency; values out of range are clamped so that nothing
// recorded is silently lost.
func (r *recorder) record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	r.mu.Lock()
	_ = r.h.RecordValue(us)
	r.mu.Unlock()
}

// quantile returns the value at q (0..100) in microseconds and the count.
func (r *recorder) quantile(q float64) (us int64, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.ValueAtPercentile(q), r.h.TotalCount()
}

// snapshot copies the histogram into its wire form.
func (r *recorder) snapshot() *HistSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return exportHist(r.h)
}

// HistSnapshot is an HDR histogram in a compact wire form: the layout
// parameters and only the non-zero counts, as (index, count) pairs. Workers
// send it to their parent, which merges the histograms exactly.
type HistSnapshot struct {
	Lowest  int64      `json:"lowest"`
	Highest int64      `json:"highest"`
	Digits  int64      `json:"digits"`
	Counts  [][2]int64 `json:"counts"` // index into the dense counts array, count
}

func exportHist(h *hdrhistogram.Histogram) *HistSnapshot {
	s := h.Export()
	w := &HistSnapshot{Lowest: s.LowestTrackableValue, Highest: s.HighestTrackableValue, Digits: s.SignificantFigures}
	for i, c := range s.Counts {
		if c != 0 {
			w.Counts = append(w.Counts, [2]int64{int64(i), c})
		}
	}
	return w
}

// histogram rebuilds the histogram the snapshot describes.
func (w *HistSnapshot) histogram() (*hdrhistogram.Histogram, error) {
	if w == nil {
		return hdrhistogram.New(histLowest, histHighest, histDigits), nil
	}
	empty := hdrhistogram.New(w.Lowest, w.Highest, int(w.Digits))
	s := empty.Export()
	for _, p := range w.Counts {
		if p[0] < 0 || p[0] >= int64(len(s.Counts)) || p[1] < 0 {
			return nil, fmt.Errorf("histogram snapshot: count index %d out of range [0,%d)", p[0], len(s.Counts))
		}
		s.Counts[p[0]] = p[1]
	}
	return hdrhistogram.Import(s), nil
}

// Latency summarises a latency histogram, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   int64   `json:"p50_us"`
	P90   int64   `json:"p90_us"`
	P99   int64   `json:"p99_us"`
	P999  int64   `json:"p999_us"`
	Max   int64   `json:"max_us"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.ValueAtPercentile(50),
		P90:   h.ValueAtPercentile(90),
		P99:   h.ValueAtPercentile(99),
		P999:  h.ValueAtPercentile(99.9),
		Max:   h.Max(),
	}
}

func (l Latency) String() string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", l.Count,
		fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max))
}

func fmtUS(us int64) string {
	d := time.Duration(us) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", us)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
