package loop_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/loop"
)

// The TLS layer's own behaviour on every engine (the whole suite also runs
// over TLS: see engines in integration_test.go).

// forEachBaseEngine runs fn on each engine with TLS on (fn gets the
// "+tls" entry).
func forEachBaseEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, e := range baseEngines {
		t.Run(e, func(t *testing.T) { fn(t, e+"+tls") })
	}
}

// TestIntegrationTLS: wss and https on one port; ALPN http/1.1; TLS 1.2
// and 1.3 served, older versions refused (and counted); HTTP handlers see
// the connection's TLS state; a clean close ends with close_notify.
func TestIntegrationTLS(t *testing.T) {
	forEachBaseEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.TLS == nil {
					http.Error(w, "no TLS state", 500)
					return
				}
				fmt.Fprintf(w, "tls %x alpn %q", r.TLS.Version, r.TLS.NegotiatedProtocol)
			})
		})
		c := ts.dialWS("/", nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		for _, n := range []int{0, 125, 16 << 10, 70000, 1 << 20} {
			want := payload(n, false, n)
			if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("wss echo of %d bytes: %v", n, err)
			}
			if d := equalOrDescribe(got, want); d != "" {
				t.Fatalf("wss echo of %d bytes: %s", n, d)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, "tls done"); err != nil {
			t.Errorf("close over TLS: %v", err)
		}
		if ev := ts.rec.firstClose(t); ev.code != 1000 || ev.reason != "tls done" {
			t.Errorf("OnClose(%d, %q, %v) over TLS", ev.code, ev.reason, ev.err)
		}

		// https on the same port, as a browser offers ALPN.
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cfg := ts.tls.Clone()
			cfg.NextProtos = []string{"h2", "http/1.1"}
			cfg.MinVersion, cfg.MaxVersion = v, v
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}
			resp, err := (&http.Client{Transport: tr, Timeout: waitTimeout}).Get("https://" + ts.addr + "/info")
			if err != nil {
				t.Fatalf("GET https (TLS %x): %v", v, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			if want := fmt.Sprintf("tls %x alpn %q", v, "http/1.1"); resp.StatusCode != 200 || string(body) != want {
				t.Errorf("GET https (TLS %x): %d %q, want 200 %q", v, resp.StatusCode, body, want)
			}
		}

		// TLS 1.1 is refused.
		old := ts.tls.Clone()
		old.MinVersion, old.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
		before := ts.stats.TLSHandshakeErrors.Load()
		if tc, err := tls.Dial("tcp", ts.addr, withName(old, ts)); err == nil {
			tc.Close()
			t.Error("a TLS 1.1 client was served")
		}
		waitFor(t, "the refused handshake counted", func() bool { return ts.stats.TLSHandshakeErrors.Load() == before+1 })

		// A clean close: the close handshake, then close_notify, then FIN.
		rc := ts.openRaw()
		rc.write(clientFrame(true, opClose, closeBody(1000, "")))
		if f := rc.mustFrame(); f.op != opClose {
			t.Fatalf("got op %d, want the close reply", f.op)
		}
		rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
		if n, err := rc.br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after the close reply: %d bytes, %v; want io.EOF from close_notify", n, err)
		}
		if n := ts.stats.TLSHandshakes.Load(); n < 4 {
			t.Errorf("TLSHandshakes %d, want at least 4", n)
		}
		ts.finish()
	})
}

// echoText sends msg on c and returns the message that comes back.
func echoText(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

func withName(cfg *tls.Config, ts *testServer) *tls.Config {
	c := cfg.Clone()
	c.ServerName, _, _ = net.SplitHostPort(ts.addr)
	return c
}

// A peer that sends something else than a ClientHello is cut at once;
// plain HTTP gets a plain-text 400; a peer that says nothing, stops in its
// ClientHello, or stalls after it, is cut at the handshake deadline. Each
// is counted; a good client meanwhile is served.
func TestIntegrationTLSGarbageAndStalls(t *testing.T) {
	const deadline = 400 * time.Millisecond
	forEachBaseEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.Session.HandshakeTimeout = deadline })
		dial := func() *net.TCPConn {
			c, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			tc := c.(*net.TCPConn)
			ts.addCloser(func() { tc.Close() })
			return tc
		}
		// cut reads until the server closes c and says how long it took
		// and what it sent.
		cut := func(c *net.TCPConn, start time.Time) (time.Duration, string) {
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			b, err := io.ReadAll(c)
			if err != nil && !isClosedErr(err) {
				t.Fatalf("waiting for the server to cut: %v", err)
			}
			return time.Since(start), string(b)
		}

		start := time.Now()
		garbage := dial()
		garbage.Write([]byte("\x00\x01\x02\x03 this is not TLS at all"))
		if took, got := cut(garbage, start); took > deadline/2 || got != "" {
			t.Errorf("garbage: cut after %v with %q; want at once, with nothing", took, got)
		}
		start = time.Now()
		plain := dial()
		plain.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		if took, got := cut(plain, start); took > deadline/2 || !strings.HasPrefix(got, "HTTP/1.0 400 Bad Request\r\n") ||
			!strings.Contains(got, "HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP: cut after %v with %q; want a plain 400 at once", took, got)
		}

		start = time.Now()
		silent := dial()
		partial := dial()
		partial.Write(clientHello(t, ts)[:40])
		stalled := dial()
		stalled.Write(clientHello(t, ts))

		// A good client is served meanwhile.
		good := ts.dialWS("/", nil)
		if p := echoText(t, good, "served"); p != "served" {
			t.Fatalf("a good client beside the stalled ones: %q", p)
		}

		for name, c := range map[string]*net.TCPConn{"silent": silent, "partial ClientHello": partial, "stalled after the ClientHello": stalled} {
			took, got := cut(c, start)
			if took < deadline*3/4 || took > deadline+2*time.Second {
				t.Errorf("%s: cut after %v, handshake deadline %v", name, took, deadline)
			}
			if name != "stalled after the ClientHello" && got != "" {
				t.Errorf("%s: the server sent %q", name, got)
			}
			if name == "stalled after the ClientHello" && (len(got) < 5 || got[0] != 22) {
				t.Errorf("%s: the server's first flight was %q", name, got)
			}
		}
		waitFor(t, "the cuts counted", func() bool {
			return ts.stats.TLSHandshakeErrors.Load() == 2 && ts.stats.TLSHandshakeTimeouts.Load() == 3
		})
		if n := ts.rec.opened(); n != 1 {
			t.Errorf("%d connections opened, want only the good one", n)
		}
		good.Close(websocket.StatusNormalClosure, "")
		ts.finish()
	})
}

// clientHello is a real client's first flight to ts (its handshake is then
// abandoned).
func clientHello(t *testing.T, ts *testServer) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _ = tls.Client(a, withName(ts.tls, ts)).Handshake() }()
	b.SetReadDeadline(time.Now().Add(waitTimeout))
	r := bufio.NewReader(b)
	head := make([]byte, 5)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(head[3])<<8|int(head[4]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return append(head, body...)
}

// A flood of 1,000 concurrent TLS handshakes does not stop the established
// connections on the same loops: each keeps echoing throughout (asserted),
// and their latency during the flood is logged (not asserted: a shared
// machine's figure).
func TestIntegrationTLSHandshakeFlood(t *testing.T) {
	const (
		flood       = 1000
		established = 10
	)
	forEachBaseEngine(t, func(t *testing.T, engine string) {
		// The handshakes of a flood wait for the CPU: give them time (the
		// race detector makes each one about ten times as costly), so that
		// none is cut at its deadline; this test is about the others.
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.Session.HandshakeTimeout = 2 * time.Minute })
		conns := make([]*websocket.Conn, established)
		for i := range conns {
			conns[i] = ts.dialWS("/", nil)
		}
		var (
			mu      sync.Mutex
			lat     []time.Duration // during the flood
			before  []time.Duration
			phase   atomic.Int32 // 0 before the flood, 1 during, 2 after
			perConn = make([]atomic.Int64, established)
			errs    = make(chan error, established)
			stop    = make(chan struct{})
			wg      sync.WaitGroup
		)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte(fmt.Sprintf("established %d", i))
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
					t0 := time.Now()
					err := c.Write(ctx, websocket.MessageText, msg)
					var p []byte
					if err == nil {
						_, p, err = c.Read(ctx)
					}
					cancel()
					if err == nil && string(p) != string(msg) {
						err = fmt.Errorf("echo %q, want %q", p, msg)
					}
					if err != nil {
						errs <- fmt.Errorf("established connection %d: %v", i, err)
						return
					}
					d := time.Since(t0)
					switch phase.Load() {
					case 0:
						mu.Lock()
						before = append(before, d)
						mu.Unlock()
					case 1:
						perConn[i].Add(1)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
		time.Sleep(100 * time.Millisecond)

		// The flood, from a client process of its own on one CPU, so that
		// the clients' share of the handshakes' work does not run on this
		// process's threads: every client starts its handshake at once and
		// holds its connection until all are done.
		cl := exec.Command(os.Args[0], "-test.run=^TestTLSFloodClient$", "-test.v")
		cl.Env = append(os.Environ(), "GOMAXPROCS=1", "WSLOOP_FLOOD_ADDR="+ts.addr, fmt.Sprintf("WSLOOP_FLOOD_N=%d", flood))
		stdin, _ := cl.StdinPipe()
		stdout, _ := cl.StdoutPipe()
		cl.Stderr = os.Stderr
		if err := cl.Start(); err != nil {
			t.Fatal(err)
		}
		defer cl.Process.Kill()
		sc := bufio.NewScanner(stdout)
		result := make(chan string, 1)
		go func() {
			for sc.Scan() {
				if r, ok := strings.CutPrefix(sc.Text(), "FLOOD "); ok {
					result <- r
					break
				}
			}
			close(result)
			_, _ = io.Copy(io.Discard, stdout)
		}()
		phase.Store(1)
		start, cpu0 := time.Now(), processCPU()
		fmt.Fprintln(stdin, "go")
		var res string
		select {
		case res = <-result:
		case <-time.After(2 * time.Minute):
			t.Errorf("flood: no result after 2m (%d handshakes done)", ts.stats.TLSHandshakes.Load())
		}
		floodTook, floodCPU := time.Since(start), processCPU()-cpu0
		phase.Store(2)
		stdin.Close()
		_ = cl.Wait()
		close(stop)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		if res != fmt.Sprintf("ok %d failed 0", flood) {
			t.Fatalf("flood client: %q, want all %d handshakes done", res, flood)
		}
		for i := range perConn {
			if perConn[i].Load() == 0 {
				t.Errorf("established connection %d echoed nothing during the flood", i)
			}
		}
		t.Logf("%s: %d concurrent TLS handshakes in %v (%.0f/s; the clients on one CPU of the same machine; server process CPU %v, %.0f handshakes per CPU-second); %d established connections echoed %d times meanwhile: p50 %v p99 %v max %v (before the flood: p50 %v p99 %v); waits for a place: %d",
			engine, flood, floodTook.Round(time.Millisecond), float64(flood)/floodTook.Seconds(), floodCPU.Round(time.Millisecond), float64(flood)/floodCPU.Seconds(), established, len(lat),
			pct(lat, 50), pct(lat, 99), pct(lat, 100), pct(before, 50), pct(before, 99), ts.stats.TLSHandshakeWaits.Load())
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
		ts.finish()
	})
}

// processCPU is the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pct is the p-th percentile of ds (100: the largest).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(10 * time.Microsecond)
}

// Past MaxTLSHandshakes a new TLS connection waits for a place (counted), and
// is served once one frees: here when the two peers holding both places,
// stalled after their ClientHello, hang up.
func TestIntegrationTLSMaxHandshakes(t *testing.T) {
	const hold = 300 * time.Millisecond
	forEachBaseEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.MaxTLSHandshakes = 2 })
		hello := clientHello(t, ts)
		var holders []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			ts.addCloser(func() { c.Close() })
			c.Write(hello) // then nothing: each holds a place
			holders = append(holders, c)
		}
		waitFor(t, "both places taken", func() bool { r, _ := ts.srv.TLSHandshakes(); return r == 2 })
		start := time.Now()
		time.AfterFunc(hold, func() {
			for _, c := range holders {
				c.Close()
			}
		})
		c := ts.dialWS("/", nil)
		if waited := time.Since(start); waited < hold*3/4 {
			t.Errorf("served after %v, while both places were held for %v", waited, hold)
		}
		if n := ts.stats.TLSHandshakeWaits.Load(); n != 1 {
			t.Errorf("TLSHandshakeWaits %d, want 1", n)
		}
		if p := echoText(t, c, "waited"); p != "waited" {
			t.Fatalf("after waiting for a place: %q", p)
		}
		waitFor(t, "the holders' handshakes counted as failed", func() bool { return ts.stats.TLSHandshakeErrors.Load() == 2 })
		c.Close(websocket.StatusNormalClosure, "")
		ts.finish()
	})
}

// Certificates change without a restart: after KeyPair.Reload new
// connections get the new certificate and open ones keep working.
func TestIntegrationTLSCertificateReload(t *testing.T) {
	forEachBaseEngine(t, func(t *testing.T, engine string) {
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		first, second := testcert.New(t), testcert.New(t)
		install := func(c testcert.Cert) {
			cf, kf := c.WriteFiles(t)
			for from, to := range map[string]string{cf: certFile, kf: keyFile} {
				b, err := os.ReadFile(from)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(to, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		install(first)
		kp, err := loop.LoadKeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) { o.TLSConfig = kp.TLSConfig() })
		served := func() []byte {
			c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].Raw
		}
		if !slices.Equal(served(), first.TLS.Certificate[0]) {
			t.Fatal("the first certificate is not served")
		}
		ts.tls = &tls.Config{RootCAs: first.Pool}
		old := ts.openRaw()
		install(second)
		if err := kp.Reload(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(served(), second.TLS.Certificate[0]) {
			t.Fatal("after Reload new connections get the old certificate")
		}
		old.write(clientFrame(true, opText, []byte("opened before the reload")))
		if op, p := old.readMessage(); op != opText || string(p) != "opened before the reload" {
			t.Fatalf("a connection opened before the reload: op %d %q", op, p)
		}
		ts.tls = &tls.Config{RootCAs: second.Pool}
		fresh := ts.openRaw()
		fresh.write(clientFrame(true, opText, []byte("after")))
		if _, p := fresh.readMessage(); string(p) != "after" {
			t.Fatalf("a connection after the reload: %q", p)
		}
		// A broken pair keeps the certificate in use.
		os.WriteFile(certFile, []byte("not PEM"), 0o600)
		if err := kp.Reload(); err == nil {
			t.Error("Reload of a broken file succeeded")
		}
		if !slices.Equal(served(), second.TLS.Certificate[0]) {
			t.Error("a failed Reload changed the certificate")
		}
		old.c.Close()
		fresh.c.Close()
		ts.finish()
	})
}

// TestTLSFloodClient is the client process of TestIntegrationTLSHandshakeFlood
// (it runs only when that test starts it): on "go" it starts
// WSLOOP_FLOOD_N TLS handshakes to WSLOOP_FLOOD_ADDR at once, reports
// "FLOOD ok N failed M [first error]" and holds the connections until its
// stdin ends.
func TestTLSFloodClient(t *testing.T) {
	addr := os.Getenv("WSLOOP_FLOOD_ADDR")
	if addr == "" {
		t.Skip("the client process of TestIntegrationTLSHandshakeFlood")
	}
	n, _ := strconv.Atoi(os.Getenv("WSLOOP_FLOOD_N"))
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return
	}
	cfg := &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519}}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []net.Conn
		firstErr error
		failed   int
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 90 * time.Second}, "tcp", addr, cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Printf("FLOOD ok %d failed %d %v\n", len(conns), failed, firstErr)
	} else {
		fmt.Printf("FLOOD ok %d failed 0\n", len(conns))
	}
	_, _ = io.Copy(io.Discard, in)
	for _, c := range conns {
		c.Close()
	}
}
