package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	Dirty     bool   `json:"dirty"` // the working tree had uncommitted changes
	MemTotal  string `json:"mem_total"`
}

// LoadAvg returns the first three fields of /proc/loadavg ("1.02 0.87 0.55"),
// or "unknown": other work on the machine skews absolute figures.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ReadMachine gathers the machine's description; what cannot be read is
// "unknown".
func ReadMachine(ctx context.Context, root string) Machine {
	m := Machine{CPUModel: "unknown", Kernel: "unknown", GoVersion: runtime.Version(), Commit: "unknown", MemTotal: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		ci := ParseCPUInfo(b)
		if ci.Model != "" {
			m.CPUModel = ci.Model
		}
		m.CPUs = ci.CPUs
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	run := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if v := run("go", "env", "GOVERSION"); v != "" {
		m.GoVersion = v
	}
	if v := run("git", "rev-parse", "HEAD"); v != "" {
		m.Commit = v
		m.Dirty = run("git", "status", "--porcelain") != ""
	}
	return m
}
