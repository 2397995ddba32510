package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Table is a Markdown table. The first column is left-aligned, the others
// (figures) right-aligned.
type Table struct {
	Header []string
	Rows   [][]string
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Render writes the table in GitHub-flavoured Markdown. Rows shorter than
// the header are padded with empty cells; '|' and newlines in cells are
// escaped so that a cell never breaks the table.
func (t *Table) Render(w io.Writer) error {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for i := range t.Header {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			c = strings.ReplaceAll(c, "|", `\|`)
			c = strings.ReplaceAll(c, "\n", " ")
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	b.WriteString("|")
	for i := range t.Header {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		row(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatSummary renders a summary as "median (min–max)" with f formatting
// each number; a single measurement is just its value, none is "n/a".
func FormatSummary(s Summary, f func(float64) string) string {
	if !s.Valid() {
		return "n/a"
	}
	if s.N == 1 || s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}

// FormatBytes renders a byte count with decimal units, as the project's
// documents do: 512 B, 1.5 KB, 3.2 MB.
func FormatBytes(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "n/a"
	case a < 1e3:
		return fmt.Sprintf("%.0f B", v)
	case a < 1e6:
		return trimFloat(v/1e3, 3) + " KB"
	case a < 1e9:
		return trimFloat(v/1e6, 3) + " MB"
	}
	return trimFloat(v/1e9, 3) + " GB"
}

// FormatCount renders a count or rate with three significant figures and a
// k or M suffix: 950, 12.3k, 1.25M.
func FormatCount(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "n/a"
	case a < 1000:
		return trimFloat(v, 3)
	case a < 1e6:
		return trimFloat(v/1e3, 3) + "k"
	}
	return trimFloat(v/1e6, 3) + "M"
}

// FormatRatio renders a ratio such as 0.012x or 1.35x.
func FormatRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return trimFloat(v, 3) + "x"
}

// FormatDuration renders seconds as µs or ms with three significant figures.
func FormatDuration(sec float64) string {
	switch {
	case math.IsNaN(sec):
		return "n/a"
	case sec < 1e-3:
		return trimFloat(sec*1e6, 3) + " µs"
	case sec < 1:
		return trimFloat(sec*1e3, 3) + " ms"
	}
	return trimFloat(sec, 3) + " s"
}

// trimFloat formats v with at most sig significant figures, no exponent and
// no trailing zeros after the decimal point.
func trimFloat(v float64, sig int) string {
	if v == 0 {
		return "0"
	}
	digits := sig - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	if digits <= 0 {
		return fmt.Sprintf("%.0f", v)
	}
	s := fmt.Sprintf("%.*f", digits, v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
