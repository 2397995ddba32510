package loop

import (
	"net/http"
	"testing"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"
)

func TestGoroutineEcho(t *testing.T) { testEcho(t, "goroutine", Options{}) }

// TestGoroutineTLSEcho serves wss and echoes through coder/websocket, which
// verifies the certificate.
func TestGoroutineTLSEcho(t *testing.T) {
	tc := testcert.New(t)
	s := startServer(t, "goroutine", echoHandler(), Options{TLSConfig: tc.ServerConfig()})
	tr := &http.Transport{TLSClientConfig: tc.ClientConfig()}
	defer tr.CloseIdleConnections()
	c := dial(t, "wss://"+s.Addr().String()+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	c.SetReadLimit(1 << 20)
	for _, msg := range []string{"", "hello over tls", string(make([]byte, 100000))} {
		if got := roundTrip(t, c, websocket.MessageBinary, []byte(msg)); string(got) != msg {
			t.Fatalf("TLS echo of %d bytes: got %d bytes", len(msg), len(got))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitUntil(t, "connection to go", func() bool { return s.Conns() == 0 })
}

// TestGoroutineSendToSelfFromHandler sends to the connection's own Handle
// from inside OnMessage, which must not deadlock on the connection's mutex.
func TestGoroutineSendToSelfFromHandler(t *testing.T) {
	testSendToSelf(t, "goroutine")
}

// TestGoroutineMaxConns refuses connections past MaxConns.
func TestGoroutineMaxConns(t *testing.T) { testMaxConns(t, "goroutine") }

func TestGoroutineStaleHandle(t *testing.T) { testStaleHandle(t, "goroutine") }

func TestGoroutineHandshakeTimeout(t *testing.T) { testHandshakeTimeout(t, "goroutine") }

func TestGoroutineTaskPanic(t *testing.T) { testTaskPanic(t, "goroutine") }
