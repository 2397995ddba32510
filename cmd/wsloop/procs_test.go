package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/logbuf"
	"github.com/wsloop/wsloop/internal/natstest"
)

// The tests of this file run the wsloop binary itself, several processes
// of it, with real NATS servers between them.

const procTimeout = 20 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// wsloopBinary builds cmd/wsloop once per test run (into a directory
// removed by TestMain's caller's temp cleanup: the OS temp dir).
func wsloopBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsloop-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "wsloop")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// proc is one wsloop process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	done chan struct{}
	err  error
	addr string
}

func startProc(t *testing.T, startLine string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, logs: new(logbuf.Buffer), done: make(chan struct{})}
	p.cmd = exec.Command(wsloopBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("log of %v:\n%s", args, p.logs)
		}
	})
	line := p.waitLog(startLine)
	m := regexp.MustCompile(` addr=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no addr in %q", line)
	}
	p.addr = m[1]
	return p
}

// waitLog waits for a log line containing s and returns it.
func (p *proc) waitLog(s string) string {
	p.t.Helper()
	deadline := time.Now().Add(procTimeout)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before logging %q:\n%s", p.err, s, p.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("no %q logged within %v:\n%s", s, procTimeout, p.logs)
	return ""
}

// stop sends SIGTERM and wants a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(procTimeout):
		p.t.Errorf("no exit within %v of SIGTERM", procTimeout)
	}
}

// busVars reads the "bus" expvar of the process.
func (p *proc) busVars() (nats struct {
	Connected  bool   `json:"connected"`
	Reconnects uint64 `json:"reconnects"`
	DroppedOut uint64 `json:"dropped_out"`
	Subs       int    `json:"subscriptions"`
}) {
	p.t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	m := regexp.MustCompile(`admin listener" addr=(\S+)`).FindStringSubmatch(p.waitLog("admin listener"))
	if m == nil {
		p.t.Fatal("no admin listener address in the log")
	}
	resp, err := cl.Get("http://" + m[1] + "/debug/vars")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Bus struct {
			NATS json.RawMessage `json:"nats"`
		} `json:"bus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		p.t.Fatal(err)
	}
	if err := json.Unmarshal(v.Bus.NATS, &nats); err != nil {
		p.t.Fatalf("bus.nats %s: %v", v.Bus.NATS, err)
	}
	return nats
}

// member is a chat client; a goroutine files what it reads. A WebSocket
// member says things on its connection, an event-stream member with post
// (sse_test.go).
type member struct {
	name string
	c    *websocket.Conn
	post func(t *testing.T, text string)
	in   chan string
	dead chan struct{}
}

func join(t *testing.T, addr, room, nick string) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/chat?room="+room+"&nick="+nick, nil)
	if err != nil {
		t.Fatalf("join %s as %s: %v", addr, nick, err)
	}
	c.SetReadLimit(1 << 20)
	m := &member{name: nick, c: c, in: make(chan string, 4096), dead: make(chan struct{})}
	go func() {
		defer close(m.dead)
		for {
			_, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if s := string(p); !strings.HasPrefix(s, "* ") { // joins and leaves
				m.in <- s
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return m
}

func (m *member) say(t *testing.T, text string) {
	t.Helper()
	if m.post != nil {
		m.post(t, text)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	if err := m.c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("%s says %q: %v", m.name, text, err)
	}
}

// connected waits until a probe from every sender reaches every member:
// the bus subscriptions of all processes are in place. Probes are dropped
// from the members' queues.
func connected(t *testing.T, senders, members []*member) {
	t.Helper()
	seen := make([]map[string]bool, len(members))
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	deadline := time.Now().Add(procTimeout)
	for k := 0; ; k++ {
		for _, s := range senders {
			s.say(t, "probe")
		}
		time.Sleep(50 * time.Millisecond)
		all := true
		for i, m := range members {
			for drained := false; !drained; {
				select {
				case msg := <-m.in:
					if from, ok := strings.CutSuffix(msg, ": probe"); ok {
						seen[i][from] = true
					} else {
						t.Fatalf("%s read %q while probing", m.name, msg)
					}
				default:
					drained = true
				}
			}
			all = all && len(seen[i]) == len(senders)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d probes, members saw senders %v", k, seen)
		}
	}
	// Probes still on their way arrive now; let them and drop them.
	time.Sleep(200 * time.Millisecond)
	for _, m := range members {
		for drained := false; !drained; {
			select {
			case msg := <-m.in:
				if !strings.HasSuffix(msg, ": probe") {
					t.Fatalf("%s read %q while probing", m.name, msg)
				}
			default:
				drained = true
			}
		}
	}
}

// exchange makes every sender say n numbered messages and checks that
// every member receives each exactly once, each sender's in order, and
// nothing else.
func exchange(t *testing.T, round string, senders, members []*member, n int) {
	t.Helper()
	for _, s := range senders {
		go func() {
			for k := range n {
				s.say(t, fmt.Sprintf("%s-%d", round, k))
			}
		}()
	}
	for _, m := range members {
		next := map[string]int{}
		for got := 0; got < n*len(senders); got++ {
			var msg string
			select {
			case msg = <-m.in:
			case <-time.After(procTimeout):
				t.Fatalf("%s: %d of %d messages of round %s (next per sender %v)", m.name, got, n*len(senders), round, next)
			}
			from, text, _ := strings.Cut(msg, ": ")
			k, err := strconv.Atoi(strings.TrimPrefix(text, round+"-"))
			if err != nil || !strings.HasPrefix(text, round+"-") {
				t.Fatalf("%s: unexpected %q in round %s", m.name, msg, round)
			}
			if k != next[from] {
				t.Fatalf("%s: %s's message %d, want %d (lost, duplicated or reordered)", m.name, from, k, next[from])
			}
			next[from]++
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range members {
		select {
		case msg := <-m.in:
			t.Fatalf("%s: extra message %q after round %s", m.name, msg, round)
		default:
		}
	}
}

func TestRoomsAcrossProcessesEmbeddedNATS(t *testing.T) {
	testRoomsAcrossProcesses(t, natstest.Embedded(t))
}

func TestRoomsAcrossProcessesDebianNATS(t *testing.T) {
	testRoomsAcrossProcesses(t, natstest.Debian(t))
}

// testRoomsAcrossProcesses: three wsloop processes A, B, C on one NATS
// server, two members of one chat room on each. A message said on any of
// them reaches all six members once; killing B leaves A and C talking;
// stopping NATS keeps each process's own members talking, drops (and
// counts) what does not fit the reconnect buffer, hangs nothing; starting
// it again reconnects A and C by themselves and the room spans them again.
func testRoomsAcrossProcesses(t *testing.T, ns natstest.Server) {
	const bufSize = 8 << 10
	args := []string{"-addr", "127.0.0.1:0", "-loops", "1", "-admin-addr", "127.0.0.1:0", "-nats", ns.URL(), "-nats-buffer", strconv.Itoa(bufSize)}
	procs := make([]*proc, 3)
	members := make([][]*member, 3)
	var all, senders []*member
	for i := range procs {
		procs[i] = startProc(t, "wsloop serving", args...)
		for j := range 2 {
			m := join(t, procs[i].addr, "r", fmt.Sprintf("p%dm%d", i, j))
			members[i] = append(members[i], m)
			all = append(all, m)
		}
		senders = append(senders, members[i][0])
	}
	connected(t, senders, all)
	exchange(t, "all", all, all, 5)

	// Kill B: its members are cut off, A and C go on.
	_ = procs[1].cmd.Process.Kill()
	<-procs[1].done
	for _, m := range members[1] {
		select {
		case <-m.dead:
		case <-time.After(procTimeout):
			t.Fatalf("%s still connected to the killed process", m.name)
		}
	}
	ac := append(append([]*member(nil), members[0]...), members[2]...)
	exchange(t, "after-kill", []*member{members[0][0], members[2][1]}, ac, 5)

	// NATS goes away.
	ns.Stop()
	for _, i := range []int{0, 2} {
		deadline := time.Now().Add(procTimeout)
		for procs[i].busVars().Connected {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still connected to a stopped NATS", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Each process's own members still hear each other; A publishes far
	// more than its 8 KiB reconnect buffer holds.
	big := strings.Repeat("x", 1000)
	for k := range 40 {
		members[0][0].say(t, fmt.Sprintf("down-%d %s", k, big))
	}
	for k := range 40 {
		select {
		case msg := <-members[0][1].in:
			if want := fmt.Sprintf("p0m0: down-%d %s", k, big); msg != want {
				t.Fatalf("A's member read %.40q during the outage, want %.40q", msg, want)
			}
		case <-time.After(procTimeout):
			t.Fatalf("A's members stopped hearing each other during the NATS outage (after %d)", k)
		}
	}
	exchange(t, "down-c", []*member{members[2][0]}, members[2], 3)
	deadline := time.Now().Add(procTimeout)
	for procs[0].busVars().DroppedOut == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A dropped nothing after 40 KB of publishes with an %d-byte buffer: %+v", bufSize, procs[0].busVars())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// NATS comes back: A and C reconnect on their own.
	ns.Start()
	for _, i := range []int{0, 2} {
		deadline := time.Now().Add(2 * procTimeout)
		for v := procs[i].busVars(); !v.Connected || v.Reconnects == 0; v = procs[i].busVars() {
			if time.Now().After(deadline) {
				t.Fatalf("process %d did not reconnect: %+v", i, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// What A buffered may reach C now, at most once and in order; then
	// the room spans A and C again.
	drainOutage(t, ac)
	connected(t, []*member{members[0][0], members[2][0]}, ac)
	exchange(t, "recovered", ac, ac, 3)
	t.Logf("A's bus after the outage: %+v", procs[0].busVars())

	procs[0].stop()
	procs[2].stop()
}

// drainOutage takes what arrives late from the publishes made during the
// outage (A's down-K, C's down-c-K, kept in their reconnect buffers):
// each at most once, each sender's in order.
func drainOutage(t *testing.T, ms []*member) {
	t.Helper()
	for _, m := range ms {
		last := map[string]int{}
		for {
			var msg string
			select {
			case msg = <-m.in:
			case <-time.After(300 * time.Millisecond):
			}
			if msg == "" {
				break
			}
			if strings.HasSuffix(msg, ": probe") {
				continue
			}
			from, text, _ := strings.Cut(msg, ": ")
			num, ok := strings.CutPrefix(text, "down-")
			num, _ = strings.CutPrefix(num, "c-")
			num, _, _ = strings.Cut(num, " ")
			k, err := strconv.Atoi(num)
			if !ok || err != nil {
				t.Fatalf("%s: unexpected %.60q after the outage", m.name, msg)
			}
			if prev, seen := last[from]; seen && k <= prev {
				t.Fatalf("%s: %s's outage message %d after %d", m.name, from, k, prev)
			}
			last[from] = k
		}
	}
}

// TestProcsSupervisor: wsloop -procs 3 starts three workers on one port
// with an embedded NATS server: the start line sums their capacity, a chat
// room spans them, a killed worker is restarted, the others go on, and
// SIGTERM stops everything cleanly.
func TestProcsSupervisor(t *testing.T) {
	sup := startProc(t, "wsloop supervisor serving", "-procs", "3", "-addr", "127.0.0.1:0", "-loops", "1")
	line := sup.waitLog("wsloop supervisor serving")
	capm := regexp.MustCompile(` capacity=(\d+)`).FindStringSubmatch(line)
	pidm := regexp.MustCompile(` pids="?\[([0-9 ]+)\]`).FindStringSubmatch(line)
	if capm == nil || pidm == nil {
		t.Fatalf("start line %q", line)
	}
	var workerCap int
	for _, l := range strings.Split(sup.logs.String(), "\n") {
		if strings.Contains(l, "msg=\"wsloop serving\"") {
			if m := regexp.MustCompile(` capacity=(\d+)`).FindStringSubmatch(l); m != nil {
				workerCap, _ = strconv.Atoi(m[1])
			}
		}
	}
	if total, _ := strconv.Atoi(capm[1]); workerCap == 0 || total != 3*workerCap {
		t.Errorf("supervisor capacity %s, want 3 x %d", capm[1], workerCap)
	}
	pids := strings.Fields(pidm[1])
	if len(pids) != 3 {
		t.Fatalf("pids %q", pids)
	}

	// Twelve members over the shared port: the kernel spreads them.
	var ms []*member
	for i := range 12 {
		ms = append(ms, join(t, sup.addr, "lobby", fmt.Sprintf("u%d", i)))
	}
	connected(t, ms, ms)
	exchange(t, "procs", ms, ms, 2)

	victim, _ := strconv.Atoi(pids[1])
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sup.waitLog("worker died; restarting")
	ready := sup.waitLog("supervisor: worker ready")
	if !strings.Contains(ready, "worker=1") || strings.Contains(ready, "pid="+pids[1]+" ") {
		t.Errorf("restart line %q after killing worker 1 (pid %s)", ready, pids[1])
	}
	var alive []*member
	for _, m := range ms {
		select {
		case <-m.dead:
		case <-time.After(500 * time.Millisecond):
			alive = append(alive, m)
		}
	}
	if len(alive) == 0 {
		t.Fatal("every member was on the killed worker")
	}
	t.Logf("%d of %d members survived the kill", len(alive), len(ms))
	// Newcomers may land on the restarted worker; the room spans it too.
	for i := range 3 {
		alive = append(alive, join(t, sup.addr, "lobby", fmt.Sprintf("n%d", i)))
	}
	connected(t, alive, alive)
	exchange(t, "after-restart", alive, alive, 2)

	sup.stop()
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if pid != victim && syscall.Kill(pid, 0) == nil {
			t.Errorf("worker pid %d still runs after the supervisor stopped", pid)
		}
	}
}
