package broker

import (
	"sync"
	"time"

	"github.com/coolpy7/coolpy7/topics"
)

// session is the state MQTT keeps for a client ID across connections:
// subscriptions, messages in flight and messages waiting. Every field is
// guarded by mu. Nothing is allocated for an idle session beyond the struct
// and its subscription list: the queues grow only when messages wait.
type session struct {
	id  string
	srv *Server
	mu  sync.Mutex

	c *client // the connection, nil while offline

	subs     []subscription // this session's own filters
	inflight []delivery     // QoS 1/2 sent and not yet fully acknowledged, oldest first
	queue    []delivery     // waiting for a connection or for room in the window
	inbound2 []uint16       // QoS 2 packet IDs received and not yet released
	nextPID  uint16

	// expiry is the v5 session expiry interval in seconds; neverExpire for
	// v3 persistent sessions without a configured cap.
	expiry uint32
	timer  *time.Timer // session expiry or delayed will, while offline

	will      *Message // a delayed will waiting for its delay or the session end
	willTimer *time.Timer
	gone      bool // removed from the server; deliveries are discarded
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
}

// deliver hands p to this session at the granted qos. It never blocks on
// the network: QoS 0 is written or dropped, QoS 1/2 is written when the
// window allows and queued (bounded) otherwise.
func (s *session) deliver(p *pub, qos byte, retain bool, ids []uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	c := s.c
	if qos == 0 {
		if c == nil {
			return // QoS 0 is not kept for offline sessions (MQTT 5.0 §3.1.2.5 leaves it optional)
		}
		if c.pending.Load() > int64(s.srv.cfg.MaxWriteBuffer) {
			s.srv.stats.dropped.Add(1)
			return
		}
		c.writePublish(p, 0, retain, false, 0, ids)
		return
	}
	if c != nil && len(s.queue) == 0 && len(s.inflight) < int(c.sendQuota) {
		d := delivery{msg: p.message(), ids: cloneIDs(ids), pid: s.allocPID(), qos: qos, retain: retain}
		s.inflight = append(s.inflight, d)
		c.writePublish(p, qos, retain, false, d.pid, ids)
		return
	}
	if len(s.queue) >= s.srv.cfg.MaxQueued {
		s.srv.stats.dropped.Add(1)
		return
	}
	s.queue = append(s.queue, delivery{msg: p.message(), ids: cloneIDs(ids), qos: qos, retain: retain})
}

func cloneIDs(ids []uint32) []uint32 {
	if len(ids) == 0 {
		return nil
	}
	return append([]uint32(nil), ids...)
}

// allocPID returns a packet ID not in use by an outbound delivery.
func (s *session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if s.findInflight(s.nextPID) < 0 {
			return s.nextPID
		}
	}
}

func (s *session) findInflight(pid uint16) int {
	for i := range s.inflight {
		if s.inflight[i].pid == pid {
			return i
		}
	}
	return -1
}

func (s *session) removeInflight(i int) {
	if i == 0 {
		// Acks mostly arrive in order; slicing off the front avoids a copy.
		s.inflight[0] = delivery{}
		s.inflight = s.inflight[1:]
		if len(s.inflight) == 0 {
			s.inflight = nil
		}
		return
	}
	copy(s.inflight[i:], s.inflight[i+1:])
	s.inflight[len(s.inflight)-1] = delivery{}
	s.inflight = s.inflight[:len(s.inflight)-1]
}

// pump moves queued messages into the window while there is room. Callers
// hold mu.
func (s *session) pump() {
	c := s.c
	if c == nil {
		return
	}
	now := time.Now()
	for len(s.queue) > 0 && len(s.inflight) < int(c.sendQuota) {
		d := s.queue[0]
		s.queue[0] = delivery{}
		s.queue = s.queue[1:]
		if d.msg.expired(now) {
			continue
		}
		d.pid = s.allocPID()
		s.inflight = append(s.inflight, d)
		p := storedPub(d.msg)
		c.writePublish(&p, d.qos, d.retain, false, d.pid, d.ids)
	}
	if len(s.queue) == 0 {
		s.queue = nil
	}
}

// resume resends what was in flight when the last connection dropped, with
// their original packet IDs (MQTT 5.0 §4.4), then fills the window from the
// queue. Callers hold mu.
func (s *session) resume() {
	c := s.c
	for _, d := range s.inflight {
		if d.released {
			c.writeAck(pubrelType, d.pid, 0)
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
	i := s.findInflight(pid)
	if i < 0 || s.inflight[i].qos != qos {
		return false
	}
	s.removeInflight(i)
	s.pump()
	return true
}

// received handles PUBREC for pid: the message is delivered, release it.
// A v5 PUBREC with an error code ends the exchange there.
func (s *session) received(pid uint16, code byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findInflight(pid)
	if i < 0 || s.inflight[i].qos != 2 {
		return false
	}
	if code >= 0x80 {
		s.removeInflight(i)
		s.pump()
		return true
	}
	s.inflight[i].released = true
	if s.c != nil {
		s.c.writeAck(pubrelType, pid, 0)
	}
	return true
}

// addInbound2 records an inbound QoS 2 packet ID. It reports whether the
// ID is new (so the message must be routed) and whether the client stayed
// within the Receive Maximum the broker granted.
func (s *session) addInbound2(pid uint16, max int) (isNew, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.inbound2 {
		if p == pid {
			return false, true
		}
	}
	if len(s.inbound2) >= max {
		return false, false
	}
	s.inbound2 = append(s.inbound2, pid)
	return true, true
}

// release forgets an inbound QoS 2 packet ID on PUBREL.
func (s *session) release(pid uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.inbound2 {
		if p == pid {
			s.inbound2 = append(s.inbound2[:i], s.inbound2[i+1:]...)
			if len(s.inbound2) == 0 {
				s.inbound2 = nil
			}
			return true
		}
	}
	return false
}
