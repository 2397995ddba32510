package clientlimit

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustNew(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var ip = netip.MustParseAddr

// v4 makes a distinct IPv4 address from n.
func v4(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}

// v6 makes an address in a distinct /64 from n (random low bits).
func v6(n uint64, low uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x2001_0db8_0000_0000|n&0xffff_ffff)
	binary.BigEndian.PutUint64(b[8:], low)
	return netip.AddrFrom16(b)
}

func TestConnsPerClient(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 3})
	a, b := ip("192.0.2.1"), ip("192.0.2.2")
	var held []Ticket
	for i := range 3 {
		tk, v := l.Admit(a, 0)
		if v != OK || tk == 0 {
			t.Fatalf("connection %d: %v ticket %d", i+1, v, tk)
		}
		held = append(held, tk)
	}
	if _, v := l.Admit(a, 0); v != TooManyConns {
		t.Fatalf("4th connection: %v, want TooManyConns", v)
	}
	if _, v := l.Admit(ip("::ffff:192.0.2.1"), 0); v != TooManyConns {
		t.Fatalf("the same address IPv4-mapped: %v, want TooManyConns", v)
	}
	if _, v := l.Admit(b, 0); v != OK {
		t.Fatalf("another address: %v", v)
	}
	if got := l.Conns(a); got != 3 {
		t.Fatalf("Conns = %d, want 3 (refusals count nothing)", got)
	}
	l.Release(held[0], 0)
	if got := l.Conns(a); got != 2 {
		t.Fatalf("after a release: %d", got)
	}
	tk, v := l.Admit(a, 0)
	if v != OK {
		t.Fatalf("after a release: %v", v)
	}
	for _, t2 := range append(held[1:], tk) {
		l.Release(t2, 0)
	}
	l.Release(tk, 0) // a bug in the caller: never below zero
	if got := l.Conns(a); got != 0 {
		t.Fatalf("after all released: %d", got)
	}
	// With no rate limit, an address with nothing open carries no state.
	if l.Conns(a) != 0 || l.Tracked() != 1 { // b is still open
		t.Fatalf("tracked %d, want 1 (b)", l.Tracked())
	}
}

func TestIPv6Grouping(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 2})
	same := []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"}
	for _, s := range same {
		if _, v := l.Admit(ip(s), 0); v != OK {
			t.Fatalf("%s: %v", s, v)
		}
	}
	if _, v := l.Admit(ip("2001:db8:1:2:abcd::9"), 0); v != TooManyConns {
		t.Fatalf("a third address in the same /64: %v, want TooManyConns", v)
	}
	if _, v := l.Admit(ip("2001:db8:1:3::1"), 0); v != OK {
		t.Fatalf("the next /64: %v", v)
	}

	l = mustNew(t, Config{MaxConnsPerClient: 1, IPv6Prefix: 48, IPv4Prefix: 24})
	if _, v := l.Admit(ip("2001:db8:1:2::1"), 0); v != OK {
		t.Fatal(v)
	}
	if _, v := l.Admit(ip("2001:db8:1:ffff::1"), 0); v != TooManyConns {
		t.Fatalf("same /48: %v", v)
	}
	if _, v := l.Admit(ip("198.51.100.1"), 0); v != OK {
		t.Fatal(v)
	}
	if _, v := l.Admit(ip("198.51.100.200"), 0); v != TooManyConns {
		t.Fatalf("same /24: %v", v)
	}
}

func TestNotAnIPAddress(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 1})
	for range 3 {
		if tk, v := l.Admit(netip.Addr{}, 0); v != OK || tk != 0 {
			t.Fatalf("no address: %v %d, want untracked OK", v, tk)
		}
	}
	l.Release(0, 0)
}

func TestHandshakeRate(t *testing.T) {
	l := mustNew(t, Config{HandshakeRate: 10, HandshakeBurst: 3})
	a := ip("203.0.113.9")
	ms := int64(time.Millisecond)
	now := int64(time.Hour) // any base
	try := func(at int64, want Verdict) {
		t.Helper()
		tk, v := l.Admit(a, at)
		if v != want {
			t.Fatalf("at +%dms: %v, want %v", (at-now)/ms, v, want)
		}
		l.Release(tk, at)
	}
	for range 3 {
		try(now, OK)
	}
	try(now, TooFast)
	try(now+50*ms, TooFast)
	try(now+100*ms, OK) // one token per 100 ms
	try(now+100*ms, TooFast)
	try(now+150*ms, TooFast) // refusals take nothing, and give nothing
	try(now+200*ms, OK)
	// Quiet for a second: the bucket holds its burst again, not more.
	later := now + 1200*ms
	for range 3 {
		try(later, OK)
	}
	try(later, TooFast)
	if _, v := l.Admit(ip("203.0.113.10"), later); v != OK {
		t.Fatal("another address shares no bucket")
	}
}

func TestDefaultBurst(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		burst int
	}{{2.5, 3}, {0.2, 1}, {20, 20}} {
		l := mustNew(t, Config{HandshakeRate: c.rate})
		n := 0
		for {
			if _, v := l.Admit(ip("192.0.2.7"), 0); v != OK {
				break
			}
			n++
		}
		if n != c.burst {
			t.Errorf("rate %v: burst %d, want %d", c.rate, n, c.burst)
		}
	}
}

func TestConnsCheckedBeforeRate(t *testing.T) {
	// A client at its connection limit is told so and keeps its tokens.
	l := mustNew(t, Config{MaxConnsPerClient: 1, HandshakeRate: 1, HandshakeBurst: 2})
	a := ip("192.0.2.3")
	tk, _ := l.Admit(a, 0)
	for range 5 {
		if _, v := l.Admit(a, 0); v != TooManyConns {
			t.Fatalf("%v", v)
		}
	}
	l.Release(tk, 0)
	if _, v := l.Admit(a, 0); v != OK {
		t.Fatalf("second token: %v (refusals must not spend tokens)", v)
	}
}

func TestNoLimitsNoTable(t *testing.T) {
	l := mustNew(t, Config{MaxHandshakes: 5})
	for i := range 1000 {
		if tk, v := l.Admit(v4(uint32(i)), 0); v != OK || tk != 0 {
			t.Fatalf("%v %d", v, tk)
		}
	}
	if l.Tracked() != 0 {
		t.Fatalf("tracked %d with no per-client limit", l.Tracked())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{MaxConnsPerClient: -1}, {HandshakeRate: -1}, {MaxTracked: -5},
		{IPv6Prefix: 129}, {IPv4Prefix: 33}, {IPv4Prefix: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestHandshakeGate(t *testing.T) {
	l := mustNew(t, Config{MaxHandshakes: 2})
	if !l.BeginHandshake() || !l.BeginHandshake() {
		t.Fatal("the first two")
	}
	if l.BeginHandshake() {
		t.Fatal("a third while two are in progress")
	}
	l.EndHandshake()
	if !l.BeginHandshake() {
		t.Fatal("after one ended")
	}
	if l.Handshakes() != 2 {
		t.Fatalf("in progress: %d", l.Handshakes())
	}

	// Concurrently: never more than the cap inside at once.
	const limit = 8
	l = mustNew(t, Config{MaxHandshakes: limit})
	var inside, peak atomic.Int64
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if !l.BeginHandshake() {
					continue
				}
				admitted.Add(1)
				n := inside.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				inside.Add(-1)
				l.EndHandshake()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit || l.Handshakes() != 0 || admitted.Load() == 0 {
		t.Fatalf("peak %d (cap %d), left %d, admitted %d", peak.Load(), limit, l.Handshakes(), admitted.Load())
	}
	open := mustNew(t, Config{})
	for range 100 {
		if !open.BeginHandshake() {
			t.Fatal("no cap set")
		}
	}
}

// TestFloodBounded: a million distinct addresses (50,000 under the race
// detector) (IPv4 and IPv6 /64s) pass
// through a table for 1,024, each with a spent token so that none is idle;
// the table never holds more than its bound, and the real clients that
// hold connections through the flood keep their counts.
func TestFloodBounded(t *testing.T) {
	const max = 1024
	l := mustNew(t, Config{MaxConnsPerClient: 2, HandshakeRate: 1, HandshakeBurst: 2, MaxTracked: max})
	real := []netip.Addr{ip("192.0.2.50"), ip("2001:db8:aa::1"), ip("198.51.100.7")}
	var held []Ticket
	for _, a := range real {
		for range 2 {
			tk, v := l.Admit(a, 0)
			if v != OK || tk == 0 {
				t.Fatalf("%v: %v %d", a, v, tk)
			}
			held = append(held, tk)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 50_000 // still 50 times the table
	}
	for i := range n {
		var a netip.Addr
		if i%2 == 0 {
			a = v4(r.Uint32())
		} else {
			a = v6(r.Uint64(), r.Uint64())
		}
		now += 1000 // 1 µs apart: a million handshakes a second
		tk, v := l.Admit(a, now)
		if v == OK {
			l.Release(tk, now) // closed at once; its bucket stays spent for 1 s
		}
		if i%4096 == 0 && l.Tracked() > max {
			t.Fatalf("after %d: %d tracked, bound %d", i, l.Tracked(), max)
		}
	}
	if got := l.Tracked(); got > max {
		t.Fatalf("%d tracked, bound %d", got, max)
	}
	for i := range l.shards {
		s := &l.shards[i]
		if cap(s.slab) > s.max || len(s.index) > indexLen(s.max)*2 {
			t.Fatalf("shard %d: slab cap %d (max %d), index %d", i, cap(s.slab), s.max, len(s.index))
		}
		checkShard(t, s)
	}
	for _, a := range real {
		if got := l.Conns(a); got != 2 {
			t.Errorf("%v: %d connections counted after the flood, want 2", a, got)
		}
		if _, v := l.Admit(a, now); v != TooManyConns {
			t.Errorf("%v: %v after the flood, want TooManyConns", a, v)
		}
	}
	for _, tk := range held {
		l.Release(tk, now)
	}
	for _, a := range real {
		if got := l.Conns(a); got != 0 {
			t.Errorf("%v: %d after release", a, got)
		}
	}
}

// TestFullOfOpenConnections: when every tracked address holds a
// connection, a new address is admitted untracked (fail open), and the
// tracked ones are never evicted.
func TestFullOfOpenConnections(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 1, MaxTracked: 16 * 4}) // 4 per shard
	tickets := map[netip.Addr]Ticket{}
	untracked := 0
	for i := range 1000 {
		a := v4(uint32(0x0a000000 + i))
		tk, v := l.Admit(a, 0)
		if v != OK {
			t.Fatalf("%v: %v, want OK (tracked or not)", a, v)
		}
		if tk == 0 {
			untracked++
			continue
		}
		tickets[a] = tk
	}
	if len(tickets) != 64 || untracked != 1000-64 {
		t.Fatalf("%d tracked, %d untracked; want 64 and %d", len(tickets), untracked, 1000-64)
	}
	for a := range tickets {
		if _, v := l.Admit(a, 0); v != TooManyConns {
			t.Fatalf("tracked %v lost its count: %v", a, v)
		}
	}
	for _, tk := range tickets {
		l.Release(tk, 0)
	}
	if l.Tracked() != 0 {
		t.Fatalf("%d tracked after all released", l.Tracked())
	}
}

// TestTableAgainstModel runs random admits, releases and clock steps on a
// small table and compares every count with a plain map, checking the
// index after each step (backward-shift deletion keeps every entry
// findable).
func TestTableAgainstModel(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 3, HandshakeRate: 50, HandshakeBurst: 4, MaxTracked: 16 * 512})
	r := rand.New(rand.NewPCG(3, 4))
	addrs := make([]netip.Addr, 300)
	for i := range addrs {
		addrs[i] = v6(uint64(i), 1)
	}
	type model struct {
		tickets []Ticket
		tat     int64
	}
	m := map[netip.Addr]*model{}
	now := int64(0)
	interval, tolerance := int64(time.Second/50), 3*int64(time.Second/50)
	for step := range 50_000 {
		a := addrs[r.IntN(len(addrs))]
		mm := m[a]
		if mm == nil {
			mm = &model{}
			m[a] = mm
		}
		switch r.IntN(3) {
		case 0, 1:
			want := OK
			tat := max(mm.tat, now)
			switch {
			case len(mm.tickets) >= 3:
				want = TooManyConns
			case tat-now > tolerance:
				want = TooFast
			}
			tk, v := l.Admit(a, now)
			if v != want {
				t.Fatalf("step %d %v: %v, want %v", step, a, v, want)
			}
			if v == OK {
				mm.tat = tat + interval
				mm.tickets = append(mm.tickets, tk)
			}
		case 2:
			if len(mm.tickets) > 0 {
				i := r.IntN(len(mm.tickets))
				l.Release(mm.tickets[i], now)
				mm.tickets = append(mm.tickets[:i], mm.tickets[i+1:]...)
			}
		}
		now += int64(r.IntN(5)) * int64(time.Millisecond)
		if got := l.Conns(a); got != len(mm.tickets) {
			t.Fatalf("step %d %v: %d conns, model %d", step, a, got, len(mm.tickets))
		}
		if step%997 == 0 {
			for i := range l.shards {
				checkShard(t, &l.shards[i])
			}
		}
	}
}

// checkShard: every live entry is found through the index, the index
// holds exactly the live entries, and n counts them.
func checkShard(t *testing.T, s *shard) {
	t.Helper()
	live := 0
	for p := range s.slab {
		e := &s.slab[p]
		if !e.live {
			continue
		}
		live++
		if got := s.find(&e.key, e.hash); got != int32(p) {
			t.Fatalf("entry %d found at %d", p, got)
		}
	}
	refs := 0
	for _, ref := range s.index {
		if ref != 0 {
			refs++
		}
	}
	if live != s.n || refs != s.n {
		t.Fatalf("live %d, index refs %d, n %d", live, refs, s.n)
	}
}

// TestConcurrentAdmits: loops admitting and releasing the same addresses
// at once never let one address hold more than its limit.
func TestConcurrentAdmits(t *testing.T) {
	const limit = 4
	l := mustNew(t, Config{MaxConnsPerClient: limit})
	addrs := []netip.Addr{ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1"), ip("2001:db8:0:1::1")}
	var inside [4]atomic.Int32
	var wg sync.WaitGroup
	var fail atomic.Value
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			var mine []struct {
				i  int
				tk Ticket
			}
			for range 20_000 {
				if len(mine) > 0 && r.IntN(2) == 0 {
					k := r.IntN(len(mine))
					inside[mine[k].i].Add(-1)
					l.Release(mine[k].tk, 0)
					mine = append(mine[:k], mine[k+1:]...)
					continue
				}
				i := r.IntN(len(addrs))
				tk, v := l.Admit(addrs[i], 0)
				if v != OK {
					continue
				}
				if n := inside[i].Add(1); n > limit {
					fail.Store(n)
				}
				mine = append(mine, struct {
					i  int
					tk Ticket
				}{i, tk})
			}
			for _, m := range mine {
				inside[m.i].Add(-1)
				l.Release(m.tk, 0)
			}
		}()
	}
	wg.Wait()
	if v := fail.Load(); v != nil {
		t.Fatalf("an address held %v connections, limit %d", v, limit)
	}
	for _, a := range addrs {
		if l.Conns(a) != 0 {
			t.Fatalf("%v: %d left", a, l.Conns(a))
		}
	}
	if l.Tracked() != 0 {
		t.Fatalf("tracked %d", l.Tracked())
	}
}

// TestChecksAllocateNothing: Admit and Release for a known address, for a
// stream of new addresses once the table has grown, and refusals.
func TestChecksAllocateNothing(t *testing.T) {
	l := mustNew(t, Config{MaxConnsPerClient: 8, HandshakeRate: 1000, HandshakeBurst: 1000, MaxTracked: 4096})
	known := ip("192.0.2.1")
	if a := testing.AllocsPerRun(1000, func() {
		tk, _ := l.Admit(known, 0)
		l.Release(tk, 0)
	}); a != 0 {
		t.Errorf("known address: %g allocations", a)
	}
	i := uint32(0)
	churn := func() {
		i++
		a := v4(i)
		tk, _ := l.Admit(a, int64(i))
		l.Release(tk, int64(i))
	}
	for range 20_000 { // grow to the working size (and past the bound: evictions)
		churn()
	}
	if a := testing.AllocsPerRun(10_000, churn); a != 0 {
		t.Errorf("new addresses: %g allocations", a)
	}
	var held []Ticket
	for range 8 {
		tk, _ := l.Admit(known, 0)
		held = append(held, tk)
	}
	if a := testing.AllocsPerRun(1000, func() { l.Admit(known, 0) }); a != 0 {
		t.Errorf("refusal: %g allocations", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if l.BeginHandshake() {
			l.EndHandshake()
		}
	}); a != 0 {
		t.Errorf("handshake gate: %g allocations", a)
	}
	_ = held
}

func BenchmarkAdmitRelease(b *testing.B) {
	l := mustNew(b, Config{MaxConnsPerClient: 8, HandshakeRate: 1e6})
	a := ip("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		tk, _ := l.Admit(a, 0)
		l.Release(tk, 0)
	}
}

func BenchmarkAdmitReleaseParallel(b *testing.B) {
	l := mustNew(b, Config{MaxConnsPerClient: 8, HandshakeRate: 1e6})
	var n atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		a := v4(n.Add(1))
		for pb.Next() {
			tk, _ := l.Admit(a, 0)
			l.Release(tk, 0)
		}
	})
}

// TestFloodMemory: 300,000 distinct addresses that all keep a connection
// open fill the default table and no more: its heap stays at the stated
// bound (about 50 bytes per tracked address, 3 MiB in all), where tracking
// them all would take five times that.
func TestFloodMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := mustNew(t, Config{MaxConnsPerClient: 4, HandshakeRate: 1})
	for i := range 300_000 {
		l.Admit(v4(uint32(i)), int64(i)) // never released
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if l.Tracked() != DefaultMaxTracked {
		t.Errorf("%d tracked, want the bound %d", l.Tracked(), DefaultMaxTracked)
	}
	if limit := int64(DefaultMaxTracked) * 52; grown > limit {
		t.Errorf("heap grew %d bytes for %d tracked addresses, over %d (52 B each)", grown, l.Tracked(), limit)
	}
	runtime.KeepAlive(l)
}
