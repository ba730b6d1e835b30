package broker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/store"
)

// TestLoginBansBounded: a full ban list takes no more failed-login bans
// until bans lapse; lapsed bans leave the store too, so neither grows
// without bound under a flood of addresses.
func TestLoginBansBounded(t *testing.T) {
	s := newTestServer(t)
	defer s.closeSecurity()
	sb := s.sec.bans.(*storedBans)
	rec := &deletions{Bans: sb.st}
	sb.st = rec
	until := time.Now().Add(1500 * time.Millisecond) // time to fill the list, under -race too
	for i := range maxLoginBans {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if err := s.sec.bans.Add(limit.Ban{IP: netip.PrefixFrom(ip, 32), Until: until}); err != nil {
			t.Fatal(err)
		}
	}
	fail := func(a string) {
		info := &auth.ConnectInfo{Addr: netip.MustParseAddr(a)}
		for range s.cfg.LoginFailLimit {
			s.loginFailed(info, &auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials})
		}
	}
	fail("192.0.2.1")
	if s.sec.bans.Banned(netip.MustParseAddr("192.0.2.1"), "") {
		t.Fatal("banned past a full list")
	}
	time.Sleep(time.Until(until) + 10*time.Millisecond)
	s.sec.sweptAt.Store(0) // as if the last sweep were a second ago
	fail("192.0.2.2")
	if !s.sec.bans.Banned(netip.MustParseAddr("192.0.2.2"), "") {
		t.Fatal("not banned once the full list's bans lapsed")
	}
	if l := sb.Len(); l != 1 || rec.n != maxLoginBans {
		t.Errorf("%d bans in the list, %d lapsed ones deleted from the store; want 1 and %d", l, rec.n, maxLoginBans)
	}
}

// deletions counts the deletes that reach the store's ban list.
type deletions struct {
	store.Bans
	n int
}

func (d *deletions) Delete(key string) error { d.n++; return d.Bans.Delete(key) }
