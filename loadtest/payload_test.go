package loadtest

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

func TestEchoPayloadRoundTrip(t *testing.T) {
	for _, text := range []bool{true, false} {
		for _, size := range []int{echoMin(text), echoMin(text) + 1, 64, 1000} {
			p := appendEcho(nil, text, size, 7, 42, 123456789)
			if len(p) != size {
				t.Fatalf("text=%v size %d: got %d bytes", text, size, len(p))
			}
			if text && !utf8.Valid(p) {
				t.Fatalf("text payload is not UTF-8: %q", p)
			}
			ts, bad := checkEcho(p, text, size, 7, 42)
			if bad != "" || ts != 123456789 {
				t.Fatalf("text=%v size %d: check = %d, %q", text, size, ts, bad)
			}
			if _, bad := checkEcho(p, text, size, 7, 43); bad != badSeq {
				t.Errorf("wrong seq: got %q", bad)
			}
			if _, bad := checkEcho(p, text, size, 8, 42); bad != badConn {
				t.Errorf("wrong conn: got %q", bad)
			}
			if _, bad := checkEcho(p[:size-1], text, size, 7, 42); bad != badLength {
				t.Errorf("short: got %q", bad)
			}
			// Every single-byte change anywhere must be caught.
			for i := range p {
				q := bytes.Clone(p)
				q[i] ^= 0x01
				if _, bad := checkEcho(q, text, size, 7, 42); bad == "" {
					t.Fatalf("text=%v size %d: flipped byte %d not detected", text, size, i)
				}
			}
		}
	}
}

func TestEchoPayloadsDiffer(t *testing.T) {
	a := appendEcho(nil, false, 256, 1, 1, 5)
	b := appendEcho(nil, false, 256, 1, 2, 5)
	if bytes.Equal(a[24:], b[24:]) {
		t.Fatal("patterns of two messages are equal")
	}
}

func TestEchoAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	p := appendEcho(nil, true, 1024, 3, 9, 77)
	n := testing.AllocsPerRun(100, func() {
		buf = appendEcho(buf[:0], true, 1024, 3, 9, 77)
		if _, bad := checkEcho(p, true, 1024, 3, 9); bad != "" {
			t.Fatal(bad)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per message, want 0", n)
	}
}

func TestToken(t *testing.T) {
	prefix := tokenPrefix("abc123")
	tok := appendToken(nil, "abc123", 17, 1700000000123456789)
	for _, wrapped := range [][]byte{tok, []byte(`{"from":"bob","text":"` + string(tok) + `"}`)} {
		seq, ts, found, ok := parseToken(wrapped, prefix)
		if !found || !ok || seq != 17 || ts != 1700000000123456789 {
			t.Fatalf("%s: got %d %d %v %v", wrapped, seq, ts, found, ok)
		}
	}
	if _, _, found, _ := parseToken([]byte("wsload:other:1:2"), prefix); found {
		t.Error("another run's token was taken")
	}
	if _, _, found, ok := parseToken([]byte("wsload:abc123:x"), prefix); !found || ok {
		t.Errorf("damaged token: found %v ok %v", found, ok)
	}
}

func TestStamp(t *testing.T) {
	key := []byte(`"t"`)
	const ns = int64(1700000000123000000)
	for _, c := range []struct {
		msg  string
		unit StampUnit
		want int64
	}{
		{`{"t":1700000000123}`, StampAuto, ns},
		{`{"t": 1700000000.123}`, StampAuto, ns},
		{`{"seq":1,"t":1700000000123000}`, StampAuto, ns},
		{`{"t":1700000000123000000,"v":3}`, StampAuto, ns},
		{`{"t":1700000000123}`, StampMS, ns},
		{`{"t":"2023-11-14T22:13:20.123Z","temp":21.4,"seq":42}`, StampAuto, ns},
	} {
		got, ok := parseStamp([]byte(c.msg), key, c.unit)
		if d := got - c.want; !ok || d > 1000 || d < -1000 {
			t.Errorf("%s: got %d %v, want %d", c.msg, got, ok, c.want)
		}
	}
	if _, ok := parseStamp([]byte(`{"x":1}`), key, StampAuto); ok {
		t.Error("message without a time field parsed")
	}
	if s, ok := parseSeq([]byte(`{"seq": 12,"t":5}`), []byte(`"seq"`)); !ok || s != 12 {
		t.Errorf("seq: %d %v", s, ok)
	}
}
