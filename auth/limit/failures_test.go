package limit

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestLoginFailures(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	f := NewLoginFailures(FailureOptions{Limit: 3, Window: time.Minute, Now: clk.now})
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	for i := range 2 {
		if _, ban := f.Fail(a); ban {
			t.Fatalf("failure %d banned", i+1)
		}
	}
	if _, ban := f.Fail(b); ban {
		t.Fatal("another address's failures counted for the first")
	}
	p, ban := f.Fail(a)
	if !ban || p != netip.MustParsePrefix("192.0.2.1/32") {
		t.Fatalf("third failure: %v %v, want 192.0.2.1/32 banned", p, ban)
	}
	if _, ban := f.Fail(a); ban {
		t.Fatal("the count did not start again after a ban")
	}

	// A success forgets the count.
	f.Fail(b)
	f.Succeeded(b)
	f.Fail(b)
	if _, ban := f.Fail(b); ban {
		t.Fatal("failures before a success counted")
	}

	// Failures further apart than the window do not add up.
	c := addr("192.0.2.3")
	f.Fail(c)
	f.Fail(c)
	clk.add(time.Minute)
	if _, ban := f.Fail(c); ban {
		t.Fatal("failures older than the window counted")
	}
	f.Fail(c)
	if _, ban := f.Fail(c); !ban {
		t.Fatal("three failures within the window not banned")
	}
}

// TestLoginFailuresIPv6 counts and bans an IPv6 host by its /64, which it
// owns whole; a mapped IPv4 address is the IPv4 address.
func TestLoginFailuresIPv6(t *testing.T) {
	f := NewLoginFailures(FailureOptions{Limit: 2, Window: time.Minute})
	f.Fail(addr("2001:db8:1:2::1"))
	p, ban := f.Fail(addr("2001:db8:1:2::ffff"))
	if !ban || p != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Fatalf("got %v %v, want 2001:db8:1:2::/64 banned", p, ban)
	}
	f.Fail(addr("::ffff:192.0.2.9"))
	if p, ban := f.Fail(addr("192.0.2.9")); !ban || p != netip.MustParsePrefix("192.0.2.9/32") {
		t.Fatalf("got %v %v, want 192.0.2.9/32 banned", p, ban)
	}
}

// TestLoginFailuresBounded: a flood of failures from distinct addresses
// keeps the table at its size, an address that keeps failing is still
// counted, and successes empty it.
func TestLoginFailuresBounded(t *testing.T) {
	f := NewLoginFailures(FailureOptions{Limit: 1000, Window: time.Hour, MaxAddrs: 1024})
	hot := addr("198.51.100.7")
	bans := 0
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.Fail(ip)
		if i%100 == 0 {
			if _, ban := f.Fail(hot); ban {
				bans++
			}
		}
	}
	if n := f.Len(); n > 1024 {
		t.Errorf("tracking %d addresses, limit 1024", n)
	}
	if bans != 1 {
		t.Errorf("hot address banned %d times in 1000 failures, want 1: its count was lost", bans)
	}
	for i := range 100_000 {
		f.Succeeded(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	f.Succeeded(hot)
	if n, tr := f.Len(), f.tracked.Load(); n != 0 || tr != 0 {
		t.Errorf("after every address succeeded: %d tracked, counter %d; want 0", n, tr)
	}
}

func TestLoginFailuresSucceededAllocs(t *testing.T) {
	f := NewLoginFailures(FailureOptions{Limit: 5, Window: time.Minute})
	f.Fail(addr("192.0.2.1"))
	a := addr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { f.Succeeded(a) }); n != 0 {
		t.Errorf("Succeeded allocates %v times", n)
	}
}

// TestBansManyRanges: many /64 bans (what login failures from IPv6 make)
// are found by one lookup per prefix length, lifted and lapsed ones stop
// counting, and lapsed ones are reported to OnLapse.
func TestBansManyRanges(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	m := NewMemoryBans(clk.now)
	var lapsed []Ban
	m.OnLapse(func(b Ban) { lapsed = append(lapsed, b) })
	p64 := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i)}), 64)
	}
	for i := range 5000 {
		m.Add(Ban{IP: p64(i), Until: clk.now().Add(time.Minute)})
	}
	m.Add(Ban{IP: netip.MustParsePrefix("10.1.0.0/16")})
	in := func(i int) netip.Addr {
		a := p64(i).Addr().As16()
		a[15] = 7
		return netip.AddrFrom16(a)
	}
	switch {
	case !m.Banned(in(4321), ""):
		t.Error("address in a banned /64 let in")
	case m.Banned(in(5001), ""):
		t.Error("address outside every banned /64 banned")
	case !m.Banned(addr("10.1.2.3"), "") || m.Banned(addr("10.2.0.1"), ""):
		t.Error("IPv4 /16 ban wrong")
	case len(m.lens) != 2:
		t.Errorf("prefix lengths %+v, want /64 and /16", m.lens)
	}
	if ok, _ := m.Lift(Ban{IP: p64(4321)}); !ok || m.Banned(in(4321), "") {
		t.Error("lifted /64 still banned")
	}
	clk.add(time.Minute)
	m.Sweep()
	if len(lapsed) != 4999 || m.Len() != 1 || len(m.lens) != 1 {
		t.Errorf("after the TTL: %d reported lapsed, %d kept, lengths %+v; want 4999, 1, /16 only", len(lapsed), m.Len(), m.lens)
	}
}

func BenchmarkBannedMany64s(b *testing.B) {
	m := NewMemoryBans(nil)
	for i := range 10_000 {
		m.Add(Ban{IP: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i)}), 64)})
	}
	ip := addr("2001:db8:ffff::1")
	b.ReportAllocs()
	for b.Loop() {
		if m.Banned(ip, "good") {
			b.Fatal("banned")
		}
	}
}

// BenchmarkLoginSucceeded is what every allowed CONNECT pays: with no
// failures tracked, and with a full table.
func BenchmarkLoginSucceeded(b *testing.B) {
	for _, n := range []int{0, 65536} {
		b.Run(fmt.Sprint("tracked=", n), func(b *testing.B) {
			f := NewLoginFailures(FailureOptions{Limit: 5, Window: time.Minute})
			for i := range n {
				f.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
			}
			a := addr("192.0.2.1")
			b.ReportAllocs()
			for b.Loop() {
				f.Succeeded(a)
			}
		})
	}
}

// BenchmarkLoginFail is a refused login from ever new addresses, which
// keep the table full and evicting.
func BenchmarkLoginFail(b *testing.B) {
	f := NewLoginFailures(FailureOptions{Limit: 5, Window: time.Minute})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		f.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
}
