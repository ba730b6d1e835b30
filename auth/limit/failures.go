package limit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// FailureOptions configure LoginFailures.
type FailureOptions struct {
	// Limit is how many failed logins within Window get an address banned.
	Limit  int
	Window time.Duration
	// MaxAddrs bounds how many addresses are tracked (about 60 bytes
	// each), default 65536; an address seen once, or not for a while,
	// makes room for a new one.
	MaxAddrs int
	// IPv6Prefix is the prefix length IPv6 addresses are counted (and
	// banned) by, default 64, as for ConnectRate.
	IPv6Prefix int
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// LoginFailures counts failed logins per address, the original's
// "ipblocker": Fail reports when an address has failed Limit times within
// Window, and Succeeded forgets its count. It keeps the sharded table with
// clock eviction of ConnectRate, filled only by failures, so memory stays
// bounded under a flood of distinct addresses (which may then each get a
// fresh count) and the addresses that keep failing stay tracked. Safe for
// concurrent use.
type LoginFailures struct {
	limit  int32
	window int64
	now    func() time.Time
	epoch  time.Time
	// tracked counts the addresses in the table, so that a successful
	// login, the common case, costs one atomic load while none failed.
	tracked atomic.Int64
	t       table[failures]
}

type failures struct {
	n     int32
	since int64 // ns since epoch of the window's first failure
}

// NewLoginFailures makes a LoginFailures; o.Limit and o.Window must be
// positive.
func NewLoginFailures(o FailureOptions) *LoginFailures {
	if o.Now == nil {
		o.Now = time.Now
	}
	f := &LoginFailures{limit: int32(o.Limit), window: int64(o.Window), now: o.Now}
	f.epoch = f.now()
	// Not preallocated: most brokers see few failures, and this one is on
	// by default.
	f.t.init(o.MaxAddrs, o.IPv6Prefix, false)
	return f
}

// Fail counts a failed login from addr. When it is the Limit-th within
// Window it returns the prefix to ban (the address, or its IPv6 prefix)
// and true, and the count starts again.
func (f *LoginFailures) Fail(addr netip.Addr) (netip.Prefix, bool) {
	k := f.t.key(addr)
	now := int64(f.now().Sub(f.epoch))
	s := f.t.shard(k)
	n := len(s.slots)
	e, ok := s.get(k)
	f.tracked.Add(int64(len(s.slots) - n)) // 0 when a new one evicted an old one
	if !ok || now-e.v.since >= f.window {
		e.v = failures{since: now}
	}
	e.v.n++
	full := e.v.n >= f.limit
	if full {
		s.remove(k)
		f.tracked.Add(-1)
	}
	s.mu.Unlock()
	if !full {
		return netip.Prefix{}, false
	}
	a, bits := netip.AddrFrom16(k).Unmap(), 32
	if a.Is6() {
		bits = f.t.prefix
	}
	return netip.PrefixFrom(a, bits), true
}

// Succeeded forgets addr's failures.
func (f *LoginFailures) Succeeded(addr netip.Addr) {
	if f.tracked.Load() == 0 {
		return
	}
	k := f.t.key(addr)
	s := f.t.shard(k)
	if s.remove(k) {
		f.tracked.Add(-1)
	}
	s.mu.Unlock()
}

// Len is how many addresses are tracked.
func (f *LoginFailures) Len() int { return f.t.len() }
