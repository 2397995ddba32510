package bench

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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

func TestLoadRunArgs(t *testing.T) {
	r := loadRun{Scenario: "broadcast", URL: "ws://127.0.0.1:1/ws/chat?room=bench", Conns: 19000, Rate: 2, Messages: 30,
		Publish: "self", Duration: 20 * time.Second, Drain: 5 * time.Second, PID: 42}
	got := strings.Join(r.args("/tmp/r.json"), " ")
	want := "-scenario broadcast -url ws://127.0.0.1:1/ws/chat?room=bench -conns 19000 -json /tmp/r.json -rate 2 -messages 30 -publish self -duration 20s -drain 5s -server-pid 42"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
	min := loadRun{Scenario: "connect", URL: "ws://h:1/", Conns: 5}
	if got := strings.Join(min.args("f"), " "); got != "-scenario connect -url ws://h:1/ -conns 5 -json f" {
		t.Errorf("zero fields must be left to wsload's defaults: %s", got)
	}
}

func TestTail(t *testing.T) {
	var tl tail
	tl.Write([]byte(strings.Repeat("a", 5000)))
	tl.Write([]byte("end"))
	if s := tl.String(); len(s) != 4096 || !strings.HasSuffix(s, "aend") {
		t.Errorf("tail kept %d bytes ending %q; want the last 4096", len(s), s[len(s)-4:])
	}
}
