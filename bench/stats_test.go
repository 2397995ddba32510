package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	cases := []struct {
		in            []float64
		med, min, max float64
		n             int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{7}, 7, 7, 7, 1},
		{[]float64{5, math.NaN(), 1}, 3, 1, 5, 2},
	}
	for _, c := range cases {
		s := Summarize(c.in)
		if s.Median != c.med || s.Min != c.min || s.Max != c.max || s.N != c.n {
			t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v n %d", c.in, s, c.med, c.min, c.max, c.n)
		}
	}
	if s := Summarize(nil); s.Valid() || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(nil) = %+v, want invalid with NaN median", s)
	}
}

func TestRatios(t *testing.T) {
	got := Ratios([]float64{10, 20, 30, 40}, []float64{5, 0, math.NaN()})
	if got[0] != 2 {
		t.Errorf("ratio[0] = %v, want 2", got[0])
	}
	for i := 1; i < 4; i++ {
		if !math.IsNaN(got[i]) {
			t.Errorf("ratio[%d] = %v, want NaN (zero, NaN or missing base)", i, got[i])
		}
	}
}
