package broker

import (
	"sync"

	"github.com/coolpy7/coolpy7/auth/acl"
)

// pending holds a connection's input while one of its packets is decided
// off the event loop (a password checked by bcrypt, a hook asking a
// service). Later packets must wait, in order: the event loop appends them
// to in, and the worker that finishes the packet handles them after it,
// on its own goroutine. The mutex is what hands the connection's state
// from one goroutine to the other, so client fields need no lock of their
// own; on the event loop it costs one atomic load per read while nothing
// is pending.
type pending struct {
	mu   sync.Mutex
	in   []byte
	done bool
}

// pendingLimit bounds what a connection may send while it waits; past it
// the connection is closed. It is enough for any sane burst behind a
// CONNECT or a hooked PUBLISH, and stops a client that pipelines without
// end from growing the buffer.
const pendingLimit = 4 << 20

// errSuspended is returned by a packet handler that handed the packet to
// a worker: the framing loop stops and keeps the rest of the input for it.
var errSuspended = &suspended{}

type suspended struct{}

func (*suspended) Error() string { return "suspended" }

// suspendLocked makes the connection's input wait. The pending is returned
// locked, so a worker that finishes at once still waits for the rest of
// the current read to be stored; the framing loop unlocks it.
func (c *client) suspendLocked() *pending {
	p := &pending{}
	p.mu.Lock()
	if c.guard == nil {
		c.guard = &guard{acl: acl.AllowAll()}
	}
	c.guard.pend.Store(p)
	return p
}

// unsuspend undoes suspendLocked when the answer came at once.
func (c *client) unsuspend(p *pending) {
	c.guard.pend.CompareAndSwap(p, nil)
	p.done = true
	p.mu.Unlock()
}

// hold takes data while a packet is pending; false when nothing is, and
// the caller handles data itself.
func (c *client) hold(data []byte) bool {
	g := c.guard
	if g == nil {
		return false
	}
	for {
		p := g.pend.Load()
		if p == nil {
			return false
		}
		p.mu.Lock()
		if !p.done {
			if len(p.in)+len(data) > pendingLimit {
				p.mu.Unlock()
				c.fail(errPendingFull)
				return true
			}
			p.in = append(p.in, data...)
			p.mu.Unlock()
			return true
		}
		// Finished while we waited for the lock: g.pend is nil now, or a
		// newer pending; look again.
		p.mu.Unlock()
	}
}

// resume runs on a worker: it finishes the suspended packet with fn, then
// handles what arrived meanwhile, which may suspend the connection again.
// The lock is held only to take input, never while handling it, so the
// event loop appending more never waits for the handling.
func (c *client) resume(p *pending, fn func() error) {
	// The first lock also waits for the loop to store the rest of the
	// read that held the suspended packet.
	in := p.take()
	if !c.has(flagClosing) {
		if err := fn(); err != nil {
			c.fail(err)
		}
	}
	for !c.has(flagClosing) {
		if len(in) > 0 && c.feed(in, p, nil) {
			return // suspended again: p was handed over
		}
		if in = p.takeOrFinish(c); in == nil {
			return
		}
	}
	p.mu.Lock()
	p.finish(c)
	p.mu.Unlock()
}

func (p *pending) take() []byte {
	p.mu.Lock()
	in := p.in
	p.in = nil
	p.mu.Unlock()
	return in
}

// takeOrFinish takes what arrived while the worker was handling input, or,
// when nothing did, ends the suspension (nil).
func (p *pending) takeOrFinish(c *client) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.in
	p.in = nil
	if len(in) == 0 {
		p.finish(c)
		return nil
	}
	return in
}

// finish ends the suspension; the caller holds p.mu.
func (p *pending) finish(c *client) {
	c.guard.pend.CompareAndSwap(p, nil)
	p.in = nil
	p.done = true
}

// handOver moves what arrived on p while the worker was handling its input
// to next, the pending of a packet suspended in that input, behind the
// rest of that input; the caller holds next.mu, which keeps the event loop
// from appending to next before this is done.
func (p *pending) handOver(next *pending) {
	p.mu.Lock()
	next.in = append(next.in, p.in...)
	p.in = nil
	p.done = true
	p.mu.Unlock()
}
