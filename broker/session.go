package broker

import (
	"sync"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/topics"
)

// session is the state MQTT keeps for a client ID across connections:
// subscriptions, messages in flight and messages waiting. Every field is
// guarded by mu. An idle session is the struct and its subscription list:
// the message state (flow) exists only while messages are in flight or
// waiting, and the timers (offline) only while the client is away, because
// at ten million sessions every idle word costs 80 MB.
type session struct {
	id  string
	srv *Server
	mu  sync.Mutex

	c *client // the connection, nil while offline

	subs []subscription // this session's own filters
	flow *flow
	off  *offline

	// expiry is the v5 session expiry interval in seconds; neverExpire for
	// v3 persistent sessions without a configured cap.
	expiry uint32
	gone   bool // removed from the server; deliveries are discarded
	// persist marks a session written through to the store (persist.go);
	// cold, one restored at start-up whose messages in flight are still
	// on disk only.
	persist, cold bool
}

// flow is a session's message state.
type flow struct {
	inflight []delivery // QoS 1/2 sent and not yet fully acknowledged, oldest first
	queue    []delivery // waiting for a connection or for room in the window
	inbound2 []uint16   // QoS 2 packet IDs received and not yet released
	nextPID  uint16
	// stored counts a connected persistent session's messages in the
	// store's queue (its queue lives there, not in queue); lastSeq is the
	// sequence number of the last one moved into flight.
	stored  int
	lastSeq uint64
}

// offline is what runs while the client is away.
type offline struct {
	expiry    *time.Timer // ends the session
	will      *Message    // a delayed will waiting for its delay or the session end
	willTimer *time.Timer
}

// state returns the message state, making it on first use.
func (s *session) state() *flow {
	if s.flow == nil {
		s.flow = &flow{}
	}
	return s.flow
}

// trim drops the message state once nothing is in it.
func (s *session) trim() {
	f := s.flow
	if f != nil && len(f.inflight) == 0 && len(f.queue) == 0 && len(f.inbound2) == 0 && f.stored == 0 {
		// nextPID restarts at 1; no ID is in use, so none can collide.
		s.flow = nil
	}
}

// stopOffline cancels the expiry timer and, when cancelWill is set, a
// pending delayed will. Callers hold mu.
func (s *session) stopOffline(cancelWill bool) {
	o := s.off
	if o == nil {
		return
	}
	if o.expiry != nil {
		o.expiry.Stop()
		o.expiry = nil
	}
	if cancelWill && o.willTimer != nil {
		if s.persist {
			if err := s.srv.store.Wills().Delete(s.id); err != nil {
				s.srv.storeFailed("delete will", s.id, err)
			}
		}
		o.willTimer.Stop()
		o.willTimer, o.will = nil, nil
	}
	if o.willTimer == nil {
		s.off = nil
	}
}

// offlineState returns the offline timers, making them on first use.
func (s *session) offlineState() *offline {
	if s.off == nil {
		s.off = &offline{}
	}
	return s.off
}

const neverExpire = ^uint32(0)

type subscription struct {
	filter string
	opts   topics.Options
}

// delivery is one message on its way to one session.
type delivery struct {
	msg    *Message
	ids    []uint32 // v5 subscription identifiers that matched
	pid    uint16
	qos    byte
	retain bool
	// released marks a QoS 2 delivery whose PUBREC came back: only the
	// PUBREL/PUBCOMP exchange is left.
	released bool
	// grp is the shared group the message came through, so that it can go
	// to another member if this one leaves without acknowledging it; qseq
	// is its sequence number in a $queue group's store queue.
	grp  *topics.Group[*session]
	qseq uint64
}

// deliver hands p to this session at the granted qos. It never blocks on
// the network: QoS 0 is written or dropped, QoS 1/2 is written when the
// window allows and queued (bounded) otherwise.
func (s *session) deliver(p *pub, qos byte, retain bool, ids []uint32) {
	s.put(p, qos, retain, ids, nil, 0, false)
}

// put is deliver for a message that came through shared group grp (nil
// for none) at queue sequence qseq. With try set it neither drops nor
// keeps the message for an offline client: it reports false, so that the
// caller offers it to another member.
func (s *session) put(p *pub, qos byte, retain bool, ids []uint32, grp *topics.Group[*session], qseq uint64, try bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return false
	}
	c := s.c
	if try && c == nil {
		return false
	}
	if qos == 0 {
		if c == nil {
			return false // QoS 0 is not kept for offline sessions (MQTT 5.0 §3.1.2.5 leaves it optional)
		}
		if c.pending.Load() > int64(s.srv.cfg.MaxWriteBuffer) {
			if !try {
				s.srv.stats.dropped[dropSlow].Add(1)
			}
			return false
		}
		c.writePublish(p, 0, retain, false, 0, ids)
		return true
	}
	if s.persist {
		return s.deliverStored(p, qos, retain, ids, grp, qseq, try)
	}
	f := s.state()
	if c != nil && len(f.queue) == 0 && len(f.inflight) < int(c.sendQuota) {
		d := delivery{msg: p.message(), ids: cloneIDs(ids), pid: f.allocPID(), qos: qos, retain: retain, grp: grp, qseq: qseq}
		f.inflight = append(f.inflight, d)
		c.writePublish(p, qos, retain, false, d.pid, ids)
		return true
	}
	if len(f.queue) >= s.srv.cfg.MaxQueued {
		if !try {
			s.srv.stats.dropped[dropQueueFull].Add(1)
		}
		s.trim()
		return false
	}
	f.queue = append(f.queue, delivery{msg: p.message(), ids: cloneIDs(ids), qos: qos, retain: retain, grp: grp, qseq: qseq})
	return true
}

func cloneIDs(ids []uint32) []uint32 {
	if len(ids) == 0 {
		return nil
	}
	return append([]uint32(nil), ids...)
}

// allocPID returns a packet ID not in use by an outbound delivery.
func (f *flow) allocPID() uint16 {
	for {
		f.nextPID++
		if f.nextPID == 0 {
			f.nextPID = 1
		}
		if f.findInflight(f.nextPID) < 0 {
			return f.nextPID
		}
	}
}

func (f *flow) findInflight(pid uint16) int {
	for i := range f.inflight {
		if f.inflight[i].pid == pid {
			return i
		}
	}
	return -1
}

func (f *flow) removeInflight(i int) {
	if i == 0 {
		// Acks mostly arrive in order; slicing off the front avoids a copy.
		f.inflight[0] = delivery{}
		f.inflight = f.inflight[1:]
		if len(f.inflight) == 0 {
			f.inflight = nil
		}
		return
	}
	copy(f.inflight[i:], f.inflight[i+1:])
	f.inflight[len(f.inflight)-1] = delivery{}
	f.inflight = f.inflight[:len(f.inflight)-1]
}

// pump moves queued messages into the window while there is room. Callers
// hold mu.
func (s *session) pump() {
	c, f := s.c, s.flow
	if c == nil || f == nil {
		return
	}
	if s.persist {
		s.pumpStored(c, f)
		s.trim()
		return
	}
	now := time.Now()
	for len(f.queue) > 0 && len(f.inflight) < int(c.sendQuota) {
		d := f.queue[0]
		f.queue[0] = delivery{}
		f.queue = f.queue[1:]
		if d.msg.Expired(now) {
			s.settled(&d)
			continue
		}
		d.pid = f.allocPID()
		f.inflight = append(f.inflight, d)
		p := storedPub(d.msg)
		c.writePublish(&p, d.qos, d.retain, false, d.pid, d.ids)
	}
	if len(f.queue) == 0 {
		f.queue = nil
	}
	s.trim()
}

// resume resends what was in flight when the last connection dropped, with
// their original packet IDs (MQTT 5.0 §4.4), then fills the window from the
// queue. Callers hold mu.
func (s *session) resume() {
	c := s.c
	if s.flow == nil {
		return
	}
	for _, d := range s.flow.inflight {
		if d.released {
			c.writeAck(packets.Pubrel, d.pid, 0)
			continue
		}
		p := storedPub(d.msg)
		c.writePublish(&p, d.qos, d.retain, true, d.pid, d.ids)
	}
	s.pump()
}

// acked handles PUBACK and PUBCOMP for pid.
func (s *session) acked(pid uint16, qos byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flow
	if f == nil {
		return false
	}
	i := f.findInflight(pid)
	if i < 0 || f.inflight[i].qos != qos {
		return false
	}
	s.settled(&f.inflight[i])
	s.forget(pid)
	f.removeInflight(i)
	s.pump()
	return true
}

// settled tells a $queue group that its message d reached this member, so
// that the group's store queue can let it go. Callers hold mu.
func (s *session) settled(d *delivery) {
	if d.grp != nil && d.grp.Queue && !d.released {
		s.srv.queueSettled(d.grp.Name, d.qseq, false)
	}
}

// received handles PUBREC for pid: the message is delivered, release it.
// A v5 PUBREC with an error code ends the exchange there.
func (s *session) received(pid uint16, code byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flow
	if f == nil {
		return false
	}
	i := f.findInflight(pid)
	if i < 0 || f.inflight[i].qos != 2 {
		return false
	}
	// A $queue message is settled at PUBREC, refused or not: the member
	// has answered for it.
	s.settled(&f.inflight[i])
	if code >= 0x80 {
		s.forget(pid)
		f.removeInflight(i)
		s.pump()
		return true
	}
	f.inflight[i].released = true
	f.inflight[i].msg = nil
	if s.persist {
		if err := s.srv.store.Inflight().Release(s.id, pid); err != nil {
			s.srv.storeFailed("release inflight", s.id, err)
		}
	}
	if s.c != nil {
		s.c.writeAck(packets.Pubrel, pid, 0)
	}
	return true
}

// addInbound2 records an inbound QoS 2 packet ID. It reports whether the
// ID is new (so the message must be routed) and whether the client stayed
// within the Receive Maximum the broker granted.
func (s *session) addInbound2(pid uint16, max int) (isNew, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.state()
	for _, p := range f.inbound2 {
		if p == pid {
			return false, true
		}
	}
	if len(f.inbound2) >= max {
		return false, false
	}
	f.inbound2 = append(f.inbound2, pid)
	return true, true
}

// release forgets an inbound QoS 2 packet ID on PUBREL.
func (s *session) release(pid uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flow
	if f == nil {
		return false
	}
	for i, p := range f.inbound2 {
		if p == pid {
			if s.persist {
				if err := s.srv.store.Inflight().DeleteInbound(s.id, pid); err != nil {
					s.srv.storeFailed("delete inbound", s.id, err)
				}
			}
			f.inbound2 = append(f.inbound2[:i], f.inbound2[i+1:]...)
			if len(f.inbound2) == 0 {
				f.inbound2 = nil
			}
			s.trim()
			return true
		}
	}
	return false
}

// forget deletes a persistent session's finished outbound message from the
// store. Callers hold mu.
func (s *session) forget(pid uint16) {
	if s.persist {
		if err := s.srv.store.Inflight().Delete(s.id, pid); err != nil {
			s.srv.storeFailed("delete inflight", s.id, err)
		}
	}
}

// markInbound records a persistent session's inbound QoS 2 packet ID in
// the store, after the message was routed, so that a crash never leaves
// the mark without the message. It reports whether it wrote, and whether
// the write failed.
func (s *session) markInbound(pid uint16) (stored, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.persist {
		return false, false
	}
	if err := s.srv.store.Inflight().PutInbound(s.id, pid); err != nil {
		s.srv.storeFailed("put inbound", s.id, err)
		return true, true
	}
	return true, false
}
