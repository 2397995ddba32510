package bench

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// elements parses svg as XML and counts its elements by name.
func elements(t *testing.T, svg string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
			if se.Name.Local == "svg" && se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("svg element in namespace %q", se.Name.Space)
			}
		}
	}
	return counts
}

func TestLineChartSVG(t *testing.T) {
	c := LineChart{
		Title: "memory <per> connection & more", XLabel: "connections", YLabel: "bytes", LogY: true,
		YFormat: FormatBytes,
		Series: []Series{
			{Name: "epoll", Points: []Point{{5000, 200}, {10000, 190}, {19000, 185}}},
			{Name: "gorilla", Points: []Point{{5000, 18000}, {10000, 17900}, {19000, math.NaN()}}},
		},
	}
	var b strings.Builder
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	n := elements(t, b.String())
	if n["svg"] != 1 || n["polyline"] != 2 || n["circle"] != 5 {
		t.Errorf("elements %v: want 1 svg, 2 polylines, 5 circles (NaN point skipped)", n)
	}
	if !strings.Contains(b.String(), "memory &lt;per&gt; connection &amp; more") {
		t.Error("title not escaped")
	}
}

func TestBarChartSVG(t *testing.T) {
	c := BarChart{
		Title: "echo", YLabel: "messages/s",
		Groups: []string{"C=100 x 64 B", "C=1000 x 1 KiB"},
		Series: []string{"epoll", "gnet", "gorilla"},
		Values: [][]float64{{100000, 80000}, {90000, math.NaN()}, {70000, 60000}},
	}
	var b strings.Builder
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	n := elements(t, b.String())
	// 1 background + 3 legend swatches + 5 bars (one NaN).
	if n["rect"] != 9 {
		t.Errorf("rect count %d, want 9", n["rect"])
	}
	var empty strings.Builder
	if err := (&BarChart{Title: "none"}).WriteSVG(&empty); err != nil {
		t.Fatal(err)
	}
	elements(t, empty.String())
}

func TestTicks(t *testing.T) {
	got := linearTicks(93, 5)
	if got[0] != 0 || got[len(got)-1] < 93 {
		t.Errorf("linearTicks(93) = %v: want from 0 to >= 93", got)
	}
	lt := logTicks(150, 18000)
	if len(lt) != 4 || lt[0] != 100 || lt[len(lt)-1] != 100000 {
		t.Errorf("logTicks(150, 18000) = %v, want 100, 1000, 10000, 100000", lt)
	}
	lt = logTicks(15000, 25000)
	if len(lt) != 4 || lt[0] != 10000 || lt[1] != 20000 || lt[2] != 50000 || lt[3] != 100000 {
		t.Errorf("logTicks(15000, 25000) = %v, want 10k, 20k, 50k, 100k", lt)
	}
}
