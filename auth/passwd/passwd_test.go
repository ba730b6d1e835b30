package passwd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newFile writes a password file with these users and loads it.
func newFile(t *testing.T, clk *clock, users ...string) *File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	f := New(path, WithCost(bcrypt.MinCost), WithClock(clk.now))
	for _, u := range users {
		if err := f.Add(u, u+"-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path, WithCost(bcrypt.MinCost), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheck(t *testing.T) {
	f := newFile(t, &clock{}, "alice", "bob")
	for _, tc := range []struct {
		user, pw string
		want     auth.Decision
	}{
		{"alice", "alice-pw", auth.Allow},
		{"bob", "bob-pw", auth.Allow},
		{"alice", "bob-pw", auth.Deny},
		{"alice", "", auth.Deny},
		{"alice", "alice-pw" + strings.Repeat("x", 80), auth.Deny},
		{"carol", "carol-pw", auth.NoOpinion},
		{"", "", auth.NoOpinion},
	} {
		if got := f.Check(tc.user, []byte(tc.pw)); got != tc.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tc.user, tc.pw, got, tc.want)
		}
	}
}

// TestLongPassword: bcrypt reads only 72 bytes, so a longer password whose
// first 72 bytes are right must still be refused.
func TestLongPassword(t *testing.T) {
	f := New(filepath.Join(t.TempDir(), "p"), WithCost(bcrypt.MinCost))
	pw := strings.Repeat("p", 72)
	if err := f.Add("u", pw); err != nil {
		t.Fatal(err)
	}
	if f.Check("u", []byte(pw)) != auth.Allow || f.Check("u", []byte(pw+"extra")) != auth.Deny {
		t.Error("72-byte password handled wrongly")
	}
	if err := f.Add("u", pw+"x"); err == nil {
		t.Error("Add took a password bcrypt would cut")
	}
}

func TestCache(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	f := newFile(t, clk, "alice")
	info := &auth.ConnectInfo{Username: "alice", Password: []byte("alice-pw")}
	if _, ok := f.AuthenticateQuick(info); ok {
		t.Fatal("answered before any bcrypt")
	}
	if r := f.Authenticate(context.Background(), info); r.Decision != auth.Allow || r.Username != "alice" {
		t.Fatalf("Authenticate = %+v", r)
	}
	if r, ok := f.AuthenticateQuick(info); !ok || r.Decision != auth.Allow {
		t.Fatalf("second login not from the cache: %+v %v", r, ok)
	}
	// A wrong password is not answered from the cache and not cached.
	bad := &auth.ConnectInfo{Username: "alice", Password: []byte("guess")}
	if _, ok := f.AuthenticateQuick(bad); ok {
		t.Error("wrong password answered from the cache")
	}
	if r := f.Authenticate(context.Background(), bad); r.Decision != auth.Deny || r.Reason != auth.BadCredentials {
		t.Errorf("wrong password: %+v", r)
	}
	if _, ok := f.AuthenticateQuick(bad); ok {
		t.Error("a failed check was cached")
	}
	// The entry expires.
	clk.add(DefaultCacheTTL + time.Second)
	if _, ok := f.AuthenticateQuick(info); ok {
		t.Error("expired entry used")
	}
	f.Check("alice", info.Password)
	// A new password invalidates the entry at once.
	if err := f.Add("alice", "new-pw"); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.AuthenticateQuick(info); ok && r.Decision == auth.Allow {
		t.Error("old password still let in from the cache")
	}
	if f.Check("alice", info.Password) != auth.Deny || f.Check("alice", []byte("new-pw")) != auth.Allow {
		t.Error("password change not in force")
	}
	// Removing the user drops it.
	f.Remove("alice")
	if r, ok := f.AuthenticateQuick(&auth.ConnectInfo{Username: "alice", Password: []byte("new-pw")}); !ok || r.Decision != auth.NoOpinion {
		t.Errorf("removed user: %+v %v", r, ok)
	}
}

func TestCacheOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p")
	f := New(path, WithCost(bcrypt.MinCost), WithCacheTTL(0))
	if err := f.Add("u", "pw"); err != nil {
		t.Fatal(err)
	}
	f.Check("u", []byte("pw"))
	if _, ok := f.AuthenticateQuick(&auth.ConnectInfo{Username: "u", Password: []byte("pw")}); ok {
		t.Error("cache used with TTL 0")
	}
}

func TestSaveLoad(t *testing.T) {
	clk := &clock{}
	f := newFile(t, clk, "carol", "alice", "bob")
	if !f.Remove("bob") || f.Remove("bob") {
		t.Error("Remove reported wrongly")
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice:$2a$04$") || !strings.HasPrefix(lines[1], "carol:$2a$04$") {
		t.Errorf("saved file:\n%s", data)
	}
	if fi, err := os.Stat(f.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("saved file mode %v, %v", fi.Mode(), err)
	}
	g, err := Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Users(); strings.Join(got, ",") != "alice,carol" {
		t.Errorf("Users() = %v", got)
	}
	if g.Check("carol", []byte("carol-pw")) != auth.Allow {
		t.Error("saved password does not check")
	}
}

func TestAddErrors(t *testing.T) {
	f := New(filepath.Join(t.TempDir(), "p"), WithCost(bcrypt.MinCost))
	for _, u := range []string{"", "a:b", "a\nb", "#x", " "} {
		if err := f.Add(u, "pw"); err == nil {
			t.Errorf("Add(%q) accepted", u)
		}
	}
	if err := f.Add("u", ""); err == nil {
		t.Error("empty password accepted")
	}
}

func TestLoadErrors(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	for _, tc := range []struct{ text, want string }{
		{"alice", "line 1: want username:hash"},
		{":" + string(h), "line 1: want username:hash"},
		{"# c\n\nalice:" + string(h) + "\nalice:" + string(h), "line 4: \"alice\" listed twice"},
		{"alice:$7$101$abc", "no bcrypt hash"},
		{"alice:plain", "no bcrypt hash"},
	} {
		p := filepath.Join(t.TempDir(), "p")
		if err := os.WriteFile(p, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want %q", tc.text, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("loaded a missing file")
	}
	p := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(p, []byte("# only comments\r\n\r\nu:"+string(h)+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := Load(p); err != nil || f.Check("u", []byte("x")) != auth.Allow {
		t.Errorf("CRLF file: %v", err)
	}
}

func TestReload(t *testing.T) {
	clk := &clock{}
	f := newFile(t, clk, "alice")
	if changed, err := f.Reload(); changed || err != nil {
		t.Fatalf("Reload of an unchanged file = %v, %v", changed, err)
	}
	// Another process (the passwd tool) changes the file.
	other, err := Load(f.path, WithCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	other.Add("bob", "bob-pw")
	other.Remove("alice")
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("Reload after a change = %v, %v", changed, err)
	}
	if f.Check("bob", []byte("bob-pw")) != auth.Allow || f.Check("alice", []byte("alice-pw")) != auth.NoOpinion {
		t.Error("reloaded users not in force")
	}
	if err := os.WriteFile(f.path+".new", []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.path+".new", f.path); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Reload(); changed || err == nil {
		t.Fatalf("Reload of a broken file = %v, %v", changed, err)
	}
	if f.Check("bob", []byte("bob-pw")) != auth.Allow {
		t.Error("a broken file replaced the users in force")
	}
}

func TestWatch(t *testing.T) {
	f := newFile(t, &clock{}, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Watch(ctx, time.Millisecond, nil); close(done) }()
	other, err := Load(f.path, WithCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	other.Add("bob", "bob-pw")
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); f.Check("bob", []byte("bob-pw")) != auth.Allow; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the change")
		}
	}
	cancel()
	<-done
}

// TestInChain: a cached login is answered by Check at once, a first one
// on a worker.
func TestInChain(t *testing.T) {
	f := newFile(t, &clock{t: time.Unix(1e9, 0)}, "alice")
	c := auth.NewChain(auth.Options{}, auth.Anonymous{}, f)
	defer c.Close()
	info := &auth.ConnectInfo{Username: "alice", Password: []byte("alice-pw")}
	got := make(chan auth.Result, 1)
	if _, now := c.Check(info, func(r auth.Result) { got <- r }); now {
		t.Fatal("first login answered without bcrypt")
	}
	if r := <-got; r.Decision != auth.Allow {
		t.Fatalf("first login: %+v", r)
	}
	if r, now := c.Check(info, nil); !now || r.Decision != auth.Allow {
		t.Errorf("second login: %+v now=%v", r, now)
	}
	if r, now := c.Check(&auth.ConnectInfo{Username: "mallory", Password: []byte("x")}, nil); !now || r.Reason != auth.BadCredentials {
		t.Errorf("unknown user: %+v now=%v", r, now)
	}
}

func BenchmarkCheck(b *testing.B) {
	f := New(filepath.Join(b.TempDir(), "p"))
	if err := f.Add("alice", "correct horse battery staple"); err != nil {
		b.Fatal(err)
	}
	pw := []byte("correct horse battery staple")
	b.Run("cached", func(b *testing.B) {
		f.Check("alice", pw)
		b.ReportAllocs()
		for b.Loop() {
			if f.Check("alice", pw) != auth.Allow {
				b.Fatal("refused")
			}
		}
	})
	b.Run("bcrypt-cost10", func(b *testing.B) {
		f.ttl = 0
		b.ReportAllocs()
		for b.Loop() {
			if f.Check("alice", pw) != auth.Allow {
				b.Fatal("refused")
			}
		}
	})
}
