package clientlimit

import (
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, h Header, trusted ...string) *Proxies {
	t.Helper()
	p, err := NewProxies(trusted, h)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestXForwardedFor(t *testing.T) {
	p := mustProxies(t, XForwardedFor, "10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48")
	cases := []struct {
		name  string
		peer  string
		lines []string
		want  string
	}{
		{"untrusted peer: headers ignored", "198.51.100.9", []string{"1.2.3.4"}, "198.51.100.9"},
		{"untrusted peer, no header", "198.51.100.9", nil, "198.51.100.9"},
		{"trusted peer, no header", "127.0.0.1", nil, "127.0.0.1"},
		{"one hop", "127.0.0.1", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client-sent prefix ignored", "127.0.0.1", []string{"6.6.6.6, 203.0.113.5"}, "203.0.113.5"},
		{"chain of trusted proxies", "127.0.0.1", []string{"6.6.6.6, 203.0.113.5, 10.1.2.3, 10.9.9.9"}, "203.0.113.5"},
		{"several header lines, in order", "10.0.0.1", []string{"6.6.6.6", "203.0.113.5,10.1.2.3"}, "203.0.113.5"},
		{"last line is the nearest", "10.0.0.1", []string{"203.0.113.5", "10.1.2.3"}, "203.0.113.5"},
		{"every hop trusted: the leftmost", "127.0.0.1", []string{"10.0.0.5, 10.0.0.2"}, "10.0.0.5"},
		{"garbage from the trusted proxy: the hop after it", "127.0.0.1", []string{"203.0.113.5, garbage, 10.0.0.2"}, "10.0.0.2"},
		{"garbage nearest: the peer", "127.0.0.1", []string{"203.0.113.5, garbage"}, "127.0.0.1"},
		{"garbage left of the client is never reached", "127.0.0.1", []string{"garbage, 203.0.113.5"}, "203.0.113.5"},
		{"unknown", "127.0.0.1", []string{"unknown"}, "127.0.0.1"},
		{"empty elements skipped", "127.0.0.1", []string{" , 203.0.113.5 ,, "}, "203.0.113.5"},
		{"empty value", "127.0.0.1", []string{""}, "127.0.0.1"},
		{"IPv4 with port", "127.0.0.1", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"IPv6", "127.0.0.1", []string{"2001:db8::17"}, "2001:db8::17"},
		{"IPv6 bracketed", "127.0.0.1", []string{"[2001:db8::17]"}, "2001:db8::17"},
		{"IPv6 bracketed with port", "127.0.0.1", []string{"[2001:db8::17]:4711"}, "2001:db8::17"},
		{"IPv6 proxy trusted by prefix", "2001:db8:ffff:1::1", []string{"2001:db8::17, 2001:db8:ffff:2::2"}, "2001:db8::17"},
		{"IPv4-mapped peer", "::ffff:127.0.0.1", []string{"203.0.113.5"}, "203.0.113.5"},
		{"IPv4-mapped hop", "127.0.0.1", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"zone is not an address", "127.0.0.1", []string{"fe80::1%eth0"}, "127.0.0.1"},
		{"bad port", "127.0.0.1", []string{"203.0.113.5:http"}, "127.0.0.1"},
		{"port too long", "127.0.0.1", []string{"203.0.113.5:1234567"}, "127.0.0.1"},
		{"bracket without close", "127.0.0.1", []string{"[2001:db8::17"}, "127.0.0.1"},
		{"bracketed IPv4", "127.0.0.1", []string{"[203.0.113.5]"}, "127.0.0.1"},
		{"host name", "127.0.0.1", []string{"example.com"}, "127.0.0.1"},
		{"overlong", "127.0.0.1", []string{strings.Repeat("1", 100)}, "127.0.0.1"},
		{"Forwarded is not read", "127.0.0.1", []string{"for=203.0.113.5"}, "127.0.0.1"},
	}
	for _, c := range cases {
		var vals [][]byte
		for _, l := range c.lines {
			vals = append(vals, []byte(l))
		}
		if got := p.Client(netip.MustParseAddr(c.peer), vals...); got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
}

func TestForwarded(t *testing.T) {
	p := mustProxies(t, Forwarded, "10.0.0.0/8")
	peer := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		name, value, want string
	}{
		{"RFC 7239 example", "for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"},
		{"quoted IPv6 with port", `for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"case-insensitive name", "For=192.0.2.60", "192.0.2.60"},
		{"two elements", "for=192.0.2.43, for=10.0.0.9", "192.0.2.43"},
		{"client-sent element ignored", "for=6.6.6.6, for=192.0.2.43", "192.0.2.43"},
		{"obfuscated", `for="_gazonk"`, "10.0.0.1"},
		{"unknown", "for=unknown", "10.0.0.1"},
		{"unknown left of the client", "for=unknown, for=192.0.2.43", "192.0.2.43"},
		{"element without for", "proto=https;by=10.0.0.9", "10.0.0.1"},
		{"two for in one element", "for=192.0.2.1;for=192.0.2.2", "10.0.0.1"},
		{"comma inside quotes", `for=192.0.2.60;ext="a,b;c", for=10.0.0.3`, "192.0.2.60"},
		{"escape in quotes", `for="192.0.2.\60"`, "10.0.0.1"},
		{"unterminated quote", `for="192.0.2.60`, "10.0.0.1"},
		{"spaces", " for = 192.0.2.60 ; proto=http ", "192.0.2.60"},
		{"X-Forwarded-For syntax is not read", "192.0.2.60", "10.0.0.1"},
	}
	for _, c := range cases {
		if got := p.Client(peer, []byte(c.value)); got != netip.MustParseAddr(c.want) {
			t.Errorf("%s (%q): %v, want %s", c.name, c.value, got, c.want)
		}
	}
	if Forwarded.Name() != "Forwarded" || XForwardedFor.Name() != "X-Forwarded-For" || p.Header() != Forwarded {
		t.Error("header names")
	}
}

func TestNewProxies(t *testing.T) {
	p := mustProxies(t, XForwardedFor, " 10.0.0.0/8 ", "", "::1", "::ffff:192.168.0.0/112", "192.0.2.77/24")
	for _, s := range []string{"10.255.0.1", "::1", "192.168.3.4", "::ffff:192.168.9.9", "192.0.2.1"} {
		if !p.Trusted(netip.MustParseAddr(s)) {
			t.Errorf("%s not trusted", s)
		}
	}
	for _, s := range []string{"11.0.0.1", "::2", "192.169.0.1", "127.0.0.1"} {
		if p.Trusted(netip.MustParseAddr(s)) {
			t.Errorf("%s trusted", s)
		}
	}
	for _, bad := range []string{"nonsense", "10.0.0.0/33", "fe80::1%eth0", "10.0.0.0/8/8"} {
		if _, err := NewProxies([]string{bad}, XForwardedFor); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v, want an error naming it", bad, err)
		}
	}
	var none *Proxies
	if none.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil Proxies trusts")
	}
}

func TestResolveAllocatesNothing(t *testing.T) {
	xff := mustProxies(t, XForwardedFor, "10.0.0.0/8", "::1")
	fwd := mustProxies(t, Forwarded, "10.0.0.0/8")
	peer := netip.MustParseAddr("10.0.0.1")
	line := []byte("6.6.6.6, [2001:db8::17]:4711, 203.0.113.5, 10.1.2.3")
	fline := []byte(`for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2`)
	var got netip.Addr
	if a := testing.AllocsPerRun(1000, func() {
		r := xff.Resolve(peer)
		r.Add(line)
		got = r.Client()
	}); a != 0 || got != netip.MustParseAddr("203.0.113.5") {
		t.Errorf("X-Forwarded-For: %g allocations, %v", a, got)
	}
	if a := testing.AllocsPerRun(1000, func() {
		r := fwd.Resolve(peer)
		r.Add(fline)
		got = r.Client()
	}); a != 0 || got != netip.MustParseAddr("2001:db8:cafe::17") {
		t.Errorf("Forwarded: %g allocations, %v", a, got)
	}
}

// FuzzResolve: any header lines, either header: no panic, and the answer
// is the peer or an address that appears in the lines.
func FuzzResolve(f *testing.F) {
	f.Add("6.6.6.6, 203.0.113.5", "10.1.2.3", false)
	f.Add(`for="[2001:db8::1]:80";by=x, for=10.0.0.2`, "", true)
	f.Add(`for="a,b\"c", for=unknown`, `for=`, true)
	f.Fuzz(func(t *testing.T, a, b string, forwarded bool) {
		h := XForwardedFor
		if forwarded {
			h = Forwarded
		}
		p, _ := NewProxies([]string{"10.0.0.0/8", "2001:db8::/32"}, h)
		peer := netip.MustParseAddr("10.0.0.1")
		got := p.Client(peer, []byte(a), []byte(b))
		if got == peer {
			return
		}
		s := got.String()
		if !strings.Contains(a+b, s) && !strings.Contains(strings.ToLower(a+b), s) {
			// An IPv4-mapped or differently written IPv6 form is fine
			// when it parses back to got.
			for _, field := range strings.FieldsFunc(a+","+b, func(r rune) bool { return strings.ContainsRune(`,;="[] `, r) }) {
				if x, err := netip.ParseAddr(field); err == nil && x.Unmap() == got {
					return
				}
				if host, _, ok := strings.Cut(field, ":"); ok {
					if x, err := netip.ParseAddr(host); err == nil && x == got {
						return
					}
				}
			}
			t.Fatalf("%v is not in %q %q", got, a, b)
		}
	})
}
