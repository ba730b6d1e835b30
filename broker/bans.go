package broker

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/store"
)

// storedBans is the broker's ban list: a limit.MemoryBans answers Banned
// on every CONNECT without touching the store, and every change is written
// through to the store's Bans, from which the list is loaded at start, so
// bans (the -dt ones with their TTL included) outlive a restart.
type storedBans struct {
	*limit.MemoryBans
	st store.Bans
}

// openBans loads the ban list kept in the store, or keeps it in memory
// only when the store keeps none.
func openBans(st store.Store) (limit.Bans, error) {
	mem := limit.NewMemoryBans(nil)
	bs, ok := st.(store.BanStore)
	if !ok {
		return mem, nil
	}
	b := &storedBans{MemoryBans: mem, st: bs.Bans()}
	// The store keeps lapsed bans until deleted: without this, automatic
	// bans would pile up in it (in memory, with the memory store).
	mem.OnLapse(func(lb limit.Ban) { _ = b.st.Delete(banKey(lb)) })
	var bad error
	err := b.st.Range(func(key string, sb store.Ban) bool {
		ban, err := banOf(key, sb)
		if err == nil {
			err = mem.Add(ban)
		}
		bad = errors.Join(bad, err)
		return true
	})
	return b, errors.Join(err, bad)
}

// banKey is how a ban is keyed in the store: "client:" and the client ID,
// or "ip:" and the prefix.
func banKey(b limit.Ban) string {
	if b.ClientID != "" {
		return "client:" + b.ClientID
	}
	return "ip:" + b.IP.Masked().String()
}

func banOf(key string, sb store.Ban) (limit.Ban, error) {
	b := limit.Ban{Until: sb.Until, Reason: sb.Reason}
	switch {
	case strings.HasPrefix(key, "client:"):
		b.ClientID = key[len("client:"):]
	case strings.HasPrefix(key, "ip:"):
		p, err := netip.ParsePrefix(key[len("ip:"):])
		if err != nil {
			return b, err
		}
		b.IP = p
	default:
		return b, errors.New("broker: unknown ban key " + key)
	}
	return b, nil
}

// Add bans b in memory (which checks it) and in the store.
func (s *storedBans) Add(b limit.Ban) error {
	if err := s.MemoryBans.Add(b); err != nil {
		return err
	}
	return s.st.Put(banKey(b), store.Ban{Until: b.Until, Reason: b.Reason})
}

// Lift lifts the ban in memory and in the store.
func (s *storedBans) Lift(b limit.Ban) (bool, error) {
	ok, err := s.MemoryBans.Lift(b)
	if err != nil || !ok {
		return ok, err
	}
	return true, s.st.Delete(banKey(b))
}
