package memory

import (
	"slices"
	"sync"

	"github.com/coolpy7/coolpy7/store"
)

// bans is the ban list of a memory Store; made on first use.
type bans struct {
	s    *Store
	once sync.Once
	mu   sync.Mutex
	m    map[string]store.Ban
}

// Bans implements store.BanStore.
func (s *Store) Bans() store.Bans {
	s.banList.once.Do(func() { s.banList.s, s.banList.m = s, map[string]store.Ban{} })
	return &s.banList
}

func (b *bans) Put(key string, ban store.Ban) error {
	if b.s.closed.Load() {
		return store.ErrClosed
	}
	b.mu.Lock()
	b.m[key] = ban
	b.mu.Unlock()
	return nil
}

func (b *bans) Delete(key string) error {
	if b.s.closed.Load() {
		return store.ErrClosed
	}
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
	return nil
}

func (b *bans) Range(fn func(key string, ban store.Ban) bool) error {
	if b.s.closed.Load() {
		return store.ErrClosed
	}
	now := b.s.o.Clock()
	b.mu.Lock()
	keys := make([]string, 0, len(b.m))
	for k, ban := range b.m {
		if ban.Until.IsZero() || now.Before(ban.Until) {
			keys = append(keys, k)
		} else {
			delete(b.m, k)
		}
	}
	slices.Sort(keys)
	list := make([]store.Ban, len(keys))
	for i, k := range keys {
		list[i] = b.m[k]
	}
	b.mu.Unlock()
	for i, k := range keys {
		if !fn(k, list[i]) {
			break
		}
	}
	return nil
}
