package limit

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// table is a fixed-size map from an address to per-address state V, in
// shards with clock (second chance) eviction: what ConnectRate and
// LoginFailures keep, bounded whatever the number of distinct addresses.
type table[V any] struct {
	seed   maphash.Seed
	prefix int // IPv6 addresses are keyed by this prefix length
	shards [shardCount]shard[V]
}

const shardCount = 32

type shard[V any] struct {
	mu    sync.Mutex
	index map[[16]byte]int32
	slots []slot[V]
	max   int
	hand  int // the clock hand: next slot to consider evicting
}

type slot[V any] struct {
	key [16]byte
	ref bool // used again since the hand last passed
	v   V
}

// init sizes t for maxAddrs addresses (65536 when not positive) and keys
// IPv6 addresses by their first prefix bits (64 when out of range);
// prealloc makes the room at once so that no later call allocates, at the
// price of the memory up front.
func (t *table[V]) init(maxAddrs, prefix int, prealloc bool) {
	if maxAddrs <= 0 {
		maxAddrs = 65536
	}
	if prefix <= 0 || prefix > 128 {
		prefix = 64 // one host owns a /64
	}
	t.seed = maphash.MakeSeed()
	t.prefix = prefix
	per := max(1, (maxAddrs+shardCount-1)/shardCount)
	for i := range t.shards {
		s := &t.shards[i]
		s.max = per
		if prealloc {
			s.index = make(map[[16]byte]int32, per)
			s.slots = make([]slot[V], 0, per)
		} else {
			s.index = map[[16]byte]int32{}
		}
	}
}

// key is the address as tracked: IPv4 (mapped or not) as itself, IPv6
// cut to the table's prefix, the zone dropped.
func (t *table[V]) key(addr netip.Addr) [16]byte {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(t.prefix); err == nil {
			addr = p.Addr()
		}
	}
	return addr.As16()
}

// shard is k's shard, locked; the caller unlocks it.
func (t *table[V]) shard(k [16]byte) *shard[V] {
	s := &t.shards[maphash.Comparable(t.seed, k)%shardCount]
	s.mu.Lock()
	return s
}

// get returns k's slot, making one with the zero V when k is new, and
// whether k was there. A new key is not marked used: it is spared by the
// clock hand only once it comes back, so a flood of keys seen once evicts
// itself, not the keys that keep coming and so matter.
func (s *shard[V]) get(k [16]byte) (*slot[V], bool) {
	if i, ok := s.index[k]; ok {
		b := &s.slots[i]
		b.ref = true
		return b, true
	}
	i := s.admit()
	s.index[k] = i
	s.slots[i] = slot[V]{key: k}
	return &s.slots[i], false
}

// admit finds a slot for a new key: a free one, or else the first the
// clock hand finds not used since it last passed.
func (s *shard[V]) admit() int32 {
	if len(s.slots) < s.max {
		s.slots = append(s.slots, slot[V]{})
		return int32(len(s.slots) - 1)
	}
	for {
		b := &s.slots[s.hand]
		if !b.ref {
			delete(s.index, b.key)
			i := int32(s.hand)
			s.hand = (s.hand + 1) % len(s.slots)
			return i
		}
		b.ref = false
		s.hand = (s.hand + 1) % len(s.slots)
	}
}

// remove forgets k, moving the last slot into its place, and reports
// whether it was there.
func (s *shard[V]) remove(k [16]byte) bool {
	i, ok := s.index[k]
	if !ok {
		return false
	}
	delete(s.index, k)
	last := int32(len(s.slots) - 1)
	if i != last {
		s.slots[i] = s.slots[last]
		s.index[s.slots[i].key] = i
	}
	s.slots[last] = slot[V]{}
	s.slots = s.slots[:last]
	if s.hand >= len(s.slots) {
		s.hand = 0
	}
	return true
}

// len is how many addresses are tracked.
func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}
