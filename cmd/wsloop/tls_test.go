package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"
)

// TestRunTLS serves https and wss with -tls-cert/-tls-key on every engine.
func TestRunTLS(t *testing.T) {
	cert, key := testcert.New(t).WriteFiles(t)
	for _, engine := range []string{"epoll", "gnet", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			r := startRun(t, "-engine", engine, "-tls-cert", cert, "-tls-key", key)
			cl, tr := insecureClient()
			defer tr.CloseIdleConnections()
			resp, err := cl.Get("https://" + r.addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok\n" {
				t.Fatalf("GET https /healthz: %d %q", resp.StatusCode, body)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Fatalf("https answered without TLS 1.2 or later: %+v", resp.TLS)
			}
			c := dialWSS(t, cl, r.addr)
			if got := echo(t, c, "over tls"); got != "over tls" {
				t.Fatalf("wss echo: %q", got)
			}
			c.Close(websocket.StatusNormalClosure, "")
			if err := r.stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.Contains(r.logs.String(), "demo=https://") {
				t.Errorf("start line does not name the https page:\n%s", r.logs.String())
			}
		})
	}
}

// SIGHUP reloads the certificate files: connections open before keep
// working, new ones are served the new certificate, and the reload is
// logged. A reload that fails keeps the certificate in use.
func TestRunTLSReloadOnSIGHUP(t *testing.T) {
	first := testcert.New(t)
	cert, key := first.WriteFiles(t)
	r := startRun(t, "-tls-cert", cert, "-tls-key", key)
	cl, tr := insecureClient()
	defer tr.CloseIdleConnections()
	old := dialWSS(t, cl, r.addr)
	if got := servedCert(t, r.addr); !bytes.Equal(got, first.TLS.Certificate[0]) {
		t.Fatal("the server does not present the certificate it was given")
	}

	second := testcert.New(t)
	c2, k2 := second.WriteFiles(t)
	copyFile(t, c2, cert)
	copyFile(t, k2, key)
	hup(t)
	waitLog(t, r, "TLS certificate reloaded")
	if got := servedCert(t, r.addr); !bytes.Equal(got, second.TLS.Certificate[0]) {
		t.Fatal("after SIGHUP new connections still get the old certificate")
	}
	if got := echo(t, old, "still here"); got != "still here" {
		t.Fatalf("a connection opened before the reload: %q", got)
	}

	// A broken file: logged, and the certificate in use stays.
	copyFile(t, k2, cert) // a key where the certificate should be
	hup(t)
	waitLog(t, r, "TLS certificate reload failed")
	if got := servedCert(t, r.addr); !bytes.Equal(got, second.TLS.Certificate[0]) {
		t.Fatal("a failed reload changed the certificate served")
	}
	old.Close(websocket.StatusNormalClosure, "")
	if err := r.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

func insecureClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, tr
}

func dialWSS(t *testing.T, cl *http.Client, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+addr+"/ws/echo", &websocket.DialOptions{HTTPClient: cl})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	return c
}

func echo(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// servedCert is the leaf certificate a new TLS connection is served.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

func hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func waitLog(t *testing.T, r running, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.logs.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, r.logs.String())
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
