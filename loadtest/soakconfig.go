package loadtest

import (
	"fmt"
	"net/url"
	"time"
)

// SoakConfig configures the soak scenario: Conns connections held for
// Duration, of which Subscribers join a chat room that one publisher feeds
// at BroadcastRate, SlowReaders join it and never read, and the rest echo
// (Config.Rate messages per second over all of them, open loop); meanwhile
// ChurnRate connections per second open and close. At the end, with every
// connection closed, the server's file descriptors, goroutines, heap and
// RSS must come back near what they were before the run (Tolerance).
type SoakConfig struct {
	// RoomURL is where subscribers, slow readers and the publisher connect;
	// default the host of URL with /ws/chat?room=wsload-soak-<run id>.
	RoomURL string `json:"room_url,omitempty"`
	// ChurnRate is connections opened and closed per second; default 20.
	ChurnRate float64 `json:"churn_rate,omitempty"`
	// BroadcastRate is the room messages (Size bytes) published per second;
	// default 2.
	BroadcastRate float64 `json:"broadcast_rate,omitempty"`
	// Subscribers and SlowReaders are parts of Conns; defaults 10 % and 1 %.
	Subscribers int `json:"subscribers,omitempty"`
	SlowReaders int `json:"slow_readers,omitempty"`
	// VarsURL is the server's expvar page (goroutines, memstats); default
	// http://<host of URL>/debug/vars, used when it answers.
	VarsURL string `json:"vars_url,omitempty"`
	// GCURL, when set, is fetched before every heap reading to make the
	// server collect garbage first, e.g. a pprof listener's
	// http://127.0.0.1:6060/debug/pprof/heap?gc=1. Without it the heap is
	// read after the server's next collection (Go forces one every 2
	// minutes).
	GCURL string `json:"gc_url,omitempty"`
	// Settle bounds the wait, after every connection is closed, for the
	// server to come back within Tolerance; default 30s with GCURL, 150s
	// without.
	Settle time.Duration `json:"settle,omitempty"`
	// Tolerance is how near the baseline "near" is.
	Tolerance Tolerance `json:"tolerance"`
}

// Tolerance bounds how far the server may stay above its baseline after a
// soak. The defaults: 8 file descriptors, 8 goroutines, heap (after a
// collection) 8 MiB or a quarter of the baseline, whichever is more, and
// RSS 64 MiB or half of the growth to its peak, whichever is more (Go
// returns freed memory to the system slowly, so RSS is the loosest).
type Tolerance struct {
	FDs        int     `json:"fds"`
	Goroutines int     `json:"goroutines"`
	HeapBytes  int64   `json:"heap_bytes"`
	HeapRatio  float64 `json:"heap_ratio"` // of the baseline
	RSSBytes   int64   `json:"rss_bytes"`
	RSSPeak    float64 `json:"rss_peak_ratio"` // of the growth from baseline to peak
}

func (s *SoakConfig) defaults(c *Config) error {
	if s.ChurnRate == 0 {
		s.ChurnRate = 20
	}
	if s.BroadcastRate == 0 {
		s.BroadcastRate = 2
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if s.Subscribers == 0 {
		s.Subscribers = max(1, c.Conns/10)
	}
	if s.SlowReaders == 0 {
		s.SlowReaders = max(1, c.Conns/100)
	}
	if s.ChurnRate < 0 || s.BroadcastRate < 0 || s.Subscribers < 0 || s.SlowReaders < 0 {
		return fmt.Errorf("soak rates and counts must not be negative")
	}
	if s.Subscribers+s.SlowReaders >= c.Conns {
		return fmt.Errorf("soak: %d subscribers and %d slow readers leave no echo connections of %d", s.Subscribers, s.SlowReaders, c.Conns)
	}
	if len(splitURLs(c.URL)) != 1 {
		return fmt.Errorf("soak: give one -url (the server whose resources are checked)")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("-url %q: %v", c.URL, err)
	}
	if s.RoomURL == "" {
		s.RoomURL = "ws://" + u.Host + "/ws/chat?room=wsload-soak-" + c.RunID
	}
	if s.VarsURL == "" {
		s.VarsURL = "http://" + u.Host + "/debug/vars"
	}
	if s.Settle == 0 {
		s.Settle = 150 * time.Second
		if s.GCURL != "" {
			s.Settle = 30 * time.Second
		}
	}
	t := &s.Tolerance
	if t.FDs == 0 {
		t.FDs = 8
	}
	if t.Goroutines == 0 {
		t.Goroutines = 8
	}
	if t.HeapBytes == 0 {
		t.HeapBytes = 8 << 20
	}
	if t.HeapRatio == 0 {
		t.HeapRatio = 0.25
	}
	if t.RSSBytes == 0 {
		t.RSSBytes = 64 << 20
	}
	if t.RSSPeak == 0 {
		t.RSSPeak = 0.5
	}
	c.PublishURL = s.RoomURL
	c.Publishers = 1
	c.Publish = PublishSelf
	c.Messages = int(s.BroadcastRate*c.Duration.Seconds()) + 1
	return nil
}
