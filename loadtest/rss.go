package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// readRSS returns the resident set size of process pid (VmRSS in
// /proc/PID/status), in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the RSS of process %d: %w", pid, err)
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("process %d: no VmRSS line in /proc/%d/status", pid, pid)
}

// serverRSS is the RSS of the server: process pid and its children (the
// workers of a wsloop -procs supervisor), summed.
func serverRSS(pid int) (int64, error) {
	var sum int64
	for _, p := range withChildren(pid) {
		n, err := readRSS(p)
		if err != nil && p == pid {
			return 0, err
		}
		sum += n // a child that has just exited counts nothing
	}
	return sum, nil
}

// withChildren returns pid and its children, from /proc/PID/task/*/children.
func withChildren(pid int) []int {
	out := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// settledRSS samples the server's RSS every 500 ms until two samples in a
// row are within 64 KiB of each other (the server has finished digesting
// the traffic) or max has passed, and returns the last sample.
func settledRSS(ctx context.Context, pid int, max time.Duration) (int64, error) {
	last, err := serverRSS(pid)
	if err != nil {
		return 0, err
	}
	end := time.Now().Add(max)
	stable := 0
	for time.Now().Before(end) && ctx.Err() == nil && stable < 2 {
		sleepCtx(ctx, 500*time.Millisecond)
		cur, err := serverRSS(pid)
		if err != nil {
			return 0, err
		}
		if d := cur - last; d < 64<<10 && d > -64<<10 {
			stable++
		} else {
			stable = 0
		}
		last = cur
	}
	return last, nil
}
