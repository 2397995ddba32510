package bench

import (
	"math"
	"slices"
)

// Summary is the median and spread of repeated measurements.
type Summary struct {
	Median, Min, Max float64
	N                int // measurements summarized; 0 means none
}

// Summarize returns the median, minimum and maximum of xs, ignoring NaNs.
// The median of an even count is the mean of the two middle values.
func Summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[n-1], N: n}
}

// Valid reports whether s summarizes at least one measurement.
func (s Summary) Valid() bool { return s.N > 0 }

// Ratios divides each x by the base measured in the same repetition
// (xs[i] / base[i]); a pair with a missing side or a zero base gives NaN.
func Ratios(xs, base []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.NaN()
		if i < len(base) && base[i] != 0 && !math.IsNaN(base[i]) && !math.IsNaN(x) {
			out[i] = x / base[i]
		}
	}
	return out
}
