package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/topics"
	"github.com/coolpy7/coolpy7/transport"
)

// client is one network connection. Its packet handling runs on the event
// loop that owns the connection, one call at a time; other goroutines only
// write PUBLISH packets to it through its session, under the session lock.
type client struct {
	srv  *Server
	conn transport.Conn
	sess *session

	version   byte
	keepAlive uint16        // seconds, as enforced
	flags     atomic.Uint32 // flag bits below; one word instead of five at ten million connections
	// lastSeen is the coarse clock tick of the last packet, and stalled the
	// tick since which bytes have been waiting (0 for none), both kept to
	// their low 32 bits (see since): 8 bytes that keep the client in the
	// 128-byte size class.
	lastSeen atomic.Uint32
	stalled  atomic.Uint32
	pending  atomic.Int64 // bytes written but not yet taken by the kernel

	// buf holds a partial packet between reads; nil otherwise, so an idle
	// connection keeps no read buffer.
	buf []byte

	will          atomic.Pointer[Message] // taken once, by whoever publishes or drops it
	willDelay     uint32
	sessionExpiry atomic.Uint32 // a v5 DISCONNECT may change it

	sendQuota  uint16            // client's Receive Maximum
	maxOut     uint32            // client's Maximum Packet Size, 0 for none
	aliasesIn  map[uint16]string // v5 topic aliases the client set
	aliasesOut *aliases          // set at CONNECT when the client accepts aliases

	// guard is the ACL, flood state, credentials' expiry and the input held
	// while a packet is decided off the loop (auth.go, pending.go); nil
	// when the broker has none of these, so an idle connection of a broker
	// without authentication pays 8 bytes for it. It is set once, before
	// flagConnected, by whichever goroutine owns the connection then.
	guard *guard
}

// Client flags. Each goes from unset to set once.
const (
	flagConnected    uint32 = 1 << iota // CONNECT accepted
	flagClosing                         // the connection is ending; ignore its input
	flagReleased                        // the session was let go, see release
	flagAnswered                        // a CONNACK went out
	flagDisconnected                    // a normal DISCONNECT: no will
	flagConnecting                      // a CONNECT came: the connect timeout is over
)

func (c *client) has(f uint32) bool { return c.flags.Load()&f != 0 }
func (c *client) set(f uint32)      { c.flags.Or(f) }

// setOnce sets f and reports whether it was already set.
func (c *client) setOnce(f uint32) bool { return c.flags.Or(f)&f != 0 }

// aliases are the topic aliases the broker assigns towards a v5 client.
// They are used under the session lock, like every PUBLISH write.
type aliases struct {
	out map[string]uint16
	max uint16 // client's Topic Alias Maximum
}

// Open, Data, Written and Close make Server a transport.Handler.

// Open registers a new connection and starts its CONNECT timer.
func (s *Server) Open(conn transport.Conn) any {
	c := &client{srv: s, conn: conn}
	s.stats.sockets.Add(1)
	s.silent.add(c, s.clock.Load()+int64(max(s.cfg.ConnectTimeout, 1))*ticksPerSecond)
	// The event loop that calls Data is handed the connection through
	// epoll, which the race detector cannot see; this store and the load
	// that starts Data order everything Open did before Data for it.
	c.lastSeen.Store(uint32(s.clock.Load()))
	return c
}

// Data frames and handles every whole packet in data, keeping a partial
// one for the next read.
func (s *Server) Data(state any, data []byte) {
	c := state.(*client)
	c.lastSeen.Load() // pairs with the store at the end of Open
	if c.has(flagClosing) {
		return
	}
	s.stats.bytesIn.Add(int64(len(data)))
	c.lastSeen.Store(uint32(s.clock.Load()))
	if c.hold(data) {
		return
	}
	ps := passPool.Get().(*pass)
	c.feed(data, nil, ps)
	ps.flush()
	passPool.Put(ps)
}

// feed frames and handles data, on the event loop or, after a suspended
// packet, on the worker that finished it (prev is then the pending it is
// draining). It reports whether a packet was suspended, in which case the
// rest went with it. ps is the event loop's pass (batch.go), nil elsewhere.
func (c *client) feed(data []byte, prev *pending, ps *pass) bool {
	s := c.srv
	b := data
	if len(c.buf) > 0 {
		c.buf = append(c.buf, data...)
		b = c.buf
	}
	limit := s.maxPacket()
	for len(b) > 0 {
		fh, n, err := packets.ReadFixedHeader(b)
		if err == packets.ErrIncomplete {
			break
		}
		if err != nil {
			c.fail(err)
			return false
		}
		size := n + fh.Remaining
		if size > limit {
			c.fail(packets.ErrPacketTooLarge)
			return false
		}
		if len(b) < size {
			break
		}
		if err := c.handle(fh, b[n:size], ps); err != nil {
			if err == errSuspended {
				// The packet went to a worker, which handles the rest
				// after it: this read's tail, then what came meanwhile.
				p := c.guard.pend.Load()
				p.in = append(p.in, b[size:]...)
				c.buf = nil
				if prev != nil {
					prev.handOver(p)
				}
				p.mu.Unlock()
				return true
			}
			c.fail(err)
			return false
		}
		if c.has(flagClosing) {
			return false
		}
		b = b[size:]
	}
	c.keep(b, limit)
	return false
}

// keep stores the unconsumed tail b, which may alias c.buf or the event
// loop's read buffer.
func (c *client) keep(b []byte, limit int) {
	if len(b) == 0 {
		c.buf = nil
		return
	}
	if len(c.buf) > 0 && &b[len(b)-1] == &c.buf[len(c.buf)-1] {
		n := copy(c.buf, b)
		c.buf = c.buf[:n]
		return
	}
	want := len(b)
	if fh, n, err := packets.ReadFixedHeader(b); err == nil {
		// Size the buffer for the whole packet once its length is known, so
		// a large packet arriving in many reads is not copied again and again.
		want = min(n+fh.Remaining, limit)
	}
	c.buf = append(make([]byte, 0, max(want, len(b))), b...)
}

// Written accounts bytes the kernel accepted.
func (s *Server) Written(state any, n int) {
	c := state.(*client)
	if c.pending.Add(int64(-n)) <= 0 {
		c.stalled.Store(0)
	}
}

// Close is the transport's word that the connection is gone.
func (s *Server) Close(state any, err error) {
	c := state.(*client)
	c.set(flagClosing)
	s.stats.sockets.Add(-1)
	c.release()
}

// release lets the session go, once, as soon as the connection is known to
// be ending, rather than when the event loop later reports the close: a
// message published right after a DISCONNECT must be queued for the
// session, not written to the dying connection.
func (c *client) release() {
	if !c.has(flagConnected) || c.setOnce(flagReleased) {
		return
	}
	c.srv.stats.connected.Add(-1)
	c.srv.detach(c)
	c.srv.hookGone(c)
}

func (s *Server) maxPacket() int {
	if s.cfg.MaxPacketSize > 0 {
		return s.cfg.MaxPacketSize
	}
	return packets.MaxRemainingLength + 5
}

var packetPool = sync.Pool{New: func() any { return new(packets.Packet) }}

// handle decodes and acts on one packet whose body is body.
func (c *client) handle(fh packets.FixedHeader, body []byte, ps *pass) error {
	pk := packetPool.Get().(*packets.Packet)
	defer packetPool.Put(pk)
	if !c.has(flagConnected) {
		if fh.Type != packets.Connect {
			return errNotConnect
		}
		if err := packets.Decode(pk, fh, body, 0); err != nil {
			c.refuseMalformedConnect(pk, err)
			return err
		}
		return c.srv.connect(c, pk, fh, body)
	}
	if c.srv.hookEv != 0 && c.srv.hookBlocks(hookEvent(fh.Type)) {
		return c.offload(fh, body)
	}
	if err := packets.Decode(pk, fh, body, c.version); err != nil {
		return err
	}
	switch pk.Type {
	case packets.Publish:
		return c.publish(pk, nil, ps)
	case packets.Puback:
		c.sess.acked(pk.PacketID, 1)
	case packets.Pubrec:
		if !c.sess.received(pk.PacketID, pk.ReasonCode) && c.version == packets.V5 {
			// Nothing in flight under that ID: answer so the sender can
			// finish (MQTT 5.0 §4.3.3).
			c.writeAck(packets.Pubrel, pk.PacketID, packets.PacketIdentifierNotFound)
		}
	case packets.Pubrel:
		code := byte(0)
		if !c.sess.release(pk.PacketID) && c.version == packets.V5 {
			code = packets.PacketIdentifierNotFound
		}
		c.sendAck(ps, packets.Pubcomp, pk.PacketID, code)
	case packets.Pubcomp:
		c.sess.acked(pk.PacketID, 2)
	case packets.Subscribe:
		return c.subscribe(pk, nil)
	case packets.Unsubscribe:
		c.unsubscribe(pk, nil)
	case packets.Pingreq:
		if err := c.pinged(); err != nil {
			return err
		}
		c.write([]byte{byte(packets.Pingresp) << 4, 0})
	case packets.Disconnect:
		return c.disconnect(pk)
	case packets.Connect:
		return errSecondConnect
	case packets.Auth:
		return errAuthUnsupported
	default:
		return errServerPacket
	}
	return nil
}

var (
	errNotConnect      = &packets.Error{Code: packets.ProtocolError, Msg: "first packet is not CONNECT"}
	errSecondConnect   = &packets.Error{Code: packets.ProtocolError, Msg: "second CONNECT"}
	errAuthUnsupported = &packets.Error{Code: packets.ProtocolError, Msg: "AUTH without enhanced authentication"}
	errServerPacket    = &packets.Error{Code: packets.ProtocolError, Msg: "packet type only a server sends"}
	errAlias           = &packets.Error{Code: packets.TopicAliasInvalid, Msg: "topic alias out of range"}
	errAliasUnknown    = &packets.Error{Code: packets.ProtocolError, Msg: "topic alias not set"}
	errReceiveMax      = &packets.Error{Code: packets.ReceiveMaximumExceeded, Msg: "receive maximum exceeded"}
	errSubIDFromClient = &packets.Error{Code: packets.ProtocolError, Msg: "subscription identifier in a client's PUBLISH"}
	errSharedNoLocal   = &packets.Error{Code: packets.ProtocolError, Msg: "no local on a shared subscription"}
	errExpiryFromZero  = &packets.Error{Code: packets.ProtocolError, Msg: "session expiry set in DISCONNECT after 0 in CONNECT"}
	errKeepAlive       = &packets.Error{Code: packets.KeepAliveTimeout, Msg: "keepalive timeout"}
	errTakenOver       = &packets.Error{Code: packets.SessionTakenOver, Msg: "session taken over"}
	errShutdown        = &packets.Error{Code: packets.ServerShuttingDown, Msg: "server shutting down"}
)

// lingerTime is how long a connection stays open after the broker's last
// word (a refusing CONNACK or a DISCONNECT) before it is closed. Closing at
// once, with the client's packets still unread, makes the kernel send a
// reset, and a reset discards that last packet from the client's receive
// buffer before the client reads it.
const lingerTime = time.Second

// fail closes the connection after a protocol violation, telling a v5
// client why with DISCONNECT (MQTT 5.0 §4.13).
func (c *client) fail(err error) {
	if c.setOnce(flagClosing) {
		return
	}
	var pe *packets.Error
	final := c.has(flagAnswered) && !c.has(flagConnected)
	if c.has(flagConnected) && c.version == packets.V5 && errors.As(err, &pe) {
		c.writeAck(packets.Disconnect, 0, pe.Code)
		final = true
	}
	if err != errKeepAlive && err != errTakenOver && err != errShutdown && err != errKicked {
		c.srv.stats.protocolErrors.Add(1)
		c.srv.log.Debug("closing connection", "client", c.clientID(), "remote", c.conn.RemoteAddr().String(), "err", err)
	}
	if final {
		time.AfterFunc(lingerTime, func() { c.conn.Close() })
	} else {
		c.conn.Close()
	}
	c.release()
}

func (c *client) clientID() string {
	if c.sess != nil {
		return c.sess.id
	}
	return ""
}

// refuseMalformedConnect answers a CONNECT that failed to decode where the
// spec gives a CONNACK code for it.
func (c *client) refuseMalformedConnect(pk *packets.Packet, err error) {
	var pe *packets.Error
	if !errors.As(err, &pe) {
		return
	}
	if pe.Code == packets.UnsupportedProtocolVersion {
		// A server that cannot tell what the client speaks answers in the
		// 3.1.1 form (MQTT 3.1.1 §3.1.2.2); a level-5 client understands
		// 0x84 in the v5 form.
		if pk.Connect.Level == packets.V5 {
			c.connack(packets.V5, false, packets.UnsupportedProtocolVersion, nil)
		} else {
			c.connack(packets.V311, false, packets.V3UnacceptableProtocol, nil)
		}
		return
	}
	if pk.Connect.Level == packets.V5 {
		c.connack(packets.V5, false, pe.Code, nil)
	}
}

// write sends one whole packet.
func (c *client) write(b []byte) {
	c.pending.Add(int64(len(b)))
	c.srv.stats.bytesOut.Add(int64(len(b)))
	if _, err := c.conn.Write(b); err != nil {
		c.pending.Add(int64(-len(b)))
		return
	}
	c.stalling()
}

// stalling starts the write timeout when bytes wait after a write.
func (c *client) stalling() {
	if c.pending.Load() > 0 && c.srv.cfg.IOTimeout > 0 && c.stalled.Load() == 0 {
		// The socket did not take everything: start the write timeout.
		now := c.srv.clock.Load()
		if c.stalled.CompareAndSwap(0, max(uint32(now), 1)) {
			c.srv.stalls.add(c, now+int64(c.srv.cfg.IOTimeout)*ticksPerSecond)
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// encodeAndWrite encodes pk for this connection and writes it. It reports
// false when the packet exceeds the client's Maximum Packet Size.
func (c *client) encodeAndWrite(pk *packets.Packet) bool { return c.encodeAndSend(nil, pk) }

// encodeAndSend is encodeAndWrite, staged in pass ps when not nil.
func (c *client) encodeAndSend(ps *pass, pk *packets.Packet) bool {
	bp := bufPool.Get().(*[]byte)
	b := packets.Encode((*bp)[:0], pk, c.version)
	ok := c.maxOut == 0 || len(b) <= int(c.maxOut)
	if ok {
		c.send(ps, b)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return ok
}

// writeAck sends PUBACK, PUBREC, PUBREL, PUBCOMP or DISCONNECT.
func (c *client) writeAck(t packets.Type, pid uint16, code byte) { c.sendAck(nil, t, pid, code) }

// sendAck is writeAck, staged in pass ps when not nil.
func (c *client) sendAck(ps *pass, t packets.Type, pid uint16, code byte) {
	var pk packets.Packet
	pk.Type = t
	pk.PacketID = pid
	pk.ReasonCode = code
	c.encodeAndSend(ps, &pk)
}

// connack answers CONNECT.
func (c *client) connack(version byte, present bool, code byte, props *packets.Properties) {
	var pk packets.Packet
	pk.Type = packets.Connack
	pk.SessionPresent = present
	pk.ReasonCode = code
	if props != nil {
		pk.Props = *props
	}
	b := packets.Encode(make([]byte, 0, 64), &pk, version)
	c.write(b)
	c.set(flagAnswered)
}

// writePublish sends p with the given delivery parameters. The session lock
// is held, which also guards the outbound alias table.
func (c *client) writePublish(p *pub, qos byte, retain, dup bool, pid uint16, ids []uint32) {
	var pk packets.Packet
	pk.Type = packets.Publish
	pk.QoS = qos
	pk.Retain = retain
	pk.Dup = dup
	pk.PacketID = pid
	pk.Topic = p.topic
	pk.Payload = p.payload
	if c.version == packets.V5 {
		if p.props != nil {
			// An inbound PUBLISH's own properties (alias, expiry, ...) are
			// per connection; only the forwarded ones go on.
			pk.Props = *p.props
			pk.Props.Present &= forwarded
			pk.Props.SubscriptionIDs = nil
		}
		if !p.expires.IsZero() {
			left := time.Until(p.expires)
			if left <= 0 {
				return
			}
			pk.Props.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
			pk.Props.Set(packets.PropMessageExpiry)
		}
		if len(ids) > 0 {
			pk.Props.SubscriptionIDs = ids
			pk.Props.Set(packets.PropSubscriptionID)
		}
		if c.aliasesOut != nil {
			c.aliasesOut.apply(&pk)
		}
	}
	if c.encodeAndSend(p.pass, &pk) {
		c.srv.stats.msgsOut[qos].Add(1)
	} else {
		c.srv.stats.dropped[dropTooLarge].Add(1)
	}
}

// apply replaces the topic by an alias the client already knows, or
// assigns one while the client's Topic Alias Maximum allows.
func (al *aliases) apply(pk *packets.Packet) {
	if a, ok := al.out[stringOf(pk.Topic)]; ok {
		pk.Topic = nil
		pk.Props.TopicAlias = a
		pk.Props.Set(packets.PropTopicAlias)
		return
	}
	if len(al.out) >= int(al.max) {
		return
	}
	if al.out == nil {
		al.out = make(map[string]uint16)
	}
	a := uint16(len(al.out) + 1)
	al.out[string(pk.Topic)] = a
	pk.Props.TopicAlias = a
	pk.Props.Set(packets.PropTopicAlias)
}

// publish handles an inbound PUBLISH; a is the hooks' answer when they
// were asked off the event loop, ps the loop's pass (nil off the loop).
func (c *client) publish(pk *packets.Packet, a *hookAnswer, ps *pass) error {
	s := c.srv
	s.stats.msgsIn[pk.QoS].Add(1)
	topic := pk.Topic
	if c.version == packets.V5 && pk.Props.Has(packets.PropTopicAlias) {
		a := pk.Props.TopicAlias
		if a == 0 || int(a) > s.cfg.TopicAliasMaximum {
			return errAlias
		}
		if len(topic) > 0 {
			if c.aliasesIn == nil {
				c.aliasesIn = make(map[uint16]string)
			}
			c.aliasesIn[a] = string(topic)
		} else {
			t, ok := c.aliasesIn[a]
			if !ok {
				return errAliasUnknown
			}
			topic = bytesOf(t)
		}
	}
	p := pub{topic: topic, payload: pk.Payload, qos: pk.QoS, retain: pk.Retain, from: c.sess, pass: ps}
	ok, err := c.canPublish(topic)
	if err != nil {
		return err
	}
	code := byte(packets.NotAuthorized)
	if ok && (a != nil || s.hookEv&hooks.Publish != 0) {
		ok, code = c.hookPublish(pk, &p, a)
	}
	if !ok {
		return c.refusePublish(pk, code)
	}
	if c.version == packets.V5 {
		if pk.Props.Has(packets.PropSubscriptionID) {
			return errSubIDFromClient
		}
		p.props = &pk.Props
		if pk.Props.Has(packets.PropMessageExpiry) {
			p.expires = time.Now().Add(time.Duration(pk.Props.MessageExpiry) * time.Second)
		}
	}
	// Clients do not write into the broker's own $SYS tree.
	sys := len(p.topic) >= 5 && string(p.topic[:5]) == "$SYS/"
	switch pk.QoS {
	case 0:
		if _, kept := s.publishSpecial(&p); kept {
			s.store.Commit()
		} else if !sys {
			s.route(&p)
		}
	case 1:
		// The acknowledgement follows the fan-out, which tells whether the
		// message had to be stored; if so it waits for the store's commit
		// (persist.go). $queue and $delayed messages always are stored.
		if code, kept := s.publishSpecial(&p); kept {
			if code >= 0x80 {
				c.writeAck(packets.Puback, pk.PacketID, c.reason(code))
				return nil
			}
			p.stored = true
		} else if !sys {
			s.route(&p)
		}
		if p.failed {
			return errStoreFailed
		}
		c.ack(ps, packets.Puback, pk.PacketID, p.stored)
	case 2:
		isNew, ok := c.sess.addInbound2(pk.PacketID, s.cfg.ReceiveMaximum)
		if !ok {
			return errReceiveMax
		}
		special := false
		if isNew {
			code, kept := s.publishSpecial(&p)
			if kept && code >= 0x80 {
				// A PUBREC with an error ends the exchange: no PUBREL follows.
				c.sess.release(pk.PacketID)
				c.writeAck(packets.Pubrec, pk.PacketID, c.reason(code))
				return nil
			}
			special, p.stored = kept, kept
		}
		if isNew && !sys && !special {
			s.route(&p)
		}
		if isNew {
			stored, failed := c.sess.markInbound(pk.PacketID)
			p.stored = p.stored || stored
			p.failed = p.failed || failed
		}
		if p.failed {
			// Forgotten, so that the message is routed when sent again.
			c.sess.release(pk.PacketID)
			return errStoreFailed
		}
		c.ack(ps, packets.Pubrec, pk.PacketID, p.stored)
	}
	return nil
}

// reason is code for a v5 client; v3 acknowledgements carry none.
func (c *client) reason(code byte) byte {
	if c.version != packets.V5 {
		return 0
	}
	return code
}

// subscribe handles SUBSCRIBE: SUBACK first, then retained messages. a is
// the hooks' answer when they were asked off the event loop.
func (c *client) subscribe(pk *packets.Packet, a *hookAnswer) error {
	s := c.srv
	codes := make([]byte, len(pk.Filters))
	type retainedReq struct {
		filter string
		opts   topics.Options
	}
	var sendRetained []retainedReq
	if a == nil && s.hookEv&hooks.Subscribe != 0 {
		ans := c.askHooks(pk)
		a = &ans
	}
	for i, f := range pk.Filters {
		filter := string(f.Filter)
		if a != nil {
			var ok bool
			if filter, ok = c.hookFilter(a, i, &f); !ok {
				codes[i] = c.refuseSubscribe(a.busy)
				continue
			}
		}
		if !topics.ValidFilter(filter) {
			codes[i] = c.failCode(packets.TopicFilterInvalid)
			continue
		}
		group, _, queue, shared := topics.ParseGroup(filter)
		if shared && f.NoLocal {
			return errSharedNoLocal
		}
		if s.denied(filter) || !c.canSubscribe(filter) {
			codes[i] = c.refuseSubscribe(false)
			continue
		}
		opts := topics.Options{QoS: f.QoS, NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling}
		if len(pk.Props.SubscriptionIDs) > 0 {
			opts.ID = pk.Props.SubscriptionIDs[0]
		}
		isNew := s.subs.Subscribe(filter, c.sess, opts)
		c.sess.mu.Lock()
		c.sess.setSub(filter, opts)
		c.sess.mu.Unlock()
		codes[i] = f.QoS
		if queue {
			s.wakeQueue(group)
		}
		if group == "" && (opts.RetainHandling == 0 || opts.RetainHandling == 1 && isNew) {
			sendRetained = append(sendRetained, retainedReq{filter, opts})
		}
	}
	ack := packets.Packet{Type: packets.Suback, PacketID: pk.PacketID, ReasonCodes: codes}
	if p, wait := c.saveSubs(); wait {
		// Copies, so that only this path puts the packet on the heap.
		ack, retained := ack, sendRetained
		c.afterCommit(p, func() {
			c.encodeAndWrite(&ack)
			for _, r := range retained {
				s.sendRetained(c.sess, r.filter, r.opts)
			}
		})
		return nil
	}
	c.encodeAndWrite(&ack)
	for _, r := range sendRetained {
		s.sendRetained(c.sess, r.filter, r.opts)
	}
	if a != nil {
		c.subscribeExtra(pk, a)
	}
	return nil
}

// failCode maps a v5 reason code to the v3 SUBACK failure where needed.
func (c *client) failCode(code byte) byte {
	if c.version == packets.V5 {
		return code
	}
	return packets.V3SubackFailure
}

func (c *client) unsubscribe(pk *packets.Packet, a *hookAnswer) {
	codes := make([]byte, len(pk.Filters))
	if a == nil && c.srv.hookEv&hooks.Unsubscribe != 0 {
		ans := c.askHooks(pk)
		a = &ans
	}
	for i, f := range pk.Filters {
		filter := string(f.Filter)
		if a != nil {
			var ok bool
			if filter, ok = c.hookFilter(a, i, &f); !ok {
				codes[i] = c.failCode(packets.NotAuthorized)
				continue
			}
		}
		existed := c.srv.subs.Unsubscribe(filter, c.sess)
		c.sess.mu.Lock()
		c.sess.removeSub(filter)
		c.sess.mu.Unlock()
		if !existed {
			codes[i] = packets.NoSubscriptionExisted
		}
	}
	ack := packets.Packet{Type: packets.Unsuback, PacketID: pk.PacketID, ReasonCodes: codes}
	if p, wait := c.saveSubs(); wait {
		ack := ack
		c.afterCommit(p, func() { c.encodeAndWrite(&ack) })
		return
	}
	c.encodeAndWrite(&ack)
	if a != nil {
		for i := range a.subs {
			for _, f := range a.subs[i].Extra {
				c.srv.subs.Unsubscribe(f, c.sess)
				c.sess.mu.Lock()
				c.sess.removeSub(f)
				c.sess.mu.Unlock()
			}
		}
	}
}

// disconnect handles a client's DISCONNECT.
func (c *client) disconnect(pk *packets.Packet) error {
	if c.version == packets.V5 {
		if pk.Props.Has(packets.PropSessionExpiry) {
			if c.sessionExpiry.Load() == 0 && pk.Props.SessionExpiry != 0 {
				return errExpiryFromZero
			}
			c.sessionExpiry.Store(pk.Props.SessionExpiry)
		}
	}
	if c.version != packets.V5 || pk.ReasonCode != packets.DisconnectWithWill {
		c.set(flagDisconnected)
	}
	c.set(flagClosing)
	c.conn.Close()
	c.release()
	return nil
}

func (s *session) setSub(filter string, opts topics.Options) {
	for i := range s.subs {
		if s.subs[i].filter == filter {
			s.subs[i].opts = opts
			return
		}
	}
	s.subs = append(s.subs, subscription{filter, opts})
}

func (s *session) removeSub(filter string) {
	for i := range s.subs {
		if s.subs[i].filter == filter {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

func (s *Server) denied(filter string) bool {
	for _, d := range s.cfg.DenySubscribe {
		if d == filter {
			return true
		}
	}
	return false
}
