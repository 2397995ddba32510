//go:build linux || darwin || freebsd

// Package browsertest loads pages in headless Chromium for tests: a page
// reports its verdict by fetching a URL of the test's server, which the
// test reads from a channel.
package browsertest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Path is where the tests expect Chromium (Debian: apt-get install -y chromium).
const Path = "/usr/bin/chromium"

// flags are the flags of every headless run (the user-data-dir is added per run).
var flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// Require skips the test when Chromium is missing, except in CI (CI=true),
// where that is a failure.
func Require(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI (apt-get install -y chromium): %v", err)
		}
		t.Skipf("%s not installed (apt-get install -y chromium); skipped outside CI", Path)
	}
}

// Reports returns a handler that passes the "result" query parameter of the
// first request it gets to the channel (later ones are dropped) and answers
// 204: a page reports with fetch(path + "?result=" + verdict), in the query
// because wsloop's HTTP side reads no request bodies.
func Reports() (http.Handler, <-chan string) {
	ch := make(chan string, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ch <- r.URL.Query().Get("result"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}), ch
}

// Run loads url in headless Chromium and returns the first report, failing
// the test when Chromium exits first or nothing comes within timeout.
// Chromium and its helper processes are gone when it returns. (--dump-dom
// cannot replace this: it snapshots the page on load, before any WebSocket
// traffic.) An https url is loaded with --ignore-certificate-errors: tests
// serve throwaway certificates.
func Run(t *testing.T, url string, reports <-chan string, timeout time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	// Chromium's output goes to a file, shown when something goes wrong.
	out, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	args := append([]string{}, flags...)
	if strings.HasPrefix(url, "https://") {
		args = append(args, "--ignore-certificate-errors")
	}
	args = append(args, "--user-data-dir="+filepath.Join(dir, "profile"), url)
	cmd := exec.Command(Path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group, so that the renderer and helpers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stop(cmd, exited)
	select {
	case got := <-reports:
		return got
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited before reporting: %v\n%s", err, tail(out.Name()))
	case <-time.After(timeout):
		t.Fatalf("no report within %v\n%s", timeout, tail(out.Name()))
	}
	return ""
}

// stop asks Chromium to quit, kills its process group if it lingers, and
// waits, so that the user-data-dir can be removed.
func stop(cmd *exec.Cmd, exited chan error) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Helpers may outlive the browser process by a moment.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the end of file name.
func tail(name string) string {
	b, _ := os.ReadFile(name)
	if len(b) > 3000 {
		b = append([]byte("..."), b[len(b)-3000:]...)
	}
	return strings.TrimSpace(string(b))
}
