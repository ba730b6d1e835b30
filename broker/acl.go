package broker

import (
	"errors"

	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/topics"
)

// canSubscribe asks the connection's ACL. A filter reaching topics the
// connection may not read (acl.SubFiltered: "devices/#" when only
// "devices/%c/#" is allowed) is refused like one it may read nothing of,
// so a wildcard can never widen access and delivery needs no check.
func (c *client) canSubscribe(filter string) bool {
	g := c.guard
	return g == nil || g.acl.Subscribe(filter) == acl.SubGranted
}

// refuseSubscribe is the SUBACK code of a refused filter, counted.
func (c *client) refuseSubscribe(busy bool) byte {
	s := c.srv
	s.stats.denied.Add(1)
	code := byte(packets.NotAuthorized)
	switch {
	case busy:
		code = packets.QuotaExceeded
	case s.cfg.ObscureNotAuthorized:
		code = packets.UnspecifiedError
	}
	return c.failCode(code)
}

// refusePublish answers a PUBLISH the ACL or a hook refused: a v5 client
// is told 0x87 (0x97 when the hook pool was full); a v3 client cannot be
// told no, so the message is dropped and acknowledged as usual.
func (c *client) refusePublish(pk *packets.Packet, code byte) error {
	if c.version != packets.V5 {
		code = 0
	}
	switch pk.QoS {
	case 1:
		c.writeAck(packets.Puback, pk.PacketID, code)
	case 2:
		// No inbound state is kept: a v5 PUBREC of 0x80 or more ends the
		// flow, and a v3 client's PUBREL is answered even without it.
		c.writeAck(packets.Pubrec, pk.PacketID, code)
	}
	return nil
}

var errHookTopic = errors.New("hook rewrote the topic to an invalid one")

// hookPublish applies the hooks' answer to p (asking them now when a is
// nil): false with the reason code when the PUBLISH is refused.
func (c *client) hookPublish(pk *packets.Packet, p *pub, a *hookAnswer) (bool, byte) {
	if a == nil {
		ans := c.askHooks(pk)
		a = &ans
	}
	if a.busy {
		c.srv.stats.hookDenied.Add(1)
		return false, packets.QuotaExceeded
	}
	if !a.ok {
		c.srv.stats.hookDenied.Add(1)
		return false, packets.NotAuthorized
	}
	if a.msg.Topic != string(p.topic) {
		if !topics.ValidTopicName(a.msg.Topic) {
			c.srv.log.Warn("hook answer ignored", "client", c.clientID(), "err", errHookTopic, "topic", a.msg.Topic)
			return false, packets.TopicNameInvalid
		}
		if ok, _ := c.canPublish(bytesOf(a.msg.Topic)); !ok {
			return false, packets.NotAuthorized
		}
		p.topic = bytesOf(a.msg.Topic)
	}
	p.payload = a.msg.Payload
	return true, 0
}

// hookFilter is the i-th filter as the hooks left it, false when refused.
func (c *client) hookFilter(a *hookAnswer, i int, f *packets.Subscription) (string, bool) {
	if a.busy || i >= len(a.subs) || !a.oks[i] {
		c.srv.stats.hookDenied.Add(1)
		return "", false
	}
	sub := &a.subs[i]
	if sub.QoS < f.QoS {
		f.QoS = sub.QoS
	}
	return sub.Filter, true
}

// subscribeExtra subscribes the filters the hooks added, with the options
// of the filter they were added to, if the ACL allows them.
func (c *client) subscribeExtra(pk *packets.Packet, a *hookAnswer) {
	s := c.srv
	for i := range a.subs {
		if i >= len(pk.Filters) {
			break
		}
		f := pk.Filters[i]
		for _, extra := range a.subs[i].Extra {
			if !topics.ValidFilter(extra) || !c.canSubscribe(extra) {
				s.stats.denied.Add(1)
				continue
			}
			opts := topics.Options{QoS: min(f.QoS, a.subs[i].QoS), NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished}
			s.subs.Subscribe(extra, c.sess, opts)
			c.sess.mu.Lock()
			c.sess.setSub(extra, opts)
			c.sess.mu.Unlock()
		}
	}
}

// hookEvent is the hook event of a packet type that may be offloaded.
func hookEvent(t packets.Type) hooks.Event {
	switch t {
	case packets.Publish:
		return hooks.Publish
	case packets.Subscribe:
		return hooks.Subscribe
	case packets.Unsubscribe:
		return hooks.Unsubscribe
	}
	return 0
}
