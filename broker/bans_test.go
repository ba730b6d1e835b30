package broker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/packets"
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

// TestBansRefuseConnect: a ban added at run time through Server.Bans
// refuses matching CONNECTs at once, even on a broker without
// authentication (0x8A for v5, 5 for v3), and only those.
func TestBansRefuseConnect(t *testing.T) {
	s := newTestServer(t)
	t.Cleanup(s.closeSecurity)
	code := func(version byte, id string) byte {
		c := &fakeConn{}
		cp := connectPkt(id)
		cp.Connect.Level = version
		s.Data(open(s, c), encode(version, cp))
		for _, p := range c.packetsOut(t, version) {
			if p.Type == packets.Connack {
				return p.ReasonCode
			}
		}
		t.Fatalf("%s: no CONNACK", id)
		return 0
	}
	if rc := code(packets.V5, "free"); rc != 0 {
		t.Fatalf("before any ban: %#x", rc)
	}
	if err := s.Bans().Add(limit.Ban{ClientID: "villain", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if rc := code(packets.V5, "villain"); rc != packets.Banned {
		t.Errorf("banned client ID, v5: %#x, want 0x8A", rc)
	}
	if rc := code(packets.V311, "villain"); rc != packets.V3NotAuthorized {
		t.Errorf("banned client ID, v3: %d, want 5", rc)
	}
	if rc := code(packets.V5, "bystander"); rc != 0 {
		t.Errorf("another client ID: %#x", rc)
	}
	if err := s.Bans().Add(limit.Ban{IP: netip.MustParsePrefix("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	if rc := code(packets.V5, "bystander"); rc != packets.Banned {
		t.Errorf("banned address: %#x, want 0x8A", rc)
	}
}
