package bench

import (
	"math"
	"strings"
	"testing"
)

func TestTableRender(t *testing.T) {
	tb := Table{Header: []string{"server", "RSS/conn", "ratio"}}
	tb.Add("epoll", "180 B", "0.01x")
	tb.Add("a|b") // short row, pipe in a cell
	var b strings.Builder
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "| server | RSS/conn | ratio |\n" +
		"|---|---:|---:|\n" +
		"| epoll | 180 B | 0.01x |\n" +
		"| a\\|b |  |  |\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestFormats(t *testing.T) {
	cases := []struct{ got, want string }{
		{FormatBytes(180), "180 B"},
		{FormatBytes(17900), "17.9 KB"},
		{FormatBytes(1280), "1.28 KB"},
		{FormatBytes(3.5e6), "3.5 MB"},
		{FormatCount(950), "950"},
		{FormatCount(12345), "12.3k"},
		{FormatCount(1250000), "1.25M"},
		{FormatRatio(0.0123456), "0.0123x"},
		{FormatRatio(math.NaN()), "n/a"},
		{FormatDuration(0.000123), "123 µs"},
		{FormatDuration(0.0456), "45.6 ms"},
		{FormatSummary(Summary{Median: 2, Min: 1, Max: 3, N: 3}, FormatCount), "2 (1–3)"},
		{FormatSummary(Summary{Median: 2, Min: 2, Max: 2, N: 1}, FormatCount), "2"},
		{FormatSummary(Summary{}, FormatCount), "n/a"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}
