// Package passwd authenticates clients against a password file of bcrypt
// hashes, one "username:hash" a line, like mosquitto_passwd's but with
// bcrypt ($2a$, $2b$ or $2y$). Lines that are empty or start with '#' are
// ignored (and not kept by Save).
//
// bcrypt is slow on purpose (tens of milliseconds at the default cost), so
// a successful check is remembered for a while: a client reconnecting with
// the same password is let in at the cost of an HMAC. The cache never
// holds a password, only an HMAC-SHA-256 of it under a key made at random
// when the File is created, next to the hash it was checked against; a
// failed check is never cached, so guessing always pays for bcrypt.
package passwd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/internal/filewatch"
)

// maxPassword is the most bcrypt reads of a password. Longer ones are
// refused rather than silently cut, which would let anyone in who knows
// the first 72 bytes.
const maxPassword = 72

// DefaultCacheTTL is how long a successful check is remembered unless
// WithCacheTTL says otherwise.
const DefaultCacheTTL = 5 * time.Minute

// File is a password file and an auth.QuickAuthenticator over it: users it
// lists are allowed with their password and refused with any other;
// others are not its business (NoOpinion). It is safe for concurrent use.
type File struct {
	path string
	cost int
	ttl  time.Duration
	now  func() time.Time

	// users maps a username to its bcrypt hash. A change replaces the
	// whole map, so checks read it without a lock.
	users atomic.Pointer[map[string]string]

	mu    sync.Mutex // serializes Add, Remove, Save and Reload
	stamp filewatch.Stamp

	macs  sync.Pool // of *macer
	cmu   sync.RWMutex
	cache map[string]entry // by username
}

// entry remembers that the password with this HMAC matched hash.
type entry struct {
	mac     [sha256.Size]byte
	hash    string
	expires time.Time
}

// macer computes HMAC-SHA-256 under the File's key. It carries its own
// output buffer because Sum through an interface makes the slice it is
// given escape: a local array would cost an allocation per check.
type macer struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// Option configures a File.
type Option func(*File)

// WithCacheTTL sets how long a successful check is remembered; 0 turns
// the cache off.
func WithCacheTTL(d time.Duration) Option { return func(f *File) { f.ttl = d } }

// WithCost sets the bcrypt cost of hashes Add makes (bcrypt.DefaultCost
// unless set).
func WithCost(cost int) Option { return func(f *File) { f.cost = cost } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(f *File) { f.now = now } }

// New makes an empty File that Save will write to path.
func New(path string, opts ...Option) *File {
	f := &File{path: path, cost: bcrypt.DefaultCost, ttl: DefaultCacheTTL, now: time.Now, cache: map[string]entry{}}
	for _, o := range opts {
		o(f)
	}
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand documents so)
	f.macs.New = func() any { return &macer{h: hmac.New(sha256.New, key)} }
	f.users.Store(&map[string]string{})
	return f
}

// Load reads the password file at path.
func Load(path string, opts ...Option) (*File, error) {
	f := New(path, opts...)
	if _, err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads the file; the caller holds mu or owns f. The stamp is taken
// before reading so that a write racing with the read is seen next time.
func (f *File) load() (bool, error) {
	st, err := filewatch.Of(f.path)
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	users, err := parse(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.path, err)
	}
	f.users.Store(&users)
	f.stamp = st
	f.cmu.Lock()
	// A changed hash already fails the cache's comparison; dropping gone
	// users keeps the cache no bigger than the file.
	maps.DeleteFunc(f.cache, func(u string, _ entry) bool { _, ok := users[u]; return !ok })
	f.cmu.Unlock()
	return true, nil
}

func parse(data []byte) (map[string]string, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			continue
		}
		user, h, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			return nil, fmt.Errorf("line %d: want username:hash", n)
		case users[user] != "":
			return nil, fmt.Errorf("line %d: %q listed twice", n, user)
		}
		if _, err := bcrypt.Cost([]byte(h)); err != nil || !strings.HasPrefix(h, "$2") {
			return nil, fmt.Errorf("line %d: %q has no bcrypt hash", n, user)
		}
		users[user] = h
	}
	return users, sc.Err()
}

// Reload reads the file again if it changed since it was last read or
// saved. A file that no longer parses leaves the users in force.
func (f *File) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if changed, err = f.stamp.Changed(f.path); !changed || err != nil {
		return false, err
	}
	return f.load()
}

// Watch reloads the file whenever it changes, checking every interval,
// until ctx is done; errors go to onErr, which may be nil.
func (f *File) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	filewatch.Watch(ctx, every, f.Reload, onErr)
}

// Check reports whether password is user's: Allow or Deny for a user in
// the file, NoOpinion for anyone else. Unless the answer is cached it
// costs a bcrypt comparison, which blocks for as long as the hash's cost
// says; AuthenticateQuick is the non-blocking variant.
func (f *File) Check(user string, password []byte) auth.Decision {
	d, mac, ok := f.quick(user, password)
	if ok {
		return d
	}
	h := (*f.users.Load())[user]
	if h == "" {
		return auth.NoOpinion // removed meanwhile
	}
	if bcrypt.CompareHashAndPassword([]byte(h), password) != nil {
		return auth.Deny
	}
	if f.ttl > 0 {
		f.cmu.Lock()
		f.cache[user] = entry{mac: mac, hash: h, expires: f.now().Add(f.ttl)}
		f.cmu.Unlock()
	}
	return auth.Allow
}

// quick answers what can be answered without bcrypt; otherwise ok is
// false and mac is the password's HMAC, for the cache.
func (f *File) quick(user string, password []byte) (d auth.Decision, mac [sha256.Size]byte, ok bool) {
	h := (*f.users.Load())[user]
	switch {
	case h == "":
		return auth.NoOpinion, mac, true
	case len(password) == 0 || len(password) > maxPassword:
		return auth.Deny, mac, true
	}
	if f.ttl <= 0 {
		return auth.NoOpinion, mac, false
	}
	m := f.macs.Get().(*macer)
	m.h.Reset()
	m.h.Write(password)
	copy(mac[:], m.h.Sum(m.sum[:0]))
	f.macs.Put(m)
	f.cmu.RLock()
	e, hit := f.cache[user]
	f.cmu.RUnlock()
	if hit && e.hash == h && f.now().Before(e.expires) && hmac.Equal(e.mac[:], mac[:]) {
		return auth.Allow, mac, true
	}
	return auth.NoOpinion, mac, false
}

// AuthenticateQuick implements auth.QuickAuthenticator: it answers for
// users not in the file, malformed passwords and cached ones.
func (f *File) AuthenticateQuick(c *auth.ConnectInfo) (auth.Result, bool) {
	d, _, ok := f.quick(c.Username, c.Password)
	return result(c.Username, d), ok
}

// Authenticate implements auth.Authenticator.
func (f *File) Authenticate(_ context.Context, c *auth.ConnectInfo) auth.Result {
	return result(c.Username, f.Check(c.Username, c.Password))
}

func result(user string, d auth.Decision) auth.Result {
	switch d {
	case auth.Allow:
		return auth.Result{Decision: auth.Allow, Username: user}
	case auth.Deny:
		return auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials}
	}
	return auth.Result{}
}

// Users lists the usernames in the file, sorted.
func (f *File) Users() []string {
	return slices.Sorted(maps.Keys(*f.users.Load()))
}

var errUsername = errors.New("passwd: a username must be non-empty and hold no ':', line break or leading '#'")

// Add sets user's password, adding the user if new. It takes effect for
// checks at once; Save writes it to the file.
func (f *File) Add(user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\r\n") || user[0] == '#' || strings.TrimSpace(user) == "" {
		return errUsername
	}
	if password == "" {
		return errors.New("passwd: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), f.cost)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	users := maps.Clone(*f.users.Load())
	users[user] = string(h)
	f.users.Store(&users)
	return nil
}

// Remove deletes user, reporting whether it was there. It takes effect
// for checks at once; Save writes it to the file.
func (f *File) Remove(user string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	users := *f.users.Load()
	if _, ok := users[user]; !ok {
		return false
	}
	users = maps.Clone(users)
	delete(users, user)
	f.users.Store(&users)
	f.cmu.Lock()
	delete(f.cache, user)
	f.cmu.Unlock()
	return true
}

// Save writes the users to the file, sorted by name, readable by its owner
// only. It writes a new file and renames it over the old one, so a broker
// reading the file never sees half of it.
func (f *File) Save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	users := *f.users.Load()
	var b bytes.Buffer
	for _, u := range slices.Sorted(maps.Keys(users)) {
		fmt.Fprintf(&b, "%s:%s\n", u, users[u])
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err = tmp.Write(b.Bytes()); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	// Our own write is not a change to reload.
	if st, err := filewatch.Of(f.path); err == nil {
		f.stamp = st
	}
	return nil
}
