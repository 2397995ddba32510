package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel's ABI promise,
// independent of CONFIG_HZ).
const clockTicks = 100

// ProcStatus is what the benchmark reads from /proc/PID/status.
type ProcStatus struct {
	RSS     int64 // VmRSS in bytes
	Threads int
}

// ParseStatus reads VmRSS and Threads from the text of /proc/PID/status.
func ParseStatus(text []byte) (ProcStatus, error) {
	var st ProcStatus
	var haveRSS, haveThreads bool
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "VmRSS":
			if len(f) != 2 || f[1] != "kB" {
				return st, fmt.Errorf("VmRSS: unexpected value %q", val)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return st, fmt.Errorf("VmRSS: %w", err)
			}
			st.RSS, haveRSS = kb*1024, true
		case "Threads":
			if len(f) != 1 {
				return st, fmt.Errorf("Threads: unexpected value %q", val)
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return st, fmt.Errorf("Threads: %w", err)
			}
			st.Threads, haveThreads = n, true
		}
	}
	if !haveRSS || !haveThreads {
		return st, fmt.Errorf("status has no VmRSS or Threads line (process gone or a zombie?)")
	}
	return st, nil
}

// ParseCPU returns utime+stime in seconds from the text of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func ParseCPU(text []byte) (float64, error) {
	i := bytes.LastIndexByte(text, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' after the command name")
	}
	f := strings.Fields(string(text[i+1:]))
	// After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime(14) stime(15): indexes 11 and 12 here.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q are not numbers", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// ReadStatus reads /proc/PID/status.
func ReadStatus(pid int) (ProcStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, err
	}
	return ParseStatus(b)
}

// ReadCPU reads the process's user plus system CPU seconds so far.
func ReadCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return ParseCPU(b)
}

// CountTasks counts the entries of /proc/PID/task: the process's threads.
func CountTasks(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// CPUInfo is the part of /proc/cpuinfo the report shows.
type CPUInfo struct {
	Model string
	CPUs  int // logical processors listed
}

// ParseCPUInfo reads the model name and the processor count from the text
// of /proc/cpuinfo.
func ParseCPUInfo(text []byte) CPUInfo {
	var ci CPUInfo
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			ci.CPUs++
		case "model name":
			if ci.Model == "" {
				ci.Model = strings.TrimSpace(val)
			}
		}
	}
	return ci
}
