package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docBlock returns the code block between the markers <!-- name: begin ...
// --> and <!-- name: end --> of docs/deploy.md, without its fences.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- "+name+": begin")
	end := strings.Index(doc, "<!-- "+name+": end -->")
	if start < 0 || end < start {
		t.Fatalf("docs/deploy.md has no %s block", name)
	}
	block := doc[start:end]
	block = block[strings.Index(block, "```")+3:]
	block = block[strings.Index(block, "\n")+1:]
	return block[:strings.LastIndex(block, "```")]
}

// unitKeys returns the key=value lines of the unit (comments dropped; a
// key given twice keeps its last value).
func unitKeys(unit string) map[string]string {
	keys := map[string]string{}
	for _, l := range strings.Split(unit, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			keys[k] = v
		}
	}
	return keys
}

// TestDeployUnit checks the systemd unit of docs/deploy.md: its ExecStart
// flags are wsloop's and start a server that stops (as on SIGTERM) within
// TimeoutStopSec; TimeoutStopSec covers -shutdown-timeout plus what the
// server takes beyond it; GOMEMLIMIT parses and is under MemoryMax; and
// systemd-analyze verify finds nothing to say about the unit.
func TestDeployUnit(t *testing.T) {
	unit := docBlock(t, "systemd-unit")
	keys := unitKeys(unit)
	exec0 := strings.Fields(keys["ExecStart"])
	if len(exec0) < 2 || filepath.Base(exec0[0]) != "wsloop" {
		t.Fatalf("ExecStart %q", keys["ExecStart"])
	}
	args := exec0[1:]
	c, err := parseFlags(args, new(strings.Builder))
	if err != nil {
		t.Fatalf("ExecStart flags %q: %v", args, err)
	}
	stop, err := time.ParseDuration(keys["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", keys["TimeoutStopSec"], err)
	}
	// run waits -shutdown-timeout + 5 s for the engine and 1 s for the
	// admin listener at the most.
	if need := c.shutdownTimeout + 6*time.Second; stop < need {
		t.Errorf("TimeoutStopSec %v is shorter than -shutdown-timeout %v + 6 s", stop, c.shutdownTimeout)
	}
	if keys["KillSignal"] != "SIGTERM" || keys["Restart"] != "on-failure" || keys["LimitNOFILE"] == "" {
		t.Errorf("KillSignal %q Restart %q LimitNOFILE %q", keys["KillSignal"], keys["Restart"], keys["LimitNOFILE"])
	}
	m := regexp.MustCompile(`^GOMEMLIMIT=(\d+)(MiB|GiB)$`).FindStringSubmatch(keys["Environment"])
	memMax := regexp.MustCompile(`^(\d+)G$`).FindStringSubmatch(keys["MemoryMax"])
	if m == nil || memMax == nil {
		t.Fatalf("Environment %q MemoryMax %q: want GOMEMLIMIT=NMiB and MemoryMax=NG", keys["Environment"], keys["MemoryMax"])
	}
	limitMiB, _ := strconv.Atoi(m[1]) // digits, by the pattern
	if m[2] == "GiB" {
		limitMiB *= 1024
	}
	if capG, _ := strconv.Atoi(memMax[1]); limitMiB >= capG*1024 {
		t.Errorf("GOMEMLIMIT %s%s is not under MemoryMax %sG", m[1], m[2], memMax[1])
	}

	// The flags start a server, on loopback here, that stops in time.
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-addr" || args[i] == "-admin-addr" {
			args[i+1] = "127.0.0.1:0"
		}
	}
	r := startRun(t, args...)
	adminAddr(t, r)
	begin := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > stop {
		t.Errorf("stopping took %v, TimeoutStopSec is %v", took, stop)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is required in CI (apt-get install -y systemd)")
		}
		t.Skip("systemd-analyze not installed (apt-get install -y systemd); skipped outside CI")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's program to exist: this test's binary stands in.
	unit = strings.Replace(unit, "ExecStart="+exec0[0], "ExecStart="+self, 1)
	path := filepath.Join(t.TempDir(), "wsloop.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDeploySysctl: every setting of the sysctl file in docs/deploy.md
// names a kernel parameter that exists.
func TestDeploySysctl(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux settings")
	}
	n := 0
	for _, l := range strings.Split(docBlock(t, "sysctl"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(v) == "" {
			t.Errorf("line %q: want name = value", l)
			continue
		}
		n++
		p := "/proc/sys/" + strings.ReplaceAll(strings.TrimSpace(k), ".", "/")
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: no such kernel parameter (%v)", strings.TrimSpace(k), err)
		}
	}
	if n < 8 {
		t.Errorf("%d settings; the block lost some", n)
	}
}
