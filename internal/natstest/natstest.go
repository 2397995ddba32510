// Package natstest starts NATS servers for tests: the embedded one (package
// bus/natsserver) and Debian's nats-server program, both restartable on the
// same port to test bus outages.
package natstest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/wsloop/wsloop/bus/natsserver"
)

// Server is a NATS server a test can stop and start again on its port.
type Server interface {
	URL() string
	Stop()  // stops it and waits until it is down
	Start() // starts it again on the same port
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Embedded starts an embedded server on a free loopback port; the test's
// cleanup stops it.
func Embedded(t testing.TB) Server {
	t.Helper()
	e := &embedded{t: t, addr: "127.0.0.1:" + strconv.Itoa(FreePort(t))}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

type embedded struct {
	t    testing.TB
	addr string
	s    *natsserver.Server
}

func (e *embedded) URL() string { return "nats://" + e.addr }

func (e *embedded) Start() {
	e.t.Helper()
	var err error
	for range 50 { // the port may linger for a moment after a stop
		if e.s, err = natsserver.Start(natsserver.Options{Addr: e.addr}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("embedded NATS on %s: %v", e.addr, err)
}

func (e *embedded) Stop() {
	if e.s != nil {
		e.s.Close()
		e.s = nil
	}
}

// DebianPath is where Debian's nats-server package installs the server.
const DebianPath = "/usr/sbin/nats-server"

// Debian starts Debian's nats-server on a free loopback port. Without it
// the test is skipped, except under CI=true, where that is a failure
// (.ci/run installs it).
func Debian(t testing.TB) Server {
	t.Helper()
	path, err := exec.LookPath("nats-server")
	if err != nil {
		path = DebianPath
		if _, err := os.Stat(path); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nats-server is not installed (apt-get install nats-server); CI needs it")
			}
			t.Skip("nats-server is not installed (apt-get install nats-server)")
		}
	}
	d := &debian{t: t, path: path, port: FreePort(t)}
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// debian is a server in a child process: Debian's nats-server, or this
// test binary with env set to its address.
type debian struct {
	t    testing.TB
	path string
	env  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (d *debian) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", d.port) }

func (d *debian) Start() {
	d.t.Helper()
	cmd := exec.Command(d.path, "-a", "127.0.0.1", "-p", strconv.Itoa(d.port), "--no_advertise")
	if d.env != "" {
		cmd = exec.Command(d.path)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=127.0.0.1:%d", d.env, d.port))
		if _, err := cmd.StdinPipe(); err != nil { // closed when the parent exits
			d.t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("starting %s: %v", d.path, err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(d.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-d.done:
			d.t.Fatalf("%s exited at start (port %d taken?)", d.path, d.port)
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.Stop()
	d.t.Fatalf("%s not listening on port %d within 10s", d.path, d.port)
}

func (d *debian) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// childEnv names the address a test binary re-executed by Child serves
// NATS on.
const childEnv = "NATSTEST_CHILD_ADDR"

// MaybeChild makes this process the NATS server Child asked for, and never
// returns, when it was started as one; call it first in TestMain.
func MaybeChild() {
	addr := os.Getenv(childEnv)
	if addr == "" {
		return
	}
	if _, err := natsserver.Start(natsserver.Options{Addr: addr}); err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		os.Exit(1)
	}
	// The parent going away (stdin closed) ends the child.
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// Child runs the embedded server in a child process (this test binary
// again; its TestMain calls MaybeChild), so that what a test measures in
// its own process (allocations) is not the server's.
func Child(t testing.TB) Server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &debian{t: t, path: exe, port: FreePort(t), env: childEnv}
	d.Start()
	t.Cleanup(d.Stop)
	return d
}
