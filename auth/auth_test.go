package auth

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/packets"
)

// fake answers d for the username it knows and NoOpinion for others,
// recording who it was asked about. With block set it is slow: it has no
// quick path, tells started it began and waits for block (or ctx) before
// answering.
type fake struct {
	user    string
	d       Decision
	block   chan struct{}
	started chan struct{}
	mu      sync.Mutex
	asked   []string
}

func (f *fake) answer(c *ConnectInfo) Result {
	f.mu.Lock()
	f.asked = append(f.asked, c.Username)
	f.mu.Unlock()
	if c.Username != f.user {
		return Result{}
	}
	r := Result{Decision: f.d, Username: c.Username}
	if f.d == Deny {
		r.Reason = BadCredentials
	}
	return r
}

func (f *fake) Authenticate(ctx context.Context, c *ConnectInfo) Result {
	if f.block != nil {
		if f.started != nil {
			f.started <- struct{}{}
		}
		select {
		case <-f.block:
		case <-ctx.Done():
			return Result{}
		}
	}
	return f.answer(c)
}

// quickFake is a fake with a quick path.
type quickFake struct{ fake }

func (f *quickFake) AuthenticateQuick(c *ConnectInfo) (Result, bool) { return f.answer(c), true }

// check runs Chain.Check and waits for the answer however it comes.
func check(t *testing.T, c *Chain, info ConnectInfo) (r Result, now bool) {
	t.Helper()
	got := make(chan Result, 1)
	r, now = c.Check(&info, func(r Result) { got <- r })
	if now {
		return r, true
	}
	select {
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("done never called")
	}
	return r, false
}

func TestChainOrder(t *testing.T) {
	pw := []byte("pw")
	allowBob := &quickFake{fake{user: "bob", d: Allow}}
	denyBob := &quickFake{fake{user: "bob", d: Deny}}
	slowAllowAl := &fake{user: "al", d: Allow, block: make(chan struct{})}
	close(slowAllowAl.block)
	c := NewChain(Options{}, Anonymous{}, allowBob, denyBob, slowAllowAl)
	defer c.Close()
	for _, tc := range []struct {
		name   string
		info   ConnectInfo
		want   Decision
		reason Reason
		now    bool
	}{
		{"anonymous", ConnectInfo{}, Allow, 0, true},
		{"first definite answer wins", ConnectInfo{Username: "bob", Password: pw}, Allow, 0, true},
		{"slow authenticator runs on a worker", ConnectInfo{Username: "al", Password: pw}, Allow, 0, false},
		{"nobody knows him", ConnectInfo{Username: "eve", Password: pw}, Deny, BadCredentials, false},
	} {
		r, now := check(t, c, tc.info)
		if r.Decision != tc.want || r.Reason != tc.reason || now != tc.now {
			t.Errorf("%s: got %v/%v now=%v, want %v/%v now=%v", tc.name, r.Decision, r.Reason, now, tc.want, tc.reason, tc.now)
		}
	}
	if slices.Contains(denyBob.asked, "bob") {
		t.Error("an authenticator after the deciding one was asked")
	}
	if r := c.Authenticate(context.Background(), &ConnectInfo{Username: "al", Password: pw}); r.Decision != Allow {
		t.Errorf("Authenticate = %v", r.Decision)
	}
}

func TestChainFallback(t *testing.T) {
	open := NewChain(Options{})
	defer open.Close()
	if r, now := check(t, open, ConnectInfo{Username: "x", Password: []byte("y")}); r.Decision != Allow || r.Username != "x" || !now {
		t.Errorf("open chain: %+v now=%v", r, now)
	}
	closed := NewChain(Options{}, CertCN{})
	defer closed.Close()
	if r, _ := check(t, closed, ConnectInfo{}); r.Decision != Deny || r.Reason != NotAuthorized {
		t.Errorf("anonymous without Anonymous: %+v", r)
	}
	if r, _ := check(t, closed, ConnectInfo{Username: "x"}); r.Decision != Deny || r.Reason != BadCredentials {
		t.Errorf("unknown credentials: %+v", r)
	}
}

type banned struct{ ip netip.Addr }

func (b banned) Banned(ip netip.Addr, clientID string) bool { return ip == b.ip || clientID == "evil" }

func TestChainBans(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	c := NewChain(Options{Bans: banned{ip}}, Anonymous{})
	defer c.Close()
	for _, info := range []ConnectInfo{{Addr: ip}, {ClientID: "evil"}} {
		if r, now := check(t, c, info); r.Decision != Deny || r.Reason != Banned || !now {
			t.Errorf("%+v: %+v", info, r)
		}
		if r := c.Authenticate(context.Background(), &info); r.Reason != Banned {
			t.Errorf("Authenticate %+v: %+v", info, r)
		}
	}
	if r, _ := check(t, c, ConnectInfo{Addr: netip.MustParseAddr("192.0.2.2")}); r.Decision != Allow {
		t.Errorf("unbanned client: %+v", r)
	}
}

func TestChainBusyTimeoutClose(t *testing.T) {
	slow := &fake{user: "u", d: Allow, block: make(chan struct{}), started: make(chan struct{}, 1)}
	c := NewChain(Options{Workers: 1, Queue: 1, Timeout: 50 * time.Millisecond}, slow)
	info := ConnectInfo{Username: "u", Password: []byte("p")}
	got := make(chan Result, 2)
	done := func(r Result) { got <- r }
	// One job on the worker, one in the queue, the third refused.
	if _, now := c.Check(&info, done); now {
		t.Fatal("first check answered at once")
	}
	<-slow.started
	if _, now := c.Check(&info, done); now {
		t.Fatal("second check answered at once")
	}
	if r, now := c.Check(&info, done); !now || r.Decision != Deny || r.Reason != ServerBusy {
		t.Fatalf("third check: %+v now=%v, want ServerBusy", r, now)
	}
	// Both waiting connections run out of time.
	for range 2 {
		if r := <-got; r.Decision != Deny || r.Reason != ServerUnavailable || r.Err == nil {
			t.Errorf("timed-out job: %+v", r)
		}
	}
	c.Close()
	if r, now := c.Check(&info, done); !now || r.Reason != ServerUnavailable {
		t.Errorf("Check after Close: %+v now=%v", r, now)
	}
	c.Close()
}

// TestChainCopiesInfo: the broker reuses its buffers once Check returns.
func TestChainCopiesInfo(t *testing.T) {
	seen := make(chan string, 1)
	gate := make(chan struct{})
	c := NewChain(Options{}, authFunc(func(_ context.Context, info *ConnectInfo) Result {
		<-gate // read info only after the caller reused its buffer
		seen <- info.Username + ":" + string(info.Password)
		return Result{Decision: Allow}
	}))
	defer c.Close()
	buf := []byte("user:pass")
	info := ConnectInfo{Username: unsafeString(buf[:4]), Password: buf[5:]}
	_, now := c.Check(&info, func(Result) {})
	copy(buf, "XXXXXXXXX")
	close(gate)
	if now {
		t.Fatal("answered at once")
	}
	if s := <-seen; s != "user:pass" {
		t.Errorf("worker saw %q", s)
	}
}

// unsafeString is how the broker turns its read buffer into strings
// without copying.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

type authFunc func(context.Context, *ConnectInfo) Result

func (f authFunc) Authenticate(ctx context.Context, c *ConnectInfo) Result { return f(ctx, c) }

func TestCertCN(t *testing.T) {
	c := NewChain(Options{}, CertCN{})
	defer c.Close()
	r, now := check(t, c, ConnectInfo{Username: "claimed", CertCN: "device-7"})
	if r.Decision != Allow || r.Username != "device-7" || !now {
		t.Errorf("%+v", r)
	}
	if r := (CertCN{}).Authenticate(context.Background(), &ConnectInfo{Username: "x"}); r.Decision != NoOpinion {
		t.Errorf("no certificate: %+v", r)
	}
	if r := (Anonymous{}).Authenticate(context.Background(), &ConnectInfo{Password: []byte("x")}); r.Decision != NoOpinion {
		t.Errorf("Anonymous with a password: %+v", r)
	}
}

func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		r      Result
		v3, v5 byte
	}{
		{Result{Decision: Allow}, 0, 0},
		{Result{Decision: Deny, Reason: BadCredentials}, 4, 0x86},
		{Result{Decision: Deny, Reason: NotAuthorized}, 5, 0x87},
		{Result{Decision: Deny, Reason: Banned}, 5, 0x8A},
		{Result{Decision: Deny, Reason: ServerBusy}, 3, 0x89},
		{Result{Decision: Deny, Reason: ServerUnavailable}, 3, 0x88},
		{Result{Decision: Deny, Reason: RateLimited}, 3, 0x9F},
	} {
		if v3, v311, v5 := tc.r.Code(packets.V31), tc.r.Code(packets.V311), tc.r.Code(packets.V5); v3 != tc.v3 || v311 != tc.v3 || v5 != tc.v5 {
			t.Errorf("%+v: codes %#x %#x %#x, want %#x %#x", tc.r, v3, v311, v5, tc.v3, tc.v5)
		}
	}
}

func TestResultACL(t *testing.T) {
	f, err := acl.Parse(strings.NewReader("user u\nallow pub u/%c\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := (&acl.Grant{Pub: []string{"tok/%u"}}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	fromFile := (&Result{Decision: Allow, Username: "u"}).ACL(f, "c")
	fromToken := (&Result{Decision: Allow, Username: "u", Rules: set}).ACL(f, "c")
	none := (&Result{Decision: Allow}).ACL(nil, "c")
	switch {
	case !fromFile.CanPublish("u/c"), fromFile.CanPublish("tok/u"):
		t.Error("file ACL wrong")
	case !fromToken.CanPublish("tok/u"), fromToken.CanPublish("u/c"):
		t.Error("token ACL wrong")
	case !none.CanPublish("anything"):
		t.Error("no ACL file should allow everything")
	}
}

// TestChainQuick: Quick answers what Check answers at once and declines
// what Check would hand to a worker, without calling it.
func TestChainQuick(t *testing.T) {
	slow := slowAuth{}
	c := NewChain(Options{}, Anonymous{}, slow)
	defer c.Close()
	if r, ok := c.Quick(&ConnectInfo{}); !ok || r.Decision != Allow {
		t.Errorf("anonymous: %+v %v", r, ok)
	}
	if _, ok := c.Quick(&ConnectInfo{Username: "u", Password: []byte("p")}); ok {
		t.Error("Quick answered for an authenticator that may block")
	}
	empty := NewChain(Options{})
	defer empty.Close()
	if r, ok := empty.Quick(&ConnectInfo{Username: "u"}); !ok || r.Decision != Allow || r.Username != "u" {
		t.Errorf("empty chain: %+v %v", r, ok)
	}
}

type slowAuth struct{}

func (slowAuth) Authenticate(context.Context, *ConnectInfo) Result {
	return Result{Decision: Allow}
}
