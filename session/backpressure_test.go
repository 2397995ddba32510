package session

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// A peer that pings without reading: while the engine holds bytes past
// HighWater, the pongs of a whole read coalesce into one, the latest.
func TestPongsCoalesceUnderPressure(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		c, ft := openConn(t, &Config{HighWater: 1000}, role, &recorder{})
		var pings []tframe
		for i := range 50 {
			pings = append(pings, ping(fmt.Sprintf("p%02d", i)))
		}
		ft.buffered = 1000 // the peer is not reading
		c.Feed(encodeFrames(pings, role == Server, newRng()), t0)
		fs, err := decodeFrames(ft.out, role == Client)
		if err != nil || len(fs) != 1 || fs[0].op != opPong || string(fs[0].payload) != "p49" || ft.pongs != 1 {
			t.Fatalf("%v: wrote %v (%v), want only the pong for the latest ping", role, fs, err)
		}
		// A polite peer gets one pong per ping, in order.
		ft.buffered, ft.out = 0, ft.out[:0]
		c.Feed(encodeFrames(pings[:5], role == Server, newRng()), t0)
		fs, _ = decodeFrames(ft.out, role == Client)
		if len(fs) != 5 || string(fs[4].payload) != "p04" {
			t.Fatalf("%v: polite peer got %v", role, fs)
		}
	}
}

// A pong waiting in the call never follows this end's close frame.
func TestPongBeforeClose(t *testing.T) {
	rec := &recorder{onMessage: func(c *Conn, op Opcode, p []byte) { _ = c.Close(StatusNormal, "") }}
	c, ft := openConn(t, &Config{HighWater: 100}, Server, rec)
	ft.buffered = 100
	c.Feed(encodeFrames([]tframe{ping("x"), txt("bye")}, true, newRng()), t0)
	fs, err := decodeFrames(ft.out, false)
	if err != nil || len(fs) != 2 || fs[0].op != opPong || fs[1].op != opClose {
		t.Fatalf("wrote %v (%v), want the pong then the close", fs, err)
	}
	if ft.pongs != 0 {
		t.Fatal("the pong was left to follow the close")
	}
}

// An upgrade hook may give a connection its own Config.
func TestAcceptConfig(t *testing.T) {
	own := &Config{MaxMessage: 10}
	rec := &recorder{}
	cfg := &Config{Handler: rec, Upgrade: func(r *Request) (Accept, error) { return Accept{Config: own}, nil }}
	c, ft := serverResponse(t, cfg, upgradeRequest(""))
	if c.m().Config() != own || httpStatus(ft.out) != "101" {
		t.Fatalf("config %p, want %p", c.m().Config(), own)
	}
	ft.out = ft.out[:0]
	c.Feed(encodeFrames([]tframe{txt("12345678901")}, true, newRng()), t0)
	fs, _ := decodeFrames(ft.out, false)
	if len(fs) != 1 || fs[0].op != opClose || !bytes.Equal(fs[0].payload[:2], []byte{0x03, 0xf1}) {
		t.Fatalf("the route's MaxMessage did not apply: %v", fs)
	}
}

func TestValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"ping beyond the stamps' range": {PingInterval: MaxTimeout + time.Hour},
		"negative high water":           {HighWater: -1},
		"unknown overflow":              {Overflow: 9},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
