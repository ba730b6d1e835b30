package broker

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/transport"
)

// connect handles CONNECT: identity, authentication, session, will,
// keepalive, CONNACK. When authentication or a hook cannot answer at once
// it returns errSuspended and a worker finishes the CONNECT (auth.go).
func (s *Server) connect(c *client, pk *packets.Packet, fh packets.FixedHeader, body []byte) error {
	cf := &pk.Connect
	v := cf.Level
	id := string(cf.ClientID)
	assigned := false
	if id == "" {
		// 3.1 requires an ID; 3.1.1 allows none only with a clean session.
		if v == packets.V31 || v == packets.V311 && !cf.CleanStart {
			c.connack(v, false, packets.V3IdentifierRejected, nil)
			return errClientID
		}
		id = newClientID()
		assigned = v == packets.V5
	}
	if v == packets.V5 && pk.Props.Has(packets.PropAuthMethod) {
		c.connack(v, false, packets.BadAuthenticationMethod, nil)
		return errAuthMethod
	}
	if s.cfg.MaxConnections > 0 && s.stats.connected.Load() >= int64(s.cfg.MaxConnections) {
		code := packets.V3ServerUnavailable
		if v == packets.V5 {
			code = packets.QuotaExceeded
		}
		c.connack(v, false, code, nil)
		return errTooMany
	}
	if s.closing.Load() {
		return errShutdown
	}
	c.set(flagConnecting)
	if s.open() {
		r := auth.Result{Decision: auth.Allow, Username: string(cf.Username)}
		return s.connectWith(c, pk, id, assigned, nil, r, hookVerdict{})
	}
	info := auth.ConnectInfo{ClientID: id, Username: string(cf.Username), Password: cf.Password,
		Addr: addrOf(c.conn), CertCN: transport.CommonName(c.conn)}
	if !s.connectAllowed(info.Addr) {
		r := auth.Result{Decision: auth.Deny, Reason: auth.RateLimited}
		return s.refuseAuth(c, v, info, &r)
	}
	r, now := s.authenticate(c, &info, id, assigned, fh, body)
	if !now {
		return errSuspended
	}
	var hk hookVerdict
	if r.Decision == auth.Allow && s.hookEv&hooks.Connect != 0 {
		if s.hookBlocks(hooks.Connect) {
			return s.connectOffloaded(c, v, &info, r, id, assigned, fh, body)
		}
		hk = s.hookConnect(&info, &r)
	}
	return s.connectWith(c, pk, id, assigned, &info, r, hk)
}

// connectWith goes on with a CONNECT once authentication (and the
// OnConnect hook) answered. info is nil when there was nothing to ask.
func (s *Server) connectWith(c *client, pk *packets.Packet, id string, assigned bool, info *auth.ConnectInfo, r auth.Result, hk hookVerdict) error {
	cf := &pk.Connect
	v := cf.Level
	if info == nil {
		info = &auth.ConnectInfo{ClientID: id}
	}
	if r.Decision == auth.Allow && hk.err != nil {
		r = auth.Result{Decision: auth.Deny, Reason: auth.NotAuthorized, Err: hk.err}
	}
	if r.Decision != auth.Allow {
		return s.refuseAuth(c, v, *info, &r)
	}
	g := s.newGuard(&r, id, info.Addr)
	if cf.WillFlag && g != nil && !g.acl.CanPublish(string(cf.WillTopic)) {
		s.stats.pubDenied.Add(1)
		r = auth.Result{Decision: auth.Deny, Reason: auth.NotAuthorized, Err: errWillDenied}
		return s.refuseAuth(c, v, *info, &r)
	}
	if s.closing.Load() {
		return errShutdown
	}
	s.loginSucceeded(info.Addr)
	c.install(g)

	c.version = v
	c.keepAlive = cf.KeepAlive
	c.sendQuota = uint16(s.cfg.MaxInflight)
	var ackProps packets.Properties
	if v == packets.V5 {
		c.sessionExpiry.Store(pk.Props.SessionExpiry)
		if pk.Props.Has(packets.PropReceiveMaximum) {
			c.sendQuota = min(c.sendQuota, pk.Props.ReceiveMaximum)
		}
		c.maxOut = pk.Props.MaximumPacketSize
		if max := min(pk.Props.TopicAliasMaximum, uint16(s.cfg.TopicAliasMaximum)); max > 0 {
			c.aliasesOut = &aliases{max: max}
		}
		if max := s.cfg.MaxKeepAlive; max > 0 && (c.keepAlive == 0 || int(c.keepAlive) > max) {
			c.keepAlive = uint16(max)
			ackProps.ServerKeepAlive = c.keepAlive
			ackProps.Set(packets.PropServerKeepAlive)
		}
		if assigned {
			ackProps.AssignedClientID = []byte(id)
			ackProps.Set(packets.PropAssignedClientID)
		}
		ackProps.ReceiveMaximum = uint16(s.cfg.ReceiveMaximum)
		ackProps.Set(packets.PropReceiveMaximum)
		if s.cfg.TopicAliasMaximum > 0 {
			ackProps.TopicAliasMaximum = uint16(s.cfg.TopicAliasMaximum)
			ackProps.Set(packets.PropTopicAliasMaximum)
		}
		if s.cfg.MaxPacketSize > 0 {
			ackProps.MaximumPacketSize = uint32(s.cfg.MaxPacketSize)
			ackProps.Set(packets.PropMaximumPacketSize)
		}
		if max := uint32(s.cfg.MaxSessionExpiry); max > 0 && c.sessionExpiry.Load() > max {
			c.sessionExpiry.Store(max)
			ackProps.SessionExpiry = max
			ackProps.Set(packets.PropSessionExpiry)
		}
	} else if !cf.CleanStart {
		c.sessionExpiry.Store(neverExpire)
		if max := uint32(s.cfg.MaxSessionExpiry); max > 0 {
			c.sessionExpiry.Store(max)
		}
	}
	if cf.WillFlag {
		c.will.Store(s.willMessage(pk))
		c.willDelay = cf.WillProps.WillDelay
	}

	sess, present := s.takeSession(c, id, cf.CleanStart)
	c.sess = sess
	c.set(flagConnected)
	s.stats.connected.Add(1)
	s.stats.connects.Add(1)

	sess.mu.Lock()
	c.connack(v, present, 0, &ackProps)
	sess.c = c
	sess.expiry = c.sessionExpiry.Load()
	s.attach(sess, present)
	if present {
		sess.resume()
	}
	sess.mu.Unlock()

	if c.keepAlive > 0 {
		s.silent.add(c, s.clock.Load()+keepAliveTicks(c.keepAlive))
	}
	if g != nil && g.expires != 0 {
		s.expiring.add(c, g.expires)
	}
	if c.has(flagClosing) {
		// The connection ended while a worker finished its CONNECT: Close
		// found it not yet connected and left the release to us.
		c.release()
	}
	return nil
}

var (
	errClientID   = &packets.Error{Code: packets.ClientIdentifierNotValid, Msg: "client identifier rejected"}
	errAuthMethod = &packets.Error{Code: packets.BadAuthenticationMethod, Msg: "enhanced authentication not supported"}
	errTooMany    = &packets.Error{Code: packets.QuotaExceeded, Msg: "connection limit reached"}
	errWillDenied = &packets.Error{Code: packets.NotAuthorized, Msg: "will topic not allowed"}
)

func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "cp7-" + hex.EncodeToString(b[:])
}

// willMessage builds the will of a CONNECT.
func (s *Server) willMessage(pk *packets.Packet) *Message {
	cf := &pk.Connect
	m := &Message{Message: store.Message{
		Topic:   string(cf.WillTopic),
		Payload: clone(cf.WillPayload),
		QoS:     cf.WillQoS,
		Retain:  cf.WillRetain,
		Props:   forwardedProps(&cf.WillProps),
	}}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	if cf.WillProps.Has(packets.PropMessageExpiry) {
		// Expiry of a will counts from when it is published; keep the
		// interval until then in Expires as a duration from zero time.
		m.Expires = time.Time{}.Add(time.Duration(cf.WillProps.MessageExpiry) * time.Second)
	}
	return m
}

// takeSession finds or creates the session for id and evicts a connection
// that holds it (session takeover).
func (s *Server) takeSession(c *client, id string, clean bool) (*session, bool) {
	s.sessMu.Lock()
	old := s.sessions[id]
	var sess *session
	present := false
	// A session with expiry 0 (v3 clean session, v5 expiry 0) lives only
	// as long as its connection, so a newcomer never resumes it.
	if old != nil && !clean && old.lastsBeyondConnection() {
		sess = old
		present = true
	} else {
		sess = &session{id: id, srv: s}
		s.sessions[id] = sess
	}
	s.sessMu.Unlock()

	if old != nil {
		old.mu.Lock()
		prev := old.c
		old.c = nil
		// A client that comes back within its will delay cancels the will
		// (MQTT 5.0 §3.1.3.2.2).
		old.stopOffline(true)
		old.mu.Unlock()
		if prev != nil {
			prev.takenOver()
		}
		if old != sess {
			s.dropSession(old)
		}
	}
	return sess, present
}

func (s *session) lastsBeyondConnection() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry != 0
}

// takenOver closes a connection whose client ID was claimed by a newer one.
// Its will goes out unless it has a delay, which the new connection cancels.
func (c *client) takenOver() {
	if c.willDelay > 0 {
		c.will.Store(nil)
	}
	c.fail(errTakenOver)
}

// detach runs when a connected client's connection is gone.
func (s *Server) detach(c *client) {
	sess := c.sess
	sess.mu.Lock()
	if sess.c != c {
		// Taken over: the session belongs to the new connection now, and
		// the will, if any, is this connection's own.
		sess.mu.Unlock()
		if w := c.will.Swap(nil); w != nil && !c.has(flagDisconnected) && (c.willDelay == 0 || s.closing.Load()) {
			s.publishWill(w)
		}
		return
	}
	sess.c = nil
	sess.expiry = c.sessionExpiry.Load()
	now := time.Now()
	var shared []delivery
	if !s.closing.Load() {
		shared = sess.takeShared()
	}
	will := c.will.Swap(nil)
	if c.has(flagDisconnected) {
		will = nil
	}
	ends := sess.expiry == 0
	if will != nil && c.willDelay > 0 && !ends && !s.closing.Load() {
		// The will waits for its delay or the end of the session,
		// whichever comes first (MQTT 5.0 §3.1.2.5).
		o := sess.offlineState()
		o.will = will
		delay := time.Duration(min(c.willDelay, sess.expiry)) * time.Second
		if d, ok := s.offlineFor(sess.expiry); ok {
			delay = min(delay, d)
		}
		o.willTimer = time.AfterFunc(delay, func() { s.fireWill(sess) })
		if sess.persist {
			s.putWill(sess, will, now.Add(delay))
		}
		will = nil
	}
	if !ends {
		s.armExpiry(sess, now)
		sess.save(now)
		if f := sess.flow; f != nil && sess.persist {
			// The stored queue's length is read again at the next CONNECT.
			f.stored = 0
			sess.trim()
		}
	}
	sess.mu.Unlock()
	s.reassign(sess, shared)
	if will != nil {
		s.publishWill(will)
	}
	if ends {
		s.endSession(sess)
	}
}

// fireWill publishes a delayed will whose delay ran out.
func (s *Server) fireWill(sess *session) {
	if s.closing.Load() {
		// Kept in the store, if persistent, for the next run.
		return
	}
	sess.mu.Lock()
	var w *Message
	if o := sess.off; o != nil {
		if o.will != nil && sess.persist {
			if err := s.store.Wills().Delete(sess.id); err != nil {
				s.storeFailed("delete will", sess.id, err)
			}
		}
		w = o.will
		o.will, o.willTimer = nil, nil
		if o.expiry == nil {
			sess.off = nil
		}
	}
	sess.mu.Unlock()
	if w != nil {
		s.publishWill(w)
	}
}

// expire ends an offline session whose expiry interval passed.
func (s *Server) expire(sess *session) {
	if s.closing.Load() {
		return
	}
	sess.mu.Lock()
	if sess.c != nil || sess.gone {
		sess.mu.Unlock()
		return
	}
	if sess.off != nil {
		sess.off.expiry = nil
	}
	sess.mu.Unlock()
	s.fireWill(sess)
	s.endSession(sess)
}

// endSession removes sess from the server if it is still the one
// registered under its ID.
func (s *Server) endSession(sess *session) {
	s.sessMu.Lock()
	ended := s.sessions[sess.id] == sess
	if ended {
		delete(s.sessions, sess.id)
	}
	s.sessMu.Unlock()
	s.dropSession(sess)
	if ended {
		s.hookExpired(sess.id)
	}
}

// dropSession discards a session's subscriptions and messages.
func (s *Server) dropSession(sess *session) {
	sess.mu.Lock()
	if sess.gone {
		sess.mu.Unlock()
		return
	}
	sess.stopOffline(true)
	if sess.persist {
		if err := s.store.Sessions().Delete(sess.id); err != nil {
			s.storeFailed("delete session", sess.id, err)
		}
	}
	sess.gone = true
	var shared []delivery
	if !s.closing.Load() {
		shared = sess.takeShared()
	}
	subs := sess.subs
	sess.subs, sess.flow = nil, nil
	sess.mu.Unlock()
	s.reassign(sess, shared)
	for _, sub := range subs {
		s.subs.Unsubscribe(sub.filter, sess)
	}
}

// publishWill routes a will message.
func (s *Server) publishWill(w *Message) {
	m := *w
	if !m.Expires.IsZero() {
		m.Expires = time.Now().Add(m.Expires.Sub(time.Time{}))
	}
	p := storedPub(&m)
	s.route(&p)
}
