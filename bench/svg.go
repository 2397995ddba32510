package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Charts are drawn by hand-written SVG so that the benchmark needs nothing
// beyond the standard library and the page renders anywhere (GitHub shows
// SVG files linked from Markdown as images).

const (
	svgW, svgH   = 720, 400
	plotL, plotR = 80, 170 // left margin (axis labels), right margin (legend)
	plotT, plotB = 40, 60  // top (title), bottom (axis labels)
)

// palette holds one colour per series, distinguishable in print and for
// most colour-blind readers (Okabe-Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000"}

// Point is one (x, y) pair of a line chart.
type Point struct{ X, Y float64 }

// Series is one named line.
type Series struct {
	Name   string
	Points []Point
}

// LineChart plots series against a numeric x axis; LogY uses a base-10
// logarithmic y axis (for figures that span orders of magnitude).
type LineChart struct {
	Title, XLabel, YLabel string
	LogY                  bool
	YFormat               func(float64) string // tick labels; default FormatCount
	Series                []Series
}

// BarChart draws grouped bars: one group per Groups entry, one bar per
// series in each group. Values[s][g] is series s in group g; NaN leaves a gap.
type BarChart struct {
	Title, YLabel string
	YFormat       func(float64) string
	Groups        []string
	Series        []string
	Values        [][]float64
}

type svgBuf struct{ b strings.Builder }

func (s *svgBuf) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func esc(text string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(text))
	return b.String()
}

func (s *svgBuf) open(title string) {
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	s.f(`<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgW, svgH)
	s.f(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, esc(title))
}

func (s *svgBuf) legend(names []string) {
	for i, n := range names {
		y := plotT + 10 + i*20
		s.f(`<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", svgW-plotR+15, y, palette[i%len(palette)])
		s.f(`<text x="%d" y="%d">%s</text>`+"\n", svgW-plotR+32, y+10, esc(n))
	}
}

// yAxis draws the frame, horizontal grid lines, tick labels and the y
// label; ys maps a value to its pixel row.
func (s *svgBuf) yAxis(ticks []float64, ys func(float64) float64, format func(float64) string, label string) {
	x0, x1 := float64(plotL), float64(svgW-plotR)
	for _, t := range ticks {
		y := ys(t)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", x0, y, x1, y)
		s.f(`<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, esc(format(t)))
	}
	s.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333333"/>`+"\n", x0, plotT, x0, svgH-plotB)
	s.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333333"/>`+"\n", x0, svgH-plotB, x1, svgH-plotB)
	s.f(`<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (plotT+svgH-plotB)/2, esc(label))
}

// linearTicks returns about n round tick values covering [0, max].
func linearTicks(max float64, n int) []float64 {
	if !(max > 0) || math.IsInf(max, 0) {
		return []float64{0, 1}
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := 0.0; v < max+step*0.999; v += step {
		ticks = append(ticks, v)
	}
	return ticks
}

// logTicks returns powers of ten covering [min, max], with 2 and 5
// between them when the range spans two decades or less.
func logTicks(min, max float64) []float64 {
	lo := math.Floor(math.Log10(min))
	hi := math.Ceil(math.Log10(max))
	if hi == lo {
		hi++
	}
	var ticks []float64
	for e := lo; e <= hi; e++ {
		p := math.Pow(10, e)
		ticks = append(ticks, p)
		if hi-lo <= 2 && e < hi {
			ticks = append(ticks, 2*p, 5*p)
		}
	}
	return ticks
}

// WriteSVG draws the chart.
func (c *LineChart) WriteSVG(w io.Writer) error {
	format := c.YFormat
	if format == nil {
		format = FormatCount
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || (c.LogY && p.Y <= 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 0) { // no data: draw an empty frame
		xmin, xmax, ymin, ymax = 0, 1, 1, 10
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	pw, ph := float64(svgW-plotL-plotR), float64(svgH-plotT-plotB)
	xs := func(x float64) float64 { return float64(plotL) + 20 + (x-xmin)/(xmax-xmin)*(pw-40) }
	var ticks []float64
	var ys func(float64) float64
	if c.LogY {
		ticks = logTicks(ymin, ymax)
		lo, hi := math.Log10(ticks[0]), math.Log10(ticks[len(ticks)-1])
		ys = func(y float64) float64 { return float64(plotT) + ph - (math.Log10(y)-lo)/(hi-lo)*ph }
	} else {
		ticks = linearTicks(ymax, 5)
		top := ticks[len(ticks)-1]
		ys = func(y float64) float64 { return float64(plotT) + ph - y/top*ph }
	}

	var s svgBuf
	s.open(c.Title)
	s.yAxis(ticks, ys, format, c.YLabel)
	xticks := map[float64]bool{}
	for _, se := range c.Series {
		for _, p := range se.Points {
			xticks[p.X] = true
		}
	}
	for x := range xticks {
		s.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xs(x), svgH-plotB+18, esc(FormatCount(x)))
	}
	s.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", float64(plotL)+pw/2, svgH-plotB+42, esc(c.XLabel))
	names := make([]string, len(c.Series))
	for i, se := range c.Series {
		names[i] = se.Name
		col := palette[i%len(palette)]
		var pts []string
		for _, p := range se.Points {
			if math.IsNaN(p.Y) || (c.LogY && p.Y <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(p.X), ys(p.Y)))
		}
		if len(pts) > 1 {
			s.f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		}
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			s.f(`<circle cx="%s" cy="%s" r="3.5" fill="%s"><title>%s</title></circle>`+"\n", x, y, col, esc(se.Name))
		}
	}
	s.legend(names)
	s.f("</svg>\n")
	_, err := io.WriteString(w, s.b.String())
	return err
}

// WriteSVG draws the chart.
func (c *BarChart) WriteSVG(w io.Writer) error {
	format := c.YFormat
	if format == nil {
		format = FormatCount
	}
	ymax := 0.0
	for _, row := range c.Values {
		for _, v := range row {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	ticks := linearTicks(ymax, 5)
	top := ticks[len(ticks)-1]
	pw, ph := float64(svgW-plotL-plotR), float64(svgH-plotT-plotB)
	ys := func(y float64) float64 { return float64(plotT) + ph - y/top*ph }

	var s svgBuf
	s.open(c.Title)
	s.yAxis(ticks, ys, format, c.YLabel)
	ng, ns := len(c.Groups), len(c.Series)
	if ng > 0 && ns > 0 {
		gw := pw / float64(ng)
		bw := gw * 0.8 / float64(ns)
		for g, name := range c.Groups {
			gx := float64(plotL) + float64(g)*gw + gw*0.1
			s.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+gw*0.4, svgH-plotB+18, esc(name))
			for si := 0; si < ns; si++ {
				if si >= len(c.Values) || g >= len(c.Values[si]) || math.IsNaN(c.Values[si][g]) {
					continue
				}
				v := c.Values[si][g]
				y := ys(v)
				s.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
					gx+float64(si)*bw, y, bw*0.92, float64(plotT)+ph-y, palette[si%len(palette)], esc(c.Series[si]), esc(format(v)))
			}
		}
	}
	s.legend(c.Series)
	s.f("</svg>\n")
	_, err := io.WriteString(w, s.b.String())
	return err
}
