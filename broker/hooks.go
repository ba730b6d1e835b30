package broker

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
)

// Hooks is what extensions implement (package hooks says how each call is
// made). The broker has one; SetHooks installs it.
type Hooks = hooks.Hooks

// SetHooks installs h, replacing the webhook or extend service the config
// asked for; call it before Start. When h wants Auth, its OnAuth joins the
// end of the authentication chain, and authentication is on.
func (s *Server) SetHooks(h Hooks) {
	s.hooks = h
	s.hookEv = h.Events()
	if s.hookEv&hooks.Auth != 0 && s.sec.chain != nil {
		// Called after New: rebuild the chain with the hook at its end.
		auths := append(slices.Clip(s.sec.auths), hookAuthenticator(h))
		s.sec.chain.Close()
		s.sec.auths = auths
		s.sec.chain = auth.NewChain(s.chainOptions(), auths...)
		s.sec.chainEmpty = false
		s.sec.guarded = true
	}
	if s.hookEv&hooks.Blocking != 0 && s.hookPool == nil {
		s.hookPool = newPool(s.hookWorkers(), max(s.cfg.HookQueue, 1))
	}
}

func (s *Server) hookWorkers() int {
	if s.cfg.HookWorkers > 0 {
		return s.cfg.HookWorkers
	}
	// The work is mostly waiting on the network.
	return 16 * runtime.GOMAXPROCS(0)
}

// hookBlocks reports whether event e must be handled off the event loop.
func (s *Server) hookBlocks(e hooks.Event) bool {
	return s.hookEv&e != 0 && s.hookEv&hooks.Blocking != 0
}

func (s *Server) hookCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Duration(s.cfg.HookTimeoutMs)*time.Millisecond)
}

// hookClient describes c for a hook call.
func (c *client) hookClient() *hooks.Client {
	h := &hooks.Client{ClientID: c.clientID(), Protocol: c.version}
	if g := c.guard; g != nil {
		h.Username, h.Addr = g.user, g.addr
	}
	return h
}

// hookAnswer is the hooks' verdict on a PUBLISH, SUBSCRIBE or UNSUBSCRIBE.
type hookAnswer struct {
	busy bool // the hook pool was full: refuse without asking
	ok   bool
	msg  hooks.Message
	subs []hooks.Subscription
	oks  []bool
}

// askHooks asks the hooks about pk; it may block when they do.
func (c *client) askHooks(pk *packets.Packet) hookAnswer {
	s := c.srv
	ctx, cancel := s.hookCtx()
	defer cancel()
	hc := c.hookClient()
	var a hookAnswer
	switch pk.Type {
	case packets.Publish:
		topic := pk.Topic
		if len(topic) == 0 && pk.Props.Has(packets.PropTopicAlias) {
			topic = bytesOf(c.aliasesIn[pk.Props.TopicAlias])
		}
		a.msg = hooks.Message{Topic: string(topic), Payload: clone(pk.Payload), QoS: pk.QoS, Retain: pk.Retain}
		a.ok = s.hooks.OnPublish(ctx, hc, &a.msg)
	case packets.Subscribe, packets.Unsubscribe:
		a.subs = make([]hooks.Subscription, len(pk.Filters))
		a.oks = make([]bool, len(pk.Filters))
		for i, f := range pk.Filters {
			a.subs[i] = hooks.Subscription{Filter: string(f.Filter), QoS: f.QoS}
			if pk.Type == packets.Subscribe {
				a.oks[i] = s.hooks.OnSubscribe(ctx, hc, &a.subs[i])
			} else {
				a.oks[i] = s.hooks.OnUnsubscribe(ctx, hc, &a.subs[i])
			}
		}
	}
	return a
}

// offload hands a packet whose hooks may block to the hook pool, holding
// the connection's later input until it is done.
func (c *client) offload(fh packets.FixedHeader, body []byte) error {
	s := c.srv
	p := c.suspendLocked()
	raw := clone(body)
	version := c.version
	if s.hookPool.submit(func() {
		pk := new(packets.Packet)
		if err := packets.Decode(pk, fh, raw, version); err != nil {
			c.resume(p, func() error { return err })
			return
		}
		a := c.askHooks(pk)
		c.resume(p, func() error { return c.dispatch(pk, &a) })
	}) {
		return errSuspended
	}
	c.unsuspend(p)
	s.stats.hookBusy.Add(1)
	pk := packetPool.Get().(*packets.Packet)
	defer packetPool.Put(pk)
	if err := packets.Decode(pk, fh, body, c.version); err != nil {
		return err
	}
	return c.dispatch(pk, &hookAnswer{busy: true})
}

// dispatch handles a hooked packet with the hooks' answer.
func (c *client) dispatch(pk *packets.Packet, a *hookAnswer) error {
	switch pk.Type {
	case packets.Publish:
		return c.publish(pk, a, nil)
	case packets.Subscribe:
		return c.subscribe(pk, a)
	case packets.Unsubscribe:
		c.unsubscribe(pk, a)
	}
	return nil
}

// hookGone tells the hooks a client left, off the event loop when they
// block (dropped, and counted, when the pool is full).
func (s *Server) hookGone(c *client) {
	if s.hookEv&hooks.Disconnect == 0 {
		return
	}
	hc := c.hookClient()
	var err error
	if !c.has(flagDisconnected) {
		err = errConnectionLost
	}
	call := func() {
		ctx, cancel := s.hookCtx()
		defer cancel()
		s.hooks.OnDisconnect(ctx, hc, err)
	}
	s.hookRun(call)
}

// hookExpired tells the hooks a session ended.
func (s *Server) hookExpired(id string) {
	if s.hookEv&hooks.SessionExpired == 0 {
		return
	}
	s.hookRun(func() {
		ctx, cancel := s.hookCtx()
		defer cancel()
		s.hooks.OnSessionExpired(ctx, id)
	})
}

func (s *Server) hookRun(f func()) {
	if s.hookEv&hooks.Blocking == 0 {
		f()
		return
	}
	if !s.hookPool.submit(f) {
		s.stats.hookBusy.Add(1)
	}
}

// hookDeliver asks OnDeliver whether m goes to sess's client.
func (s *Server) hookDeliver(sess *session, p *pub) bool {
	hc := &hooks.Client{ClientID: sess.id}
	m := &hooks.Message{Topic: string(p.topic), Payload: p.payload, QoS: p.qos, Retain: p.retain}
	return s.hooks.OnDeliver(hc, m)
}

var errConnectionLost = errors.New("connection lost")

// pool runs blocking hook calls on a fixed number of goroutines with a
// bounded queue, so a slow service costs waiting connections, not
// goroutines or the event loops.
type pool struct {
	mu     sync.RWMutex // guards closed against sends on jobs
	closed bool
	jobs   chan func()
	wg     sync.WaitGroup
}

func newPool(workers, queue int) *pool {
	p := &pool{jobs: make(chan func(), queue)}
	p.wg.Add(workers)
	for range workers {
		go func() {
			defer p.wg.Done()
			for f := range p.jobs {
				f()
			}
		}()
	}
	return p
}

// submit queues f without blocking; false when the queue is full or the
// pool closed.
func (p *pool) submit(f func()) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	select {
	case p.jobs <- f:
		return true
	default:
		return false
	}
}

func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.wg.Wait()
}
