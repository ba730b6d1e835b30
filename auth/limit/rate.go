// Package limit holds the broker's anti-abuse primitives: a per-address
// connect rate limiter, the original Coolpy7's flood rules (minimum
// PINGREQ and PUBLISH intervals) and a ban list.
package limit

import (
	"net/netip"
	"time"
)

// RateOptions configure a ConnectRate. Zero values take the defaults.
type RateOptions struct {
	// Rate is how many connections per second an address may open in the
	// long run; default 1.
	Rate float64
	// Burst is how many it may open at once; default 10.
	Burst int
	// MaxAddrs bounds how many addresses are tracked, and so the memory
	// used (about 100 bytes each); default 65536. When full, an address
	// seen only once, or not for a while, makes room. Under a flood from
	// more distinct addresses than this, those addresses may come back to
	// a fresh allowance, but memory stays bounded, and addresses that keep
	// connecting stay tracked.
	MaxAddrs int
	// IPv6Prefix is the prefix length IPv6 addresses are limited by;
	// default 64, since one host commonly owns a whole /64 and could
	// otherwise use a new address for every connection.
	IPv6Prefix int
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// ConnectRate limits how often each address may connect: a token bucket
// per address, in a fixed-size table of shards with clock (second chance)
// eviction. Safe for concurrent use; Allow takes one shard's lock and does
// not allocate.
type ConnectRate struct {
	rate  float64 // tokens per nanosecond
	burst float64
	now   func() time.Time
	epoch time.Time
	t     table[bucket]
}

type bucket struct {
	tokens float64
	last   int64 // ns since epoch when tokens was computed
}

// NewConnectRate makes a ConnectRate.
func NewConnectRate(o RateOptions) *ConnectRate {
	if o.Rate <= 0 {
		o.Rate = 1
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &ConnectRate{rate: o.Rate / 1e9, burst: float64(o.Burst), now: o.Now}
	l.epoch = l.now()
	l.t.init(o.MaxAddrs, o.IPv6Prefix, true)
	return l
}

// Allow reports whether addr may open a connection now, and if so counts
// it.
func (l *ConnectRate) Allow(addr netip.Addr) bool {
	k := l.t.key(addr)
	now := int64(l.now().Sub(l.epoch))
	s := l.t.shard(k)
	defer s.mu.Unlock()
	e, ok := s.get(k)
	b := &e.v
	if !ok {
		*b = bucket{tokens: l.burst, last: now}
	}
	b.tokens = min(l.burst, b.tokens+float64(now-b.last)*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Len is how many addresses are tracked.
func (l *ConnectRate) Len() int { return l.t.len() }
