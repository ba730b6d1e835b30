package store

import (
	"context"
	"sync"
)

// Pending is the durability of the writes a Commit covers. The zero Pending
// is already complete, which is what non-durable stores return, so that it
// costs nothing there.
type Pending struct{ g *Group }

var closedCh = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done is closed once the writes are durable or have failed.
func (p Pending) Done() <-chan struct{} {
	if p.g == nil {
		return closedCh
	}
	return p.g.done
}

// Err is the failure, nil once the writes are durable; meaningful only
// after Done is closed.
func (p Pending) Err() error {
	if p.g == nil {
		return nil
	}
	select {
	case <-p.g.done:
		return p.g.err
	default:
		return nil
	}
}

// Wait blocks until the writes are durable or ctx ends.
func (p Pending) Wait(ctx context.Context) error {
	select {
	case <-p.Done():
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnDone calls fn with the outcome once the writes are durable: at once, in
// the caller's goroutine, if they already are, otherwise in the store's
// committer goroutine, which fn must therefore not block. This is how an
// event loop sends PUBACK without a goroutine per message.
func (p Pending) OnDone(fn func(error)) {
	g := p.g
	if g == nil {
		fn(nil)
		return
	}
	g.mu.Lock()
	if !g.finished {
		g.fns = append(g.fns, fn)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	fn(g.err)
}

// Group is a set of writes made durable together, by one fsync. It is for
// Store implementations: they hand its Pending to every Commit that joins
// it and Finish it after the fsync.
type Group struct {
	done     chan struct{}
	mu       sync.Mutex
	finished bool
	err      error
	fns      []func(error)
}

// NewGroup returns an open group.
func NewGroup() *Group { return &Group{done: make(chan struct{})} }

// Pending returns the handle Commit gives out for g.
func (g *Group) Pending() Pending { return Pending{g} }

// Finish completes g with err and runs its callbacks. Call it once.
func (g *Group) Finish(err error) {
	g.mu.Lock()
	g.finished, g.err = true, err
	fns := g.fns
	g.fns = nil
	close(g.done)
	g.mu.Unlock()
	for _, fn := range fns {
		fn(err)
	}
}
