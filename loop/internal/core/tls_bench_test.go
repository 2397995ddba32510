//go:build linux

package core

import (
	"crypto/tls"
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/internal/testcert"
)

// BenchmarkTLSHandshake is the CPU a server spends on one TLS handshake,
// and so the handshakes one core can do per second: the server's side runs
// on a goroutine locked to its thread, whose CPU clock counts only what it
// computes (not the waits for the client, which runs on another goroutine
// and is not counted). The server has an ECDSA P-256 certificate (the test
// certificate); the client offers what Go's and browsers' clients offer
// (X25519MLKEM768 first), or only X25519.
//
//	go test ./loop/internal/core -run '^$' -bench TLSHandshake -benchtime 200x
func BenchmarkTLSHandshake(b *testing.B) {
	for _, bc := range []struct {
		name   string
		curves []tls.CurveID
	}{
		{"default_curves", nil},
		{"X25519", []tls.CurveID{tls.X25519}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			coreCert := testcert.Shared(b)
			srv := coreCert.ServerConfig()
			srv.NextProtos = []string{"http/1.1"}
			cli := coreCert.ClientConfig()
			cli.ServerName = "127.0.0.1"
			cli.CurvePreferences = bc.curves
			var serverCPU int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a, c := net.Pipe()
				done := make(chan int64, 1)
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					err := tls.Server(a, srv).Handshake()
					d := threadCPU() - t0
					if err != nil {
						d = -1
					}
					done <- d
				}()
				if err := tls.Client(c, cli).Handshake(); err != nil {
					b.Fatal(err)
				}
				d := <-done
				if d < 0 {
					b.Fatal("server handshake failed")
				}
				serverCPU += d
				a.Close()
				c.Close()
			}
			b.ReportMetric(float64(serverCPU)/float64(b.N), "server-cpu-ns/op")
			b.ReportMetric(float64(b.N)/(float64(serverCPU)/1e9), "handshakes/s/core")
		})
	}
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
