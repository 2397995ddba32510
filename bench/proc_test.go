package bench

import (
	"os"
	"testing"
)

const sampleStatus = `Name:	wsloop
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4242
VmPeak:	 1284160 kB
VmSize:	 1284160 kB
VmHWM:	   12345 kB
VmRSS:	   10240 kB
RssAnon:	    6000 kB
Threads:	7
SigQ:	0/95468
`

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus([]byte(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS != 10240*1024 || st.Threads != 7 {
		t.Errorf("got %+v, want RSS %d Threads 7", st, 10240*1024)
	}
	if _, err := ParseStatus([]byte("Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n")); err == nil {
		t.Error("status without VmRSS: want an error")
	}
	if _, err := ParseStatus([]byte("VmRSS:\t12 MB\nThreads:\t1\n")); err == nil {
		t.Error("VmRSS in an unknown unit: want an error")
	}
}

func TestParseCPU(t *testing.T) {
	// The command name holds a space and a ')' to prove fields are counted from the last ')'.
	text := "4242 (ws load) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 7 0 100 1000000 2500 18446744073709551615\n"
	got, err := ParseCPU([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.75 {
		t.Errorf("ParseCPU = %v, want 3.75 (375 ticks)", got)
	}
	if _, err := ParseCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat: want an error")
	}
}

func TestParseCPUInfo(t *testing.T) {
	text := "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n"
	ci := ParseCPUInfo([]byte(text))
	if ci.CPUs != 2 || ci.Model != "Intel(R) Xeon(R) Processor" {
		t.Errorf("got %+v", ci)
	}
}

func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	st, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.Threads < 1 {
		t.Errorf("own status %+v: want positive RSS and threads", st)
	}
	n, err := CountTasks(pid)
	if err != nil || n < 1 {
		t.Errorf("CountTasks = %d, %v", n, err)
	}
	if _, err := ReadCPU(pid); err != nil {
		t.Error(err)
	}
}
