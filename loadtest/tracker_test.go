package loadtest

import "testing"

func TestTracker(t *testing.T) {
	tr := newTracker(3, 2, 100)
	for _, c := range []struct {
		sub, pub int
		seq      uint64
		want     int
	}{
		{0, 0, 0, vNew}, {0, 0, 1, vNew}, {0, 0, 1, vAgain}, {0, 0, 5, vNew},
		{0, 0, 3, vLate}, {0, 0, 3, vAgain}, {0, 1, 0, vNew}, {0, 1, 99, vNew},
		{0, 1, 100, vRange}, {1, 0, 1, vNew}, {2, 1, 64, vNew}, {2, 1, 63, vLate},
		{3, 0, 0, vRange}, {0, 2, 0, vRange},
	} {
		if got := tr.record(c.sub, c.pub, c.seq); got != c.want {
			t.Errorf("record(%d, %d, %d) = %d, want %d", c.sub, c.pub, c.seq, got, c.want)
		}
	}
	if !tr.warm(1, 1) || tr.warm(1, 1) || !tr.warm(1, 0) {
		t.Error("warm: want true once per (subscriber, publisher)")
	}
	if got := tr.record(1, 1, 7); got != vNew { // the probe bit is not a seq
		t.Errorf("after warm-up: %d", got)
	}
}
