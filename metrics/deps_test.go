package metrics

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLoopLinksNoMetrics: a program that uses only loop and session (and
// gives no Observer) links neither this package nor any metrics library.
func TestLoopLinksNoMetrics(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/wsloop/wsloop/loop", "github.com/wsloop/wsloop/session").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/wsloop/wsloop/metrics" || strings.Contains(dep, "VictoriaMetrics") || strings.Contains(dep, "prometheus") {
			t.Errorf("loop or session depends on %s", dep)
		}
	}
}
