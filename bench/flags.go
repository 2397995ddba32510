package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseSizes parses a comma-separated list of ascending connection counts.
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes: %q is not a positive number", f)
		}
		if n > 19800 {
			return nil, fmt.Errorf("-sizes: %d connections exceed what one server process can hold (about 19,900 open files, hard limit)", n)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-sizes %q: want ascending counts", s)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-sizes %q: no size", s)
	}
	return out, nil
}

// ParseScenarios parses a comma-separated subset of AllScenarios and
// returns it in the order of AllScenarios.
func ParseScenarios(s string) ([]string, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			want[f] = true
		}
	}
	var out []string
	for _, sc := range AllScenarios {
		if want[sc] {
			out = append(out, sc)
			delete(want, sc)
		}
	}
	for f := range want {
		return nil, fmt.Errorf("-scenarios: unknown scenario %q; known: %s", f, strings.Join(AllScenarios, ","))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-scenarios %q: no scenario", s)
	}
	return out, nil
}

// DefaultPaths chooses the page and charts locations: the full run writes
// BENCHMARKS.md and bench/charts/ in the repository; a quick run writes to
// a new temporary directory unless told otherwise, so that it never
// replaces the published page. An explicit charts dir wins; otherwise a
// page outside the repository root gets its charts beside it.
func DefaultPaths(root, out, charts string, quick bool) (string, string, error) {
	if out == "" {
		if quick {
			dir, err := os.MkdirTemp("", "wsbench-quick-")
			if err != nil {
				return "", "", err
			}
			out = filepath.Join(dir, "BENCHMARKS.md")
		} else {
			out = filepath.Join(root, "BENCHMARKS.md")
		}
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return "", "", err
	}
	if charts == "" {
		if out == filepath.Join(root, "BENCHMARKS.md") {
			charts = filepath.Join(root, "bench", "charts")
		} else {
			charts = filepath.Join(filepath.Dir(out), strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))+"-charts")
		}
	}
	charts, err = filepath.Abs(charts)
	return out, charts, err
}
