package broker

import (
	"sync"
	"time"
	"unsafe"

	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/topics"
)

// pub is a message being routed. For an inbound PUBLISH its fields are
// views into the connection's read buffer, and msg is made only if some
// session has to keep the message (QoS 1/2, queued, retained): a QoS 0
// fan-out to connected subscribers copies nothing.
type pub struct {
	topic   []byte
	payload []byte
	props   *packets.Properties // forwarded properties only; nil for none
	expires time.Time
	qos     byte
	retain  bool
	from    *session
	msg     *Message
	// stored is set when routing wrote p to the store, so that its
	// acknowledgement waits for the commit; failed when such a write
	// failed, so that it is not acknowledged at all.
	stored, failed bool
	// pass is the event loop's pass (batch.go) the deliveries are staged
	// in; nil off the loop, where they are written at once.
	pass *pass
}

// message returns the retained form of p, making it on first use.
func (p *pub) message() *Message {
	if p.msg == nil {
		p.msg = &Message{From: p.from, Message: store.Message{
			Topic:   string(p.topic),
			Payload: clone(p.payload),
			QoS:     p.qos,
			Retain:  p.retain,
			Expires: p.expires,
		}}
		if p.props != nil {
			p.msg.Props = forwardedProps(p.props)
		}
		if p.msg.Payload == nil {
			p.msg.Payload = []byte{}
		}
	}
	return p.msg
}

// storedPub wraps an existing Message for delivery.
func storedPub(m *Message) pub {
	return pub{topic: bytesOf(m.Topic), payload: m.Payload, props: m.Props, expires: m.Expires,
		qos: m.QoS, retain: m.Retain, from: m.From, msg: m}
}

// bytesOf views s as bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stringOf views b as a string without copying, for lookups that do not
// keep the string.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var resultPool = sync.Pool{New: func() any { return new(topics.Result[*session]) }}

// route delivers p to every matching subscription and updates the retained
// store. It returns how many sessions it was offered to.
func (s *Server) route(p *pub) int {
	sampled := s.latency.start(s.clock.Load())
	if p.retain {
		s.retain(p)
	}
	r := resultPool.Get().(*topics.Result[*session])
	s.subs.Match(stringOf(p.topic), p.from, r)
	n := 0
	for i := range r.Subs {
		m := &r.Subs[i]
		if s.hookEv&hooks.Deliver != 0 && !s.hookDeliver(m.Sub, p) {
			continue
		}
		qos := min(p.qos, m.QoS)
		m.Sub.deliver(p, qos, p.retain && m.RetainAsPublished, m.IDs)
		n++
	}
	for i := range r.Shared {
		if s.routeShared(&r.Shared[i], p) {
			n++
		}
	}
	// Reset drops the references to sessions so that a pooled Result does
	// not keep ended sessions alive.
	r.Reset()
	resultPool.Put(r)
	if n == 0 && !p.retain {
		s.stats.noSubscribers.Add(1)
	}
	s.latency.observe(sampled)
	return n
}

// retain stores or, for an empty payload, deletes the retained message.
func (s *Server) retain(p *pub) {
	// $SYS is the broker's own, published anew every few seconds.
	keep := len(p.topic) < 5 || string(p.topic[:5]) != "$SYS/"
	if len(p.payload) == 0 {
		if s.retained.Delete(stringOf(p.topic)) && keep {
			if err := s.store.Retained().Delete(string(p.topic)); err != nil {
				s.storeFailed("delete retained", "", err)
				p.failed = true
			}
			p.stored = true
		}
		return
	}
	m := p.message()
	if ttl := s.cfg.RetainedTTL; ttl > 0 && keep {
		// The retained copy carries the -rt bound as its expiry.
		cp := *m
		if exp := time.Now().Add(ttl.Duration()); cp.Expires.IsZero() || exp.Before(cp.Expires) {
			cp.Expires = exp
		}
		m = &cp
	}
	s.retained.Set(string(p.topic), m)
	if keep {
		if err := s.store.Retained().Set(string(p.topic), &m.Message); err != nil {
			s.storeFailed("set retained", "", err)
			p.failed = true
		}
		p.stored = true
	}
}

// sendRetained delivers the retained messages matching a new subscription.
func (s *Server) sendRetained(sess *session, filter string, opts topics.Options) {
	var ids []uint32
	if opts.ID != 0 {
		ids = []uint32{opts.ID}
	}
	now := time.Now()
	s.retained.Match(filter, func(_ string, m *Message) bool {
		if m.Expired(now) {
			return true
		}
		p := storedPub(m)
		// Retained messages sent because of a subscription always carry
		// the retain flag (MQTT 5.0 §3.3.1.3).
		sess.deliver(&p, min(m.QoS, opts.QoS), true, ids)
		return true
	})
}
