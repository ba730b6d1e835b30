package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/memory"
	"github.com/coolpy7/coolpy7/store/pebble"
	"github.com/coolpy7/coolpy7/topics"
)

// Persistence (docs/store.md, docs/design.md "Persistence in the broker").
// A session is persistent when it outlives its connection (v3 clean
// session false, v5 session expiry > 0). Its record, its queue, its
// messages in flight and its inbound QoS 2 packet IDs are written through
// to s.store; a clean session never touches the store. While a persistent
// session is connected its queue lives in the store only and is read back
// in window-sized batches, so memory holds at most a window per session.

// StoreOptions turns the configuration into the store's options.
func StoreOptions(cfg config.Config, log *slog.Logger) (store.Options, error) {
	dur, err := store.ParseDurability(cfg.Durability)
	if err != nil {
		return store.Options{}, err
	}
	pol, err := store.ParsePolicy(cfg.QueuePolicy)
	if err != nil {
		return store.Options{}, err
	}
	return store.Options{
		Durability: dur,
		MaxCount:   cfg.MaxQueued,
		MaxBytes:   cfg.MaxQueuedBytes,
		Policy:     pol,
		TTL: store.TTL{
			Messages:  uint32(cfg.MessageTTL),
			Sessions:  uint32(cfg.SessionTTL),
			PacketIDs: uint32(cfg.PacketIDTTL),
			Wills:     uint32(cfg.WillTTL),
			Retained:  uint32(cfg.RetainedTTL),
		},
		Logger: log,
	}, nil
}

// openStore opens the store cfg names: Pebble in DataDir, or memory.
func openStore(cfg config.Config, log *slog.Logger) (store.Store, error) {
	o, err := StoreOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return memory.Open(o), nil
	}
	st, err := pebble.Open(cfg.DataDir, o)
	if err != nil {
		return nil, fmt.Errorf("%w; the broker does not start on a store it cannot read: stop every process using %s, keep a copy of it, and run `coolpy7 -repair -data %s`", err, cfg.DataDir, cfg.DataDir)
	}
	return st, nil
}

// load restores what a previous run left: session records (offline, their
// messages left on disk until the client returns), retained messages and
// delayed wills. Sessions the previous run did not see end (a crash) are
// saved again as disconnected now.
func (s *Server) load() error {
	st := s.store
	now := time.Now()
	var saveErr error
	err := st.Sessions().Range(func(id string, rec *store.SessionRecord) bool {
		sess := &session{id: id, srv: s, expiry: rec.Expiry, persist: true, cold: true}
		for _, sub := range rec.Subs {
			opts := topics.Options{QoS: sub.QoS, NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished,
				RetainHandling: sub.RetainHandling, ID: sub.ID}
			sess.subs = append(sess.subs, subscription{sub.Filter, opts})
			s.subs.Subscribe(sub.Filter, sess, opts)
		}
		if rec.Disconnected.IsZero() {
			rec.Disconnected = now
			if err := st.Sessions().Save(id, rec); err != nil {
				saveErr = err
				return false
			}
		}
		s.sessions[id] = sess
		sess.mu.Lock()
		s.armExpiry(sess, rec.Disconnected)
		sess.mu.Unlock()
		return true
	})
	if err = errors.Join(err, saveErr); err != nil {
		return err
	}
	err = st.Retained().Range(func(topic string, m *store.Message) bool {
		s.retained.Set(topic, &Message{Message: *m})
		return true
	})
	if err != nil {
		return err
	}
	var due []*Message
	err = st.Wills().Range(func(id string, m *store.Message, fireAt time.Time) bool {
		if strings.HasPrefix(id, delayedIDPrefix) {
			return true // a $delayed message, loadDelayed's
		}
		w := &Message{Message: *m}
		from := fireAt
		if from.Before(now) {
			from = now
		}
		if !m.Expires.IsZero() {
			// Back to the form publishWill expects: the interval left
			// after publication, counted from zero time.
			w.Expires = time.Time{}.Add(m.Expires.Sub(from))
		}
		sess := s.sessions[id]
		if sess == nil || !fireAt.After(now) {
			due = append(due, w)
			if err := st.Wills().Delete(id); err != nil {
				saveErr = err
				return false
			}
			return true
		}
		sess.mu.Lock()
		o := sess.offlineState()
		o.will = w
		o.willTimer = time.AfterFunc(fireAt.Sub(now), func() { s.fireWill(sess) })
		sess.mu.Unlock()
		return true
	})
	if err = errors.Join(err, saveErr); err != nil {
		return err
	}
	for _, w := range due {
		s.publishWill(w)
	}
	if err := s.loadQueues(); err != nil {
		return err
	}
	if n := len(s.sessions); n > 0 || len(due) > 0 {
		s.log.Info("store loaded", "sessions", n, "retained", s.retained.Len(), "wills published", len(due))
	}
	return nil
}

// offlineFor is how long a persistent session with expiry e outlives its
// connection: e seconds, capped by the session TTL (-st).
func (s *Server) offlineFor(e uint32) (time.Duration, bool) {
	ttl := uint32(s.cfg.SessionTTL)
	if ttl > 0 && (e == neverExpire || e > ttl) {
		e = ttl
	}
	if e == neverExpire {
		return 0, false
	}
	return time.Duration(e) * time.Second, true
}

// armExpiry starts the timer that ends sess, offline since since. Callers
// hold sess.mu.
func (s *Server) armExpiry(sess *session, since time.Time) {
	d, ok := s.offlineFor(sess.expiry)
	if !ok {
		return
	}
	sess.offlineState().expiry = time.AfterFunc(time.Until(since.Add(d)), func() { s.expire(sess) })
}

// storeFailed logs a failed store write. The broker stays up; a PUBLISH
// whose write failed is not acknowledged (pub.failed), so the publisher
// sends it again.
func (s *Server) storeFailed(what, id string, err error) {
	s.log.Error("store write failed", "op", what, "client", id, "err", err)
}

// record is sess's session record. Callers hold sess.mu.
func (sess *session) record(disconnected time.Time) *store.SessionRecord {
	rec := &store.SessionRecord{Expiry: sess.expiry, Disconnected: disconnected, Subs: make([]store.Sub, len(sess.subs))}
	for i, sub := range sess.subs {
		o := sub.opts
		rec.Subs[i] = store.Sub{Filter: sub.filter, QoS: o.QoS, NoLocal: o.NoLocal,
			RetainAsPublished: o.RetainAsPublished, RetainHandling: o.RetainHandling, ID: o.ID}
	}
	return rec
}

// save writes sess's record; disconnected is zero while connected.
// Callers hold sess.mu.
func (sess *session) save(disconnected time.Time) {
	if !sess.persist || sess.gone {
		return
	}
	if err := sess.srv.store.Sessions().Save(sess.id, sess.record(disconnected)); err != nil {
		sess.srv.storeFailed("save session", sess.id, err)
	}
}

// attach runs at CONNECT, under sess.mu, once sess.expiry is the new
// connection's: it records a persistent session as connected, loads what a
// previous run left in flight, and learns how long its stored queue is. A
// persistent session resumed by a connection that asks for expiry 0 turns
// back into a memory-only one.
func (s *Server) attach(sess *session, present bool) {
	if sess.expiry == 0 {
		if sess.persist {
			s.unpersist(sess)
		}
		return
	}
	n, _, err := s.store.Queues().Len(sess.id)
	if err != nil {
		s.storeFailed("queue length", sess.id, err)
	}
	if !present && (n > 0 || s.leftInFlight(sess.id)) {
		// A new session starts empty, whatever an earlier one of the same
		// ID left that the sweeper has not yet removed. Only then: each
		// Delete is range deletions, which slow the engine's reads while
		// they sit in its memtable.
		if err := s.store.Sessions().Delete(sess.id); err != nil {
			s.storeFailed("clear session", sess.id, err)
		}
		n = 0
	}
	sess.persist = true
	sess.save(time.Time{})
	s.warm(sess)
	if n > 0 || sess.flow != nil {
		f := sess.state()
		f.stored, f.lastSeq = n, 0
	}
}

// leftInFlight reports whether the store holds outbound or inbound QoS 1/2
// state for id.
func (s *Server) leftInFlight(id string) bool {
	found := false
	stop := func(uint16) bool { found = true; return false }
	err := s.store.Inflight().Range(id, func(pid uint16, _ *store.Message, _ bool) bool { return stop(pid) })
	if err == nil && !found {
		err = s.store.Inflight().RangeInbound(id, stop)
	}
	return found || err != nil
}

// warm loads a session restored at start-up: its messages in flight and
// its inbound QoS 2 packet IDs. Callers hold sess.mu.
func (s *Server) warm(sess *session) {
	if !sess.cold {
		return
	}
	sess.cold = false
	f := sess.state()
	err := s.store.Inflight().Range(sess.id, func(pid uint16, m *store.Message, released bool) bool {
		d := delivery{pid: pid, qos: 2, released: released}
		if m != nil {
			d.msg = &Message{Message: *m}
			d.qos, d.retain, d.ids = m.QoS, m.Retain, subIDs(m)
		}
		f.inflight = append(f.inflight, d)
		return true
	})
	if err == nil {
		err = s.store.Inflight().RangeInbound(sess.id, func(pid uint16) bool {
			f.inbound2 = append(f.inbound2, pid)
			return true
		})
	}
	if err != nil {
		s.storeFailed("load session", sess.id, err)
	}
	sess.trim()
}

// unpersist moves a persistent session's stored state into memory and
// deletes it from the store. Callers hold sess.mu.
func (s *Server) unpersist(sess *session) {
	s.warm(sess)
	qs, err := s.store.Queues().Read(sess.id, 0, s.cfg.MaxQueued)
	if err == nil && len(qs) > 0 {
		f := sess.state()
		for _, q := range qs {
			f.queue = append(f.queue, delivery{msg: &Message{Message: *q.Msg}, ids: subIDs(q.Msg), qos: q.Msg.QoS, retain: q.Msg.Retain})
		}
	}
	if err == nil {
		err = s.store.Sessions().Delete(sess.id)
	}
	if err != nil {
		s.storeFailed("unpersist session", sess.id, err)
	}
	if sess.flow != nil {
		sess.flow.stored = 0
	}
	sess.persist = false
}

func subIDs(m *store.Message) []uint32 {
	if m.Props == nil {
		return nil
	}
	return m.Props.SubscriptionIDs
}

// storeMessage is the form one delivery of m takes in the store: the
// delivery's QoS, retain flag and subscription identifiers.
func storeMessage(m *Message, qos byte, retain bool, ids []uint32) *store.Message {
	if qos == m.QoS && retain == m.Retain && len(ids) == 0 && (m.Props == nil || len(m.Props.SubscriptionIDs) == 0) {
		return &m.Message
	}
	sm := m.Message
	sm.QoS, sm.Retain = qos, retain
	if len(ids) > 0 || sm.Props != nil {
		var p packets.Properties
		if sm.Props != nil {
			p = *sm.Props
		}
		p.SubscriptionIDs = cloneIDs(ids)
		if len(ids) > 0 {
			p.Set(packets.PropSubscriptionID)
		} else {
			p.Present &^= 1 << packets.PropSubscriptionID
		}
		sm.Props = &p
	}
	return &sm
}

// deliverStored is deliver's QoS 1/2 path for a persistent session: into
// flight (written through) when connected with room in the window and
// nothing stored ahead of it, otherwise onto the stored queue. grp, qseq
// and try are put's: a shared delivery remembers its group only while in
// memory (the store does not keep it), and try never queues. Callers hold
// s.mu.
func (s *session) deliverStored(p *pub, qos byte, retain bool, ids []uint32, grp *topics.Group[*session], qseq uint64, try bool) bool {
	st := s.srv.store
	p.stored = true
	m := p.message()
	sm := storeMessage(m, qos, retain, ids)
	if c := s.c; c != nil {
		f := s.state()
		if f.stored == 0 && len(f.queue) == 0 && len(f.inflight) < int(c.sendQuota) {
			pid := f.allocPID()
			if err := st.Inflight().Put(s.id, pid, sm); err != nil {
				s.srv.storeFailed("put inflight", s.id, err)
				p.failed = true
			}
			f.inflight = append(f.inflight, delivery{msg: m, ids: cloneIDs(ids), pid: pid, qos: qos, retain: retain, grp: grp, qseq: qseq})
			c.writePublish(p, qos, retain, false, pid, ids)
			return true
		}
	}
	if try {
		// A shared group offers it to a member with room first.
		return false
	}
	_, dropped, err := st.Queues().Append(s.id, sm)
	if dropped > 0 {
		s.srv.stats.dropped[dropQueueFull].Add(int64(dropped))
	}
	if err != nil {
		if err != store.ErrQueueFull {
			s.srv.storeFailed("queue", s.id, err)
			p.failed = true
		}
		return false
	}
	if s.c != nil {
		// Only counted while connected: attach reads the length anew.
		f := s.state()
		f.stored = max(f.stored+1-dropped, 1)
	}
	return true
}

// pumpStored moves stored messages into the window, a window's worth per
// read. Callers hold s.mu.
func (s *session) pumpStored(c *client, f *flow) {
	st := s.srv.store
	for f.stored > 0 && len(f.inflight) < int(c.sendQuota) {
		room := int(c.sendQuota) - len(f.inflight)
		qs, err := st.Queues().Read(s.id, f.lastSeq, room)
		if err != nil {
			s.srv.storeFailed("read queue", s.id, err)
			return
		}
		if len(qs) < room {
			// The rest expired or was dropped (drop-oldest).
			f.stored = len(qs)
		}
		for _, q := range qs {
			pid := f.allocPID()
			if err := st.Inflight().Move(s.id, q.Seq, pid, q.Msg); err != nil {
				s.srv.storeFailed("move to inflight", s.id, err)
				return
			}
			f.lastSeq = q.Seq
			f.stored--
			d := delivery{msg: &Message{Message: *q.Msg}, ids: subIDs(q.Msg), pid: pid, qos: q.Msg.QoS, retain: q.Msg.Retain}
			f.inflight = append(f.inflight, d)
			p := storedPub(d.msg)
			c.writePublish(&p, d.qos, d.retain, false, d.pid, d.ids)
		}
		if len(qs) == 0 {
			return
		}
	}
}

// ack sends PUBACK or PUBREC, after the store's commit when the message
// had to be stored (Durable: after the group fsync, from the committer
// goroutine, never blocking the event loop). A failed commit closes the
// connection unacknowledged, so the client sends the message again. An
// immediate acknowledgement is staged in the read's pass ps (batch.go).
func (c *client) ack(ps *pass, t packets.Type, pid uint16, stored bool) {
	if !stored {
		c.sendAck(ps, t, pid, 0)
		return
	}
	c.srv.store.Commit().OnDone(func(err error) {
		if err != nil {
			c.srv.storeFailed("commit", c.clientID(), err)
			// Closing writes the session's record: not on the committer
			// goroutine, which must not wait for anything.
			go c.fail(errStoreFailed)
			return
		}
		c.writeAck(t, pid, 0)
	})
}

var errStoreFailed = &packets.Error{Code: packets.UnspecifiedError, Msg: "store write failed"}

// putWill keeps a delayed will in the store until fireAt, with its expiry
// made absolute (it counts from publication). Callers hold sess.mu.
func (s *Server) putWill(sess *session, w *Message, fireAt time.Time) {
	m := w.Message
	if !m.Expires.IsZero() {
		m.Expires = fireAt.Add(m.Expires.Sub(time.Time{}))
	}
	if err := s.store.Wills().Put(sess.id, &m, fireAt); err != nil {
		s.storeFailed("put will", sess.id, err)
	}
}

// saveSubs saves a persistent session's record after its subscriptions
// changed and returns the commit its SUBACK or UNSUBACK must wait for, so
// that an acknowledged subscription is not lost in a crash; wait is false
// for a clean session, which answers at once.
func (c *client) saveSubs() (p store.Pending, wait bool) {
	sess := c.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !sess.persist {
		return p, false
	}
	sess.save(time.Time{})
	return c.srv.store.Commit(), true
}

// afterCommit runs answer once p is complete: at once if it is, otherwise
// on a goroutine of its own (SUBSCRIBE is rare next to PUBLISH, and the
// committer goroutine must not do the retained deliveries that follow a
// SUBACK, which write to the store). A failed commit closes the connection
// unanswered.
func (c *client) afterCommit(p store.Pending, answer func()) {
	done := func() {
		if err := p.Err(); err != nil {
			c.srv.storeFailed("commit", c.clientID(), err)
			c.fail(errStoreFailed)
			return
		}
		answer()
	}
	select {
	case <-p.Done():
		done()
	default:
		go func() {
			<-p.Done()
			done()
		}()
	}
}
