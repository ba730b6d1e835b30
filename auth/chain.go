package auth

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"
)

// BanChecker is what the Chain needs of a ban list (limit.Bans).
type BanChecker interface {
	Banned(ip netip.Addr, clientID string) bool
}

// Options configure a Chain. Zero values take the defaults.
type Options struct {
	// Bans, when set, refuses banned clients before any authenticator is
	// asked.
	Bans BanChecker
	// Workers run the authenticators that may block; default GOMAXPROCS,
	// since the slow work is mostly bcrypt, which is CPU-bound.
	Workers int
	// Queue is how many connections may wait for a worker; past it they
	// are refused with ServerBusy rather than piling up. Default 1024.
	Queue int
	// Timeout bounds one connection's authentication, its time in the
	// queue included. Default 10 s.
	Timeout time.Duration
}

// Chain asks authenticators in order; the first answer other than
// NoOpinion decides. When all have no opinion the client is refused:
// NotAuthorized if it sent no credentials, BadCredentials if it did. A
// Chain without authenticators lets everyone in, with the username they
// sent, which is a broker with authentication off.
type Chain struct {
	auths   []Authenticator
	quick   []QuickAuthenticator // quick[i] is auths[i] if it is one, else nil
	bans    BanChecker
	timeout time.Duration

	mu     sync.RWMutex // guards closed against sends on jobs
	closed bool
	jobs   chan job
	ctx    context.Context // cancelled by Close, ending running work
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type job struct {
	info     ConnectInfo
	from     int // first authenticator still to ask
	done     func(Result)
	deadline time.Time
}

var errClosed = errors.New("auth: chain closed")

// NewChain starts a Chain asking auths in this order. Close stops it.
func NewChain(o Options, auths ...Authenticator) *Chain {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	c := &Chain{
		auths:   auths,
		quick:   make([]QuickAuthenticator, len(auths)),
		bans:    o.Bans,
		timeout: o.Timeout,
		jobs:    make(chan job, o.Queue),
	}
	for i, a := range auths {
		c.quick[i], _ = a.(QuickAuthenticator)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(o.Workers)
	for range o.Workers {
		go c.work()
	}
	return c
}

// Check authenticates a connection without blocking. When the answer is
// known at once (a ban, a cached password, an HMAC-signed token, an
// anonymous client) it is returned with now true and done is not called.
// Otherwise now is false and done (which must not be nil) is called
// later, once, from another goroutine: the broker hands the result back
// to the connection's event loop. When too many connections are already waiting the answer is an
// immediate ServerBusy.
func (c *Chain) Check(info *ConnectInfo, done func(Result)) (r Result, now bool) {
	if c.bans != nil && c.bans.Banned(info.Addr, info.ClientID) {
		return Result{Decision: Deny, Reason: Banned}, true
	}
	for i, q := range c.quick {
		if q == nil {
			return c.enqueue(info, i, done)
		}
		r, ok := q.AuthenticateQuick(info)
		if !ok {
			return c.enqueue(info, i, done)
		}
		if r.Decision != NoOpinion {
			return r, true
		}
	}
	return c.fallback(info), true
}

// Quick answers as Check does when the answer is known at once, and
// reports false instead of handing the rest to a worker: a caller can then
// prepare for an answer that comes later (copy what it must keep) only
// when one will, and call Check.
func (c *Chain) Quick(info *ConnectInfo) (r Result, ok bool) {
	if c.bans != nil && c.bans.Banned(info.Addr, info.ClientID) {
		return Result{Decision: Deny, Reason: Banned}, true
	}
	for _, q := range c.quick {
		if q == nil {
			return Result{}, false
		}
		r, ok := q.AuthenticateQuick(info)
		if !ok {
			return Result{}, false
		}
		if r.Decision != NoOpinion {
			return r, true
		}
	}
	return c.fallback(info), true
}

// Authenticate runs the whole chain on the caller's goroutine, blocking
// as long as the authenticators do.
func (c *Chain) Authenticate(ctx context.Context, info *ConnectInfo) Result {
	if c.bans != nil && c.bans.Banned(info.Addr, info.ClientID) {
		return Result{Decision: Deny, Reason: Banned}
	}
	return c.run(ctx, info, 0)
}

func (c *Chain) run(ctx context.Context, info *ConnectInfo, from int) Result {
	for _, a := range c.auths[from:] {
		if err := ctx.Err(); err != nil {
			return unavailable(err)
		}
		if r := a.Authenticate(ctx, info); r.Decision != NoOpinion {
			return r
		}
	}
	// An authenticator that gave up because time ran out has no opinion,
	// but that is no reason to call the credentials bad.
	if err := ctx.Err(); err != nil {
		return unavailable(err)
	}
	return c.fallback(info)
}

func unavailable(err error) Result {
	return Result{Decision: Deny, Reason: ServerUnavailable, Err: err}
}

func (c *Chain) fallback(info *ConnectInfo) Result {
	switch {
	case len(c.auths) == 0:
		return Result{Decision: Allow, Username: info.Username}
	case info.anonymous():
		return Result{Decision: Deny, Reason: NotAuthorized}
	}
	return Result{Decision: Deny, Reason: BadCredentials}
}

// enqueue hands the rest of the chain to a worker, with a copy of info:
// the caller's may point into a buffer it reuses as soon as Check returns.
func (c *Chain) enqueue(info *ConnectInfo, from int, done func(Result)) (Result, bool) {
	j := job{
		info: ConnectInfo{
			ClientID: strings.Clone(info.ClientID),
			Username: strings.Clone(info.Username),
			Password: bytes.Clone(info.Password),
			Addr:     info.Addr,
			CertCN:   strings.Clone(info.CertCN),
		},
		from:     from,
		done:     done,
		deadline: time.Now().Add(c.timeout),
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return unavailable(errClosed), true
	}
	select {
	case c.jobs <- j:
		return Result{}, false
	default:
		return Result{Decision: Deny, Reason: ServerBusy}, true
	}
}

func (c *Chain) work() {
	defer c.wg.Done()
	for j := range c.jobs {
		ctx, cancel := context.WithDeadline(c.ctx, j.deadline)
		r := c.run(ctx, &j.info, j.from)
		cancel()
		j.done(r)
	}
}

// Close stops the workers. Connections still waiting get their done call
// with ServerUnavailable; later Checks that need a worker are refused the
// same way.
func (c *Chain) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.jobs)
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
