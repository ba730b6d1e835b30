// Package limit holds the broker's anti-abuse primitives: a per-address
// connect rate limiter, the original Coolpy7's flood rules (minimum
// PINGREQ and PUBLISH intervals) and a ban list.
package limit

import (
	"hash/maphash"
	"net/netip"
	"sync"
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
	rate   float64 // tokens per nanosecond
	burst  float64
	prefix int
	now    func() time.Time
	epoch  time.Time
	seed   maphash.Seed
	shards [shardCount]rateShard
}

const shardCount = 32

type rateShard struct {
	mu    sync.Mutex
	index map[[16]byte]int32
	slots []bucket
	hand  int // the clock hand: next slot to consider evicting
}

type bucket struct {
	key    [16]byte
	tokens float64
	last   int64 // ns since epoch when tokens was computed
	ref    bool  // used again since the hand last passed
}

// NewConnectRate makes a ConnectRate.
func NewConnectRate(o RateOptions) *ConnectRate {
	if o.Rate <= 0 {
		o.Rate = 1
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.MaxAddrs <= 0 {
		o.MaxAddrs = 65536
	}
	if o.IPv6Prefix <= 0 || o.IPv6Prefix > 128 {
		o.IPv6Prefix = 64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &ConnectRate{rate: o.Rate / 1e9, burst: float64(o.Burst), prefix: o.IPv6Prefix, now: o.Now, seed: maphash.MakeSeed()}
	l.epoch = l.now()
	per := max(1, (o.MaxAddrs+shardCount-1)/shardCount)
	for i := range l.shards {
		l.shards[i].index = make(map[[16]byte]int32, per)
		l.shards[i].slots = make([]bucket, 0, per)
	}
	return l
}

// Allow reports whether addr may open a connection now, and if so counts
// it.
func (l *ConnectRate) Allow(addr netip.Addr) bool {
	k := l.key(addr)
	now := int64(l.now().Sub(l.epoch))
	s := &l.shards[maphash.Comparable(l.seed, k)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[k]
	if !ok {
		i = s.admit(k)
		s.slots[i] = bucket{key: k, tokens: l.burst, last: now}
	}
	b := &s.slots[i]
	// A new address is not marked used: it is spared by the clock hand
	// only once it comes back. A flood of addresses seen once then evicts
	// itself, not the addresses that keep connecting and so matter.
	b.ref = ok
	b.tokens = min(l.burst, b.tokens+float64(now-b.last)*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// key is the address as tracked: IPv4 (mapped or not) as itself, IPv6
// cut to its prefix, the zone dropped.
func (l *ConnectRate) key(addr netip.Addr) [16]byte {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(l.prefix); err == nil {
			addr = p.Addr()
		}
	}
	return addr.As16()
}

// admit finds a slot for a new key: a free one, or else the first the
// clock hand finds not used since it last passed.
func (s *rateShard) admit(k [16]byte) int32 {
	if len(s.slots) < cap(s.slots) {
		s.slots = s.slots[:len(s.slots)+1]
		i := int32(len(s.slots) - 1)
		s.index[k] = i
		return i
	}
	for {
		b := &s.slots[s.hand]
		if !b.ref {
			delete(s.index, b.key)
			i := int32(s.hand)
			s.index[k] = i
			s.hand = (s.hand + 1) % len(s.slots)
			return i
		}
		b.ref = false
		s.hand = (s.hand + 1) % len(s.slots)
	}
}

// Len is how many addresses are tracked.
func (l *ConnectRate) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}
