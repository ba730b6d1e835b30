package hooks

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth"
)

func TestAuthCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := NewAuthCache(time.Minute, func() time.Time { return now })
	info := &auth.ConnectInfo{ClientID: "c", Username: "u", Password: []byte("p"), Addr: netip.MustParseAddr("10.0.0.1")}
	c.Put(info, auth.Result{Decision: auth.Allow, Username: "u"})
	if _, ok := c.Get(info); !ok {
		t.Fatal("miss right after Put")
	}
	// Every field is part of the key; the length prefixes keep "ab"+"c"
	// and "a"+"bc" apart.
	for _, other := range []auth.ConnectInfo{
		{ClientID: "c", Username: "u", Password: []byte("q"), Addr: info.Addr},
		{ClientID: "d", Username: "u", Password: []byte("p"), Addr: info.Addr},
		{ClientID: "c", Username: "u", Password: []byte("p"), Addr: netip.MustParseAddr("10.0.0.2")},
		{ClientID: "cu", Username: "", Password: []byte("p"), Addr: info.Addr},
	} {
		if _, ok := c.Get(&other); ok {
			t.Errorf("hit for %+v", other)
		}
	}
	c.Put(&auth.ConnectInfo{ClientID: "x"}, auth.Result{Decision: auth.Deny})
	if _, ok := c.Get(&auth.ConnectInfo{ClientID: "x"}); ok {
		t.Error("a refusal was cached")
	}
	tok := &auth.ConnectInfo{ClientID: "t"}
	c.Put(tok, auth.Result{Decision: auth.Allow, Expires: now.Add(10 * time.Second)})
	now = now.Add(11 * time.Second)
	if _, ok := c.Get(tok); ok {
		t.Error("hit past the result's own expiry")
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get(info); ok {
		t.Error("hit past the TTL")
	}
	for i := range maxCached + 10 {
		c.Put(&auth.ConnectInfo{ClientID: fmt.Sprint(i)}, auth.Result{Decision: auth.Allow})
	}
	if n := len(c.m); n > maxCached {
		t.Errorf("%d entries, bound %d", n, maxCached)
	}
	if NewAuthCache(0, nil) != nil {
		t.Error("a cache with no TTL")
	}
	var none *AuthCache
	none.Put(info, auth.Result{Decision: auth.Allow})
	if _, ok := none.Get(info); ok {
		t.Error("the nil cache hit")
	}
}
