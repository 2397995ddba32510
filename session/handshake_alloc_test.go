package session

import "testing"

// A server handshake leaves no garbage behind, with or without an upgrade
// hook: at tens of thousands of connections, per-handshake garbage keeps the
// heap (and the RSS users see) at up to twice its live size.
func TestHandshakeAllocs(t *testing.T) {
	req := []byte("GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	hooks := map[string]UpgradeFunc{
		"no hook": nil,
		"routing hook": func(r *Request) (Accept, error) {
			if r.Path() != "/ws/echo" || r.Host() == "" {
				t.Errorf("hook saw path %q host %q", r.Path(), r.Host())
			}
			return Accept{}, nil
		},
	}
	for name, hook := range hooks {
		cfg := &Config{Handler: HandlerFuncs{}, Upgrade: hook}
		cfg.Normalize()
		buf := make([]byte, len(req))
		c := new(tconn) // the connection itself is live memory, not garbage
		tr := &fakeTransport{out: make([]byte, 0, 1<<20)}
		allocs := testing.AllocsPerRun(100, func() {
			c.Conn = Conn{}
			tr.out = tr.out[:0]
			copy(buf, req)
			c.Init(cfg, tr, 1)
			c.Feed(buf, 2)
			if c.State() != StateOpen {
				t.Fatalf("%s: state %v after the handshake", name, c.State())
			}
		})
		if allocs != 0 && !raceEnabled {
			t.Errorf("%s: %v allocations per handshake, want 0", name, allocs)
		}
	}
}
