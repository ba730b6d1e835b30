package hooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/coolpy7/coolpy7/auth"
)

// AuthCache remembers an external service's "allow" for a login (client
// ID, username, password, address) for a while, so reconnecting clients
// do not cost a round trip each, and keep working through a short outage.
// Refusals are never cached: a wrong password always asks the service.
// Keys are an HMAC under a per-process random key, so the cache holds no
// passwords. Safe for concurrent use; the nil *AuthCache caches nothing.
type AuthCache struct {
	ttl time.Duration
	key [32]byte
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]cached
}

type cached struct {
	r     auth.Result
	until time.Time
}

// maxCached bounds the cache: past it, expired entries are dropped, and if
// that is not enough, everything (the cost is one round trip per client).
const maxCached = 1 << 16

// NewAuthCache makes a cache keeping answers for ttl; nil when ttl <= 0.
func NewAuthCache(ttl time.Duration, now func() time.Time) *AuthCache {
	if ttl <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	c := &AuthCache{ttl: ttl, now: now, m: make(map[[sha256.Size]byte]cached)}
	rand.Read(c.key[:])
	return c
}

func (c *AuthCache) sum(info *auth.ConnectInfo) [sha256.Size]byte {
	h := hmac.New(sha256.New, c.key[:])
	for _, f := range [][]byte{[]byte(info.ClientID), []byte(info.Username), info.Password, info.Addr.AsSlice()} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f))
		h.Write(n[:])
		h.Write(f)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// Get returns a cached allow for info.
func (c *AuthCache) Get(info *auth.ConnectInfo) (auth.Result, bool) {
	if c == nil {
		return auth.Result{}, false
	}
	k := c.sum(info)
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.until) || !e.r.Expires.IsZero() && !c.now().Before(e.r.Expires) {
		return auth.Result{}, false
	}
	return e.r, true
}

// Put caches r if it is an allow.
func (c *AuthCache) Put(info *auth.ConnectInfo, r auth.Result) {
	if c == nil || r.Decision != auth.Allow {
		return
	}
	k := c.sum(info)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCached {
			clear(c.m)
		}
	}
	c.m[k] = cached{r: r, until: now.Add(c.ttl)}
}
