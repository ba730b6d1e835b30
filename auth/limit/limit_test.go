package limit

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var addr = netip.MustParseAddr

func TestConnectRate(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	l := NewConnectRate(RateOptions{Rate: 2, Burst: 3, Now: clk.now})
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("burst connection %d refused", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("fourth connection in a burst of 3 allowed")
	}
	if !l.Allow(b) {
		t.Fatal("another address suffered for the first")
	}
	clk.add(499 * time.Millisecond)
	if l.Allow(a) {
		t.Fatal("a token came back early")
	}
	clk.add(time.Millisecond)
	if !l.Allow(a) || l.Allow(a) {
		t.Fatal("rate 2/s did not give exactly one token after 500 ms")
	}
	clk.add(time.Hour)
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("refill beyond burst: connection %d refused", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("bucket filled past its burst")
	}
}

func TestConnectRateAddresses(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	l := NewConnectRate(RateOptions{Rate: 1, Burst: 1, Now: clk.now})
	for _, same := range [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
		{"fe80::1%eth0", "fe80::1%eth1"},
	} {
		if !l.Allow(addr(same[0])) || l.Allow(addr(same[1])) {
			t.Errorf("%s and %s are limited separately", same[0], same[1])
		}
	}
	wide := NewConnectRate(RateOptions{Rate: 1, Burst: 1, IPv6Prefix: 128, Now: clk.now})
	if !wide.Allow(addr("2001:db8::1")) || !wide.Allow(addr("2001:db8::2")) {
		t.Error("IPv6Prefix 128 still groups addresses")
	}
}

// TestConnectRateBounded floods the limiter with distinct addresses: the
// table stays at its size, and an address that keeps connecting stays
// limited, because the clock spares what was used since it last passed.
func TestConnectRateBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	l := NewConnectRate(RateOptions{Rate: 0.001, Burst: 1, MaxAddrs: 1024, Now: clk.now})
	hot := addr("198.51.100.7")
	if !l.Allow(hot) {
		t.Fatal("first connection refused")
	}
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.Allow(ip) {
			t.Fatalf("new address %v refused", ip)
		}
		if i%100 == 0 && l.Allow(hot) {
			t.Fatalf("hot address let in after %d flood connections", i)
		}
	}
	if n := l.Len(); n > 1024 {
		t.Errorf("tracking %d addresses, limit 1024", n)
	}
}

func TestConnectRateAllocs(t *testing.T) {
	l := NewConnectRate(RateOptions{})
	a := addr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { l.Allow(a) }); n != 0 {
		t.Errorf("Allow allocates %v times", n)
	}
}

func TestFlood(t *testing.T) {
	ms := int64(time.Millisecond)
	f := Flood{MinPing: Every(time.Second, 1), MinPublish: Every(10*time.Millisecond, 3)}
	var s FloodState
	for _, tc := range []struct {
		ping bool
		at   int64 // ms
		want Violation
	}{
		{true, 0, NoViolation},
		{true, 999, PingFlood},
		{true, 1000, NoViolation},
		{true, 1500, PingFlood},
		{true, 2000, NoViolation},
		// Three publishes at once, then one per 10 ms.
		{false, 0, NoViolation},
		{false, 0, NoViolation},
		{false, 0, NoViolation},
		{false, 0, PublishFlood},
		{false, 10, NoViolation},
		{false, 11, PublishFlood},
		{false, 20, NoViolation},
		// A quiet spell earns the burst back, no more.
		{false, 1000, NoViolation},
		{false, 1000, NoViolation},
		{false, 1000, NoViolation},
		{false, 1000, PublishFlood},
	} {
		var got Violation
		if tc.ping {
			got = f.Ping(&s, tc.at*ms)
		} else {
			got = f.Publish(&s, tc.at*ms)
		}
		if got != tc.want {
			t.Errorf("ping=%v at %d ms: %v, want %v", tc.ping, tc.at, got, tc.want)
		}
	}
	var off Flood
	for i := range 100 {
		if off.Ping(&s, 0) != NoViolation || off.Publish(&s, int64(i)) != NoViolation {
			t.Fatal("the zero Flood limits")
		}
	}
}

func TestBans(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	m := NewMemoryBans(clk.now)
	var _ Bans = m
	var _ auth.BanChecker = m
	for _, b := range []Ban{
		{ClientID: "evil"},
		{IP: netip.MustParsePrefix("192.0.2.1/32"), Until: clk.now().Add(time.Minute), Reason: "flood"},
		{IP: netip.MustParsePrefix("198.51.100.77/24")},
		{IP: netip.MustParsePrefix("2001:db8::/48"), Until: clk.now().Add(time.Hour)},
	} {
		if err := m.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ip, client string
		want       bool
	}{
		{"203.0.113.1", "evil", true},
		{"203.0.113.1", "good", false},
		{"192.0.2.1", "good", true},
		{"::ffff:192.0.2.1", "good", true},
		{"192.0.2.2", "", false},
		{"198.51.100.1", "", true},
		{"2001:db8:0:ffff::1", "", true},
		{"2001:db8:1::1", "", false},
		{"", "", false},
	} {
		var ip netip.Addr
		if tc.ip != "" {
			ip = addr(tc.ip)
		}
		if got := m.Banned(ip, tc.client); got != tc.want {
			t.Errorf("Banned(%s, %q) = %v, want %v", tc.ip, tc.client, got, tc.want)
		}
	}
	list, _ := m.List()
	if fmt.Sprint(banKeys(list)) != "[evil 192.0.2.1/32 198.51.100.0/24 2001:db8::/48]" {
		t.Errorf("List() = %v", banKeys(list))
	}
	// Expiry.
	clk.add(time.Minute)
	if m.Banned(addr("192.0.2.1"), "") {
		t.Error("expired ban still in force")
	}
	if ok, _ := m.Lift(Ban{IP: netip.MustParsePrefix("192.0.2.1/32")}); ok {
		t.Error("lifted an expired ban")
	}
	list, _ = m.List()
	if len(list) != 3 {
		t.Errorf("expired ban listed: %v", banKeys(list))
	}
	// Lifting.
	if ok, err := m.Lift(Ban{ClientID: "evil"}); !ok || err != nil || m.Banned(netip.Addr{}, "evil") {
		t.Errorf("Lift client: %v %v", ok, err)
	}
	if ok, _ := m.Lift(Ban{IP: netip.MustParsePrefix("198.51.100.0/24")}); !ok || m.Banned(addr("198.51.100.1"), "") {
		t.Error("Lift range failed")
	}
	if ok, _ := m.Lift(Ban{ClientID: "nobody"}); ok {
		t.Error("lifted a ban that never was")
	}
	// Replacing a ban.
	m.Add(Ban{IP: netip.MustParsePrefix("2001:db8::/48")})
	clk.add(2 * time.Hour)
	if !m.Banned(addr("2001:db8::1"), "") {
		t.Error("a permanent ban did not replace a temporary one")
	}
	for _, bad := range []Ban{{}, {ClientID: "x", IP: netip.MustParsePrefix("10.0.0.0/8")}, {IP: netip.MustParsePrefix("::ffff:0:0/90")}} {
		if err := m.Add(bad); err == nil {
			t.Errorf("Add(%+v) accepted", bad)
		}
		if _, err := m.Lift(bad); err == nil {
			t.Errorf("Lift(%+v) accepted", bad)
		}
	}
}

// TestBansBounded: bans that expire do not pile up however many are
// added.
func TestBansBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	m := NewMemoryBans(clk.now)
	for i := range 10_000 {
		m.Add(Ban{ClientID: fmt.Sprint(i), Until: clk.now().Add(time.Second)})
		clk.add(100 * time.Millisecond)
	}
	if n := m.len(); n > 2*minSweep {
		t.Errorf("%d bans kept, at most 10 alive", n)
	}
}

func banKeys(l []Ban) []string {
	var out []string
	for _, b := range l {
		if b.ClientID != "" {
			out = append(out, b.ClientID)
		} else {
			out = append(out, b.IP.String())
		}
	}
	return out
}

func BenchmarkConnectRate(b *testing.B) {
	l := NewConnectRate(RateOptions{Rate: 1e9, Burst: 1})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
}

func BenchmarkBanned(b *testing.B) {
	m := NewMemoryBans(nil)
	for i := range 1000 {
		m.Add(Ban{IP: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32)})
		m.Add(Ban{ClientID: fmt.Sprint("c", i)})
	}
	m.Add(Ban{IP: netip.MustParsePrefix("172.16.0.0/12")})
	ip := addr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if m.Banned(ip, "good") {
			b.Fatal("banned")
		}
	}
}
