package storetest

import (
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/store"
)

// RunBans is the conformance suite of store.Bans, for stores that are a
// store.BanStore.
func RunBans(t *testing.T, open Opener, persistent bool) {
	clock := NewClock()
	o := store.Options{Clock: clock.Now}
	dir := t.TempDir()
	s := open(t, dir, o)
	bs, ok := s.(store.BanStore)
	if !ok {
		s.Close()
		t.Fatalf("%T is not a store.BanStore", s)
	}
	b := bs.Bans()
	list := func(b store.Bans) map[string]store.Ban {
		t.Helper()
		got := map[string]store.Ban{}
		var prev string
		if err := b.Range(func(k string, ban store.Ban) bool {
			if k <= prev && prev != "" {
				t.Errorf("Range not in key order: %q after %q", k, prev)
			}
			prev = k
			got[k] = ban
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	soon := clock.Now().Add(10 * time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Put("client:a", store.Ban{Reason: "forever"}))
	must(b.Put("ip:10.0.0.0/8", store.Ban{Until: soon, Reason: "flood"}))
	must(b.Put("client:b", store.Ban{Until: soon, Reason: "first"}))
	must(b.Put("client:b", store.Ban{Until: soon.Add(time.Minute), Reason: "replaced"}))
	must(b.Put("client:gone", store.Ban{Until: soon}))
	must(b.Delete("client:gone"))
	must(b.Delete("client:never-there"))
	got := list(b)
	if len(got) != 3 || got["client:a"].Reason != "forever" || !got["client:a"].Until.IsZero() ||
		got["client:b"].Reason != "replaced" || !got["ip:10.0.0.0/8"].Until.Equal(soon) {
		t.Fatalf("bans %+v", got)
	}
	n := 0
	must(b.Range(func(string, store.Ban) bool { n++; return false }))
	if n != 1 {
		t.Errorf("Range went on after false: %d calls", n)
	}
	clock.Add(10 * time.Second)
	got = list(b)
	if _, ok := got["ip:10.0.0.0/8"]; ok || len(got) != 2 {
		t.Errorf("after the first ban lapsed: %+v", got)
	}
	if !persistent {
		s.Close()
		return
	}
	must(s.Close())
	s = open(t, dir, o)
	defer s.Close()
	got = list(s.(store.BanStore).Bans())
	if len(got) != 2 || got["client:b"].Reason != "replaced" || !got["client:b"].Until.Equal(soon.Add(time.Minute)) {
		t.Errorf("after a restart: %+v", got)
	}
}
