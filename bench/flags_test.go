package bench

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("5000, 10000,19000")
	if err != nil || !slices.Equal(got, []int{5000, 10000, 19000}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "10,5", "0", "x", "25000"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q): want an error", bad)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := ParseScenarios("echo,idle")
	if err != nil || !slices.Equal(got, []string{"idle", "echo"}) {
		t.Errorf("got %v, %v; want idle, echo in run order", got, err)
	}
	if _, err := ParseScenarios("idle,churn"); err == nil {
		t.Error("unknown scenario: want an error")
	}
}

func TestDefaultPaths(t *testing.T) {
	root := "/repo"
	out, charts, err := DefaultPaths(root, "", "", false)
	if err != nil || out != "/repo/BENCHMARKS.md" || charts != "/repo/bench/charts" {
		t.Errorf("full: %q %q %v", out, charts, err)
	}
	out, charts, err = DefaultPaths(root, "/tmp/x/quick.md", "", true)
	if err != nil || out != "/tmp/x/quick.md" || charts != "/tmp/x/quick-charts" {
		t.Errorf("quick with -out: %q %q %v", out, charts, err)
	}
	out, _, err = DefaultPaths(root, "", "", true)
	if err != nil || filepath.Base(out) != "BENCHMARKS.md" || filepath.Dir(out) == root {
		t.Errorf("quick default: %q %v; want a temporary directory", out, err)
	}
}
