package codec

import (
	"errors"
	"testing"
)

func TestParseDeflateOffer(t *testing.T) {
	const u = WindowBitsUnset
	good := []struct {
		in   string
		want DeflateParams
	}{
		{"", DeflateParams{}}, // no parameters (nil params, see below)
		{"server_no_context_takeover", DeflateParams{ServerNoContextTakeover: true}},
		{"client_no_context_takeover", DeflateParams{ClientNoContextTakeover: true}},
		{"client_max_window_bits", DeflateParams{ClientMaxWindowBits: u}},
		{"client_max_window_bits=8", DeflateParams{ClientMaxWindowBits: 8}},
		{"client_max_window_bits=15", DeflateParams{ClientMaxWindowBits: 15}},
		{"server_max_window_bits=8", DeflateParams{ServerMaxWindowBits: 8}},
		{"server_max_window_bits=10", DeflateParams{ServerMaxWindowBits: 10}},
		{`server_max_window_bits="12"`, DeflateParams{ServerMaxWindowBits: 12}},
		{`server_max_window_bits="1\3"`, DeflateParams{ServerMaxWindowBits: 13}},
		{"server_max_window_bits = 9", DeflateParams{ServerMaxWindowBits: 9}},
		{"server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits",
			DeflateParams{true, true, 11, u}},
		{"client_max_window_bits=14;server_no_context_takeover", DeflateParams{ServerNoContextTakeover: true, ClientMaxWindowBits: 14}},
	}
	for _, g := range good {
		var params []byte
		if g.in != "" {
			params = []byte(g.in)
		}
		got, err := ParseDeflateOffer(params)
		if err != nil || got != g.want {
			t.Errorf("ParseDeflateOffer(%q) = %+v, %v; want %+v", g.in, got, err, g.want)
		}
	}
	bad := []string{
		"", // an empty list after ';' ("permessage-deflate;")
		"unknown_param",
		"x=1",
		"server_no_context_takeover=1",
		`client_no_context_takeover=""`,
		"server_max_window_bits",
		"server_max_window_bits=",
		"server_max_window_bits=7",
		"server_max_window_bits=16",
		"server_max_window_bits=08",
		"server_max_window_bits=010",
		"server_max_window_bits=-9",
		"server_max_window_bits=9a",
		`server_max_window_bits="9`,
		`server_max_window_bits="1\"`,
		`server_max_window_bits="9;"`,
		"client_max_window_bits=0",
		"client_max_window_bits=99",
		"server_no_context_takeover; server_no_context_takeover",
		"client_max_window_bits; client_max_window_bits=10",
		"server_max_window_bits=10; server_max_window_bits=10",
		"server_no_context_takeover;",
		"; server_no_context_takeover",
		"server_no_context_takeover;; client_no_context_takeover",
		"server no_context_takeover",
		"=10",
	}
	for _, b := range bad {
		got, err := ParseDeflateOffer([]byte(b))
		var pe *DeflateParamError
		if !errors.As(err, &pe) {
			t.Errorf("ParseDeflateOffer(%q) = %+v, %v; want a *DeflateParamError", b, got, err)
		}
	}
}

func TestParseDeflateResponse(t *testing.T) {
	// A response's client_max_window_bits needs a value (RFC 7692 7.1.2.2).
	if _, err := ParseDeflateResponse([]byte("client_max_window_bits")); err == nil {
		t.Fatal("client_max_window_bits without a value accepted in a response")
	}
	got, err := ParseDeflateResponse([]byte("server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=15"))
	want := DeflateParams{ServerNoContextTakeover: true, ClientMaxWindowBits: 9, ServerMaxWindowBits: 15}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestAppendDeflateParamsRoundTrip(t *testing.T) {
	for _, p := range []DeflateParams{
		{},
		{ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		{ServerMaxWindowBits: 8, ClientMaxWindowBits: 15},
		{true, false, 12, WindowBitsUnset},
		{false, true, 0, 10},
	} {
		b := AppendDeflateParams(nil, p)
		var req Request
		raw := "GET / HTTP/1.1\r\nSec-WebSocket-Extensions: " + string(b) + "\r\n\r\n"
		if _, err := ParseRequest([]byte(raw), 0, &req); err != nil {
			t.Fatal(err)
		}
		n := 0
		req.EachExtension(func(name, params []byte) bool {
			n++
			got, err := ParseDeflateOffer(params)
			if string(name) != DeflateExtension || err != nil || got != p {
				t.Errorf("%q: parsed %q %+v %v, want %+v", b, name, got, err, p)
			}
			return true
		})
		if n != 1 {
			t.Errorf("%q: %d elements", b, n)
		}
	}
}

func TestParseDeflateOfferAllocs(t *testing.T) {
	params := []byte(`server_no_context_takeover; client_no_context_takeover; server_max_window_bits="1\2"; client_max_window_bits`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseDeflateOffer(params); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestResponseEachExtension(t *testing.T) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	raw := AppendUpgradeResponse(nil, key, "", []byte("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover, x-other\r\n"))
	var res Response
	if _, err := ParseResponse(raw, 0, key, &res); err != nil {
		t.Fatal(err)
	}
	var got []string
	res.EachExtension(func(name, params []byte) bool {
		got = append(got, string(name)+"("+string(params)+")")
		return true
	})
	if len(got) != 2 || got[0] != "permessage-deflate(server_no_context_takeover)" || got[1] != "x-other()" {
		t.Fatalf("extensions %q", got)
	}
}

// FuzzParseDeflateOffer: any input parses or is refused without a panic,
// and what is accepted survives a round trip through AppendDeflateParams.
func FuzzParseDeflateOffer(f *testing.F) {
	for _, s := range []string{"server_no_context_takeover", "client_max_window_bits", `server_max_window_bits="1\0"`,
		"server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=8", ";", "x"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, params []byte, response bool) {
		parse := ParseDeflateOffer
		if response {
			parse = ParseDeflateResponse
		}
		p, err := parse(params)
		if err != nil {
			return
		}
		out := AppendDeflateParams(nil, p)
		rest := out[len(DeflateExtension):]
		var again []byte
		if len(rest) > 0 {
			again = rest[2:] // "; "
		}
		q, err := parse(again)
		if err != nil || q != p {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", params, p, out, q, err)
		}
	})
}
