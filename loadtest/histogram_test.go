package loadtest

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestHistogramSnapshotMerge(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	for i := 1; i <= 1000; i++ {
		a.record(time.Duration(i) * time.Microsecond)
		b.record(time.Duration(i) * time.Millisecond)
	}
	merged := hdrhistogram.New(histLowest, histHighest, histDigits)
	for _, r := range []*recorder{a, b} {
		js, err := json.Marshal(r.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var w HistSnapshot
		if err := json.Unmarshal(js, &w); err != nil {
			t.Fatal(err)
		}
		h, err := w.histogram()
		if err != nil {
			t.Fatal(err)
		}
		merged.Merge(h)
	}
	l := summarize(merged)
	if l.Count != 2000 {
		t.Fatalf("count %d, want 2000", l.Count)
	}
	if l.P50 < 990 || l.P50 > 1010 { // the 1000th of 2000 values is 1000 µs
		t.Errorf("p50 %d µs, want about 1000", l.P50)
	}
	if l.Max < 999_000 || l.Max > 1_001_000 {
		t.Errorf("max %d µs, want about 1,000,000", l.Max)
	}
	if _, err := (&HistSnapshot{Lowest: 1, Highest: 1000, Digits: 3, Counts: [][2]int64{{1 << 40, 1}}}).histogram(); err == nil {
		t.Error("out-of-range index accepted")
	}
}

func TestParseSrc(t *testing.T) {
	got, err := ParseSrc("127.0.0.2-127.0.0.4, 10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "x", "127.0.0.5-127.0.0.1", "::1-::2"} {
		if _, err := ParseSrc(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPlanShares(t *testing.T) {
	cfg := &Config{Scenario: Broadcast, Conns: 10, Messages: 5, Rate: 4, Publish: PublishSelf, Publishers: 3}
	src := []string{"a", "b", "c"}
	s := planShares(cfg, 2, src)
	if s[0].Conns+s[1].Conns != 10 || s[1].Offset != s[0].Conns {
		t.Errorf("conns %d+%d offset %d", s[0].Conns, s[1].Conns, s[1].Offset)
	}
	if fmt.Sprint(s[0].Publishers, s[1].Publishers) != "[0 2] [1]" {
		t.Errorf("publishers %v and %v, want [0 2] and [1]: publisher k in process k mod 2", s[0].Publishers, s[1].Publishers)
	}
	if len(s[0].Src) != 2 || len(s[1].Src) != 1 || s[1].Src[0] != "b" {
		t.Errorf("src %v %v", s[0].Src, s[1].Src)
	}
}

func TestDefaultSrc(t *testing.T) {
	cfg := Config{Scenario: Idle, URL: "ws://127.0.0.1:1/", Conns: 60000}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	tgt, err := resolveURL(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	src := defaultSrc(tgt.raddr, cfg.sockets(), 4)
	if len(src) != 24 || src[0] != "127.0.0.2" || src[23] != "127.0.0.25" {
		t.Errorf("got %v", src)
	}
	if got := defaultSrc(tgt.raddr, 10, 3); len(got) != 3 {
		t.Errorf("10 connections over 3 processes: %v, want 3 addresses", got)
	}
	if got := defaultSrc(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 80}, 10, 1); got != nil {
		t.Errorf("non-loopback target: %v, want the kernel's choice", got)
	}
}
