package limit

import (
	"cmp"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Ban keeps an address range or a client ID out.
type Ban struct {
	// IP is the banned address, or range of addresses, for an IP ban; the
	// zero Prefix for a client ID ban. An address alone is a /32 or /128.
	IP netip.Prefix
	// ClientID is the banned client ID for a client ban; "" for an IP ban.
	ClientID string
	// Until is when the ban lapses; zero for never.
	Until time.Time
	// Reason is for the operator.
	Reason string
}

// Bans is a ban list. The in-memory MemoryBans is the one there is now; a
// list kept in the broker's store (so bans survive restarts and are
// shared by a cluster) will implement the same interface, keeping a copy
// in memory for Banned, which the broker calls on every CONNECT and must
// not block.
type Bans interface {
	// Add bans b.IP or b.ClientID, replacing an earlier ban of the same.
	Add(b Ban) error
	// Lift removes the ban of b.IP or b.ClientID, reporting whether there
	// was one.
	Lift(b Ban) (bool, error)
	// List returns the bans in force, client bans first, each kind sorted.
	List() ([]Ban, error)
	// Banned reports whether an address or a client ID is banned now.
	Banned(ip netip.Addr, clientID string) bool
}

var errBan = errors.New("limit: a ban needs exactly one of a valid IP prefix and a client ID")

// MemoryBans is a Bans kept in memory. Expired bans are ignored at once and
// dropped when the list is listed or has doubled since they last were, so
// automatic bans with a TTL cannot make it grow without bound. Safe for
// concurrent use.
type MemoryBans struct {
	now    func() time.Time
	mu     sync.RWMutex
	hosts  map[netip.Addr]Ban   // single addresses: one map lookup
	ranges map[netip.Prefix]Ban // wider prefixes
	// lens are the prefix lengths in ranges, with how many of each: Banned
	// looks an address up once per length, not once per range, since
	// automatic bans of IPv6 /64s can be many.
	lens    []rangeLen
	clients map[string]Ban
	sweepAt int       // size at which Add next drops expired bans
	lapsed  func(Ban) // told of each expired ban dropped, under mu
}

type rangeLen struct {
	bits int
	v6   bool
	n    int
}

// NewMemoryBans makes an empty ban list. now replaces time.Now for tests;
// nil means time.Now.
func NewMemoryBans(now func() time.Time) *MemoryBans {
	if now == nil {
		now = time.Now
	}
	return &MemoryBans{now: now, hosts: map[netip.Addr]Ban{}, ranges: map[netip.Prefix]Ban{}, clients: map[string]Ban{}, sweepAt: minSweep}
}

// normalize checks b and puts its prefix in canonical form: masked, IPv4
// as IPv4 even when written mapped into IPv6, no zone.
func normalize(b Ban) (Ban, error) {
	if b.IP.IsValid() == (b.ClientID != "") {
		return b, errBan
	}
	if b.IP.IsValid() {
		a, bits := b.IP.Addr(), b.IP.Bits()
		if a.Is4In6() {
			if bits < 96 {
				return b, errBan
			}
			a, bits = a.Unmap(), bits-96
		}
		b.IP = netip.PrefixFrom(a.WithZone(""), bits).Masked()
	}
	return b, nil
}

// Add implements Bans.
func (m *MemoryBans) Add(b Ban) error {
	b, err := normalize(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.len() >= m.sweepAt {
		m.sweep()
	}
	switch {
	case b.ClientID != "":
		m.clients[b.ClientID] = b
	case b.IP.IsSingleIP():
		m.hosts[b.IP.Addr()] = b
	default:
		if _, ok := m.ranges[b.IP]; !ok {
			m.countRange(b.IP, 1)
		}
		m.ranges[b.IP] = b
	}
	return nil
}

// countRange adds d to the count of p's length.
func (m *MemoryBans) countRange(p netip.Prefix, d int) {
	k := rangeLen{bits: p.Bits(), v6: p.Addr().Is6()}
	for i := range m.lens {
		if l := &m.lens[i]; l.bits == k.bits && l.v6 == k.v6 {
			if l.n += d; l.n == 0 {
				m.lens = slices.Delete(m.lens, i, i+1)
			}
			return
		}
	}
	k.n = d
	m.lens = append(m.lens, k)
}

// OnLapse has fn told, under the list's lock, of every expired ban the
// list drops, so that a copy kept elsewhere can drop it too. Call it
// before the list is used.
func (m *MemoryBans) OnLapse(fn func(Ban)) { m.lapsed = fn }

// Lift implements Bans.
func (m *MemoryBans) Lift(b Ban) (bool, error) {
	b, err := normalize(b)
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var old Ban
	var ok bool
	switch {
	case b.ClientID != "":
		old, ok = m.clients[b.ClientID]
		delete(m.clients, b.ClientID)
	case b.IP.IsSingleIP():
		old, ok = m.hosts[b.IP.Addr()]
		delete(m.hosts, b.IP.Addr())
	default:
		old, ok = m.ranges[b.IP]
		if ok {
			delete(m.ranges, b.IP)
			m.countRange(b.IP, -1)
		}
	}
	return ok && live(old, m.now()), nil
}

// List implements Bans.
func (m *MemoryBans) List() ([]Ban, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
	var clients, ips []Ban
	for _, b := range m.clients {
		clients = append(clients, b)
	}
	for _, b := range m.hosts {
		ips = append(ips, b)
	}
	for _, b := range m.ranges {
		ips = append(ips, b)
	}
	slices.SortFunc(clients, func(a, b Ban) int { return strings.Compare(a.ClientID, b.ClientID) })
	slices.SortFunc(ips, func(a, b Ban) int {
		if c := a.IP.Addr().Compare(b.IP.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.IP.Bits(), b.IP.Bits())
	})
	return append(clients, ips...), nil
}

// Banned implements Bans.
func (m *MemoryBans) Banned(ip netip.Addr, clientID string) bool {
	now := m.now()
	ip = ip.Unmap().WithZone("")
	m.mu.RLock()
	defer m.mu.RUnlock()
	if clientID != "" {
		if b, ok := m.clients[clientID]; ok && live(b, now) {
			return true
		}
	}
	if !ip.IsValid() {
		return false
	}
	if b, ok := m.hosts[ip]; ok && live(b, now) {
		return true
	}
	for _, l := range m.lens {
		if l.v6 != ip.Is6() {
			continue
		}
		p, _ := ip.Prefix(l.bits)
		if b, ok := m.ranges[p]; ok && live(b, now) {
			return true
		}
	}
	return false
}

// Empty reports whether the list holds no ban at all (lapsed ones count
// until swept), so a caller can skip looking up a client's address.
func (m *MemoryBans) Empty() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.len() == 0
}

// Len is the number of bans kept, expired ones not yet dropped included.
func (m *MemoryBans) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.len()
}

// Sweep drops expired bans now.
func (m *MemoryBans) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
}

func live(b Ban, now time.Time) bool { return b.Until.IsZero() || now.Before(b.Until) }

// minSweep is the smallest size at which Add sweeps.
const minSweep = 64

func (m *MemoryBans) len() int { return len(m.clients) + len(m.hosts) + len(m.ranges) }

// sweep drops expired bans; the caller holds mu.
func (m *MemoryBans) sweep() {
	now := m.now()
	lapsed := func(b Ban) bool {
		if live(b, now) {
			return false
		}
		if m.lapsed != nil {
			m.lapsed(b)
		}
		return true
	}
	maps.DeleteFunc(m.clients, func(_ string, b Ban) bool { return lapsed(b) })
	maps.DeleteFunc(m.hosts, func(_ netip.Addr, b Ban) bool { return lapsed(b) })
	maps.DeleteFunc(m.ranges, func(p netip.Prefix, b Ban) bool {
		if lapsed(b) {
			m.countRange(p, -1)
			return true
		}
		return false
	})
	m.sweepAt = max(minSweep, 2*m.len())
}
