package broker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/pebble"
)

// TestStoredBans: bans written through to a store are there after a
// restart, lapsed ones are not, lifted ones neither.
func TestStoredBans(t *testing.T) {
	dir := t.TempDir()
	st, err := pebble.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openBans(st)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.7")
	for _, ban := range []limit.Ban{
		{ClientID: "flooder", Until: time.Now().Add(time.Hour), Reason: "publish flood"},
		{IP: netip.MustParsePrefix("192.0.2.0/24")},
		{ClientID: "lapsed", Until: time.Now().Add(50 * time.Millisecond)},
		{ClientID: "lifted"},
	} {
		if err := b.Add(ban); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := b.Lift(limit.Ban{ClientID: "lifted"}); !ok || err != nil {
		t.Fatalf("Lift: %v %v", ok, err)
	}
	if err := b.Add(limit.Ban{ClientID: "x/y", IP: netip.MustParsePrefix("10.0.0.0/8")}); err == nil {
		t.Error("a ban of both an address and a client ID was taken")
	}
	st.Close()
	time.Sleep(60 * time.Millisecond)

	st, err = pebble.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err = openBans(st)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !b.Banned(netip.Addr{}, "flooder"):
		t.Error("client ban lost in the restart")
	case !b.Banned(ip, "someone"):
		t.Error("address range ban lost in the restart")
	case b.Banned(netip.Addr{}, "lapsed"):
		t.Error("lapsed ban back after the restart")
	case b.Banned(netip.Addr{}, "lifted"):
		t.Error("lifted ban back after the restart")
	}
	l, _ := b.List()
	if len(l) != 2 {
		t.Errorf("List after the restart: %+v", l)
	}
}
