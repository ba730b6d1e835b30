package broker

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/topics"
)

// The original Coolpy7's "$queue/{group}": a publish to that topic is kept
// in the store, in a queue of its own, until one member of the group
// subscribed to the same topic has acknowledged it. Messages wait while the
// group has no member, and survive a restart with a disk store.
//
// One goroutine (runQueues) hands messages out, so a queue group's reading
// position and the messages out with members need no lock. Members settle
// messages from their event loops, under their session lock, through a
// mutex that guards only the settled list: no lock is ever taken while it is
// held, so the two orders cannot deadlock.

// queueIDPrefix starts the store queue ID of every $queue group. MQTT
// strings cannot hold U+0000, so no client ID can collide with it.
const queueIDPrefix = "\x00queue/"

type queueGroup struct {
	name   string // the group
	id     string // its store queue
	filter string // "$queue/{group}", the trie filter of its members

	mu      sync.Mutex
	settled []uint64 // acknowledged by a member
	back    []uint64 // returned by a member that left
	wake    bool     // there may be something to hand out

	// The rest belongs to runQueues.
	sent    uint64              // highest sequence number read from the store
	out     map[uint64]*Message // with a member and not settled
	retry   []uint64            // returned, to hand out again first
	removed uint64              // the store queue is removed up to here
}

// queueTopic returns the group of a "$queue/{group}" topic.
func queueTopic(t string) (name string, ok bool) {
	name, _, queue, ok := topics.ParseGroup(t)
	return name, ok && queue
}

// publishSpecial handles a publish to "$queue/{group}" or
// "$delayed/{seconds}/{topic}", which are kept rather than routed. handled
// is false for every other topic; code is the v5 reason code for the
// acknowledgement.
func (s *Server) publishSpecial(p *pub) (code byte, handled bool) {
	t := stringOf(p.topic)
	if len(t) < 7 || t[0] != '$' {
		return 0, false
	}
	if strings.HasPrefix(t, delayedPrefix) {
		return s.publishDelayed(p), true
	}
	if name, ok := queueTopic(t); ok {
		return s.publishQueue(name, p), true
	}
	return 0, false
}

// queueGroup returns the state of $queue group name, making it if asked.
func (s *Server) queueGroup(name string, make bool) *queueGroup {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	qg := s.queues[name]
	if qg == nil && make {
		qg = &queueGroup{name: name, id: queueIDPrefix + name, filter: "$queue/" + name, out: map[uint64]*Message{}, wake: true}
		s.queues[name] = qg
	}
	return qg
}

// loadQueues makes known the $queue groups whose messages wait in the
// store from before a restart, so that $SYS and the admin API show them
// (and their depth) before anyone publishes or subscribes to them again.
func (s *Server) loadQueues() error {
	ids, err := s.store.Queues().IDs(queueIDPrefix)
	if err != nil {
		return fmt.Errorf("$queue groups: %w", err)
	}
	for _, id := range ids {
		s.queueGroup(strings.TrimPrefix(id, queueIDPrefix), true)
	}
	if len(ids) > 0 {
		s.log.Info("$queue groups waiting", "groups", len(ids))
	}
	return nil
}

// kickQueues wakes runQueues without ever blocking.
func (s *Server) kickQueues() {
	select {
	case s.qkick <- struct{}{}:
	default:
	}
}

// wakeQueue is called when a member subscribes to $queue/{name}: its
// messages may be waiting in the store, from before a restart too.
func (s *Server) wakeQueue(name string) {
	qg := s.queueGroup(name, true)
	qg.mu.Lock()
	qg.wake = true
	qg.mu.Unlock()
	s.kickQueues()
}

// queueSettled records that the message at seq of $queue group name was
// acknowledged by its member or, with back set, is to go to another member.
// It may be called under a session lock.
func (s *Server) queueSettled(name string, seq uint64, back bool) {
	qg := s.queueGroup(name, false)
	if qg == nil {
		return
	}
	qg.mu.Lock()
	if back {
		qg.back = append(qg.back, seq)
	} else {
		qg.settled = append(qg.settled, seq)
	}
	qg.wake = true
	qg.mu.Unlock()
	s.kickQueues()
}

// publishQueue keeps a publish to "$queue/{name}" in the group's store
// queue and returns the v5 reason code for its acknowledgement; the caller
// commits the write.
func (s *Server) publishQueue(name string, p *pub) byte {
	qg := s.queueGroup(name, true)
	m := p.message()
	if _, _, err := s.store.Queues().Append(qg.id, &m.Message); err != nil {
		s.stats.dropped[dropQueueFull].Add(1)
		if err == store.ErrQueueFull {
			return packets.QuotaExceeded
		}
		s.log.Error("$queue append", "group", name, "err", err)
		return packets.UnspecifiedError
	}
	qg.mu.Lock()
	qg.wake = true
	qg.mu.Unlock()
	s.kickQueues()
	return 0
}

// queueDepth is how many messages $queue group name holds in the store,
// those out with members included.
func (s *Server) queueDepth(name string) int {
	n, _, _ := s.store.Queues().Len(queueIDPrefix + name)
	return n
}

// runQueues hands out $queue messages when woken, and every poll so that
// a member whose window or queue was full gets more once it has room.
func (s *Server) runQueues() {
	defer s.done.Done()
	const poll = 100 * time.Millisecond
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.qkick:
		case <-t.C:
		}
		s.qmu.Lock()
		qs := make([]*queueGroup, 0, len(s.queues))
		for _, qg := range s.queues {
			qs = append(qs, qg)
		}
		s.qmu.Unlock()
		for _, qg := range qs {
			s.dispatch(qg)
		}
	}
}

// dispatch settles what members acknowledged, trims the store queue, and
// hands waiting messages to members while the group's window has room.
func (s *Server) dispatch(qg *queueGroup) {
	qg.mu.Lock()
	settled, back, wake := qg.settled, qg.back, qg.wake
	qg.settled, qg.back, qg.wake = nil, nil, false
	qg.mu.Unlock()
	for _, seq := range settled {
		delete(qg.out, seq)
	}
	for _, seq := range back {
		if _, ok := qg.out[seq]; ok {
			qg.retry = append(qg.retry, seq)
		}
	}
	// Messages are handed out in order, so everything below the oldest one
	// still out is settled and can leave the store.
	upTo := qg.sent
	for seq := range qg.out {
		upTo = min(upTo, seq-1)
	}
	if upTo > qg.removed {
		if err := s.store.Queues().Remove(qg.id, upTo); err != nil {
			s.log.Error("$queue remove", "group", qg.name, "err", err)
		} else {
			qg.removed = upTo
			s.store.Commit()
		}
	}
	if !wake && len(qg.retry) == 0 && len(settled) == 0 {
		return
	}
	g := s.subs.Group(qg.name, qg.filter)
	if g == nil {
		return
	}
	ms := g.Members()
	for len(qg.retry) > 0 {
		seq := qg.retry[0]
		m := qg.out[seq]
		if m == nil { // settled after all
			qg.retry = qg.retry[1:]
			continue
		}
		p := storedPub(m)
		if ok, _ := s.offerShared(g, ms, &p, nil, seq); !ok {
			s.markWake(qg)
			return
		}
		qg.retry = qg.retry[1:]
	}
	window := s.cfg.MaxInflight
	for len(qg.out) < window {
		batch, err := s.store.Queues().Read(qg.id, qg.sent, window-len(qg.out))
		if err != nil {
			s.log.Error("$queue read", "group", qg.name, "err", err)
			return
		}
		if len(batch) == 0 {
			return
		}
		for _, q := range batch {
			m := &Message{Message: *q.Msg}
			qg.out[q.Seq] = m
			qg.sent = q.Seq
			p := storedPub(m)
			if ok, _ := s.offerShared(g, ms, &p, nil, q.Seq); !ok {
				qg.retry = append(qg.retry, q.Seq)
				s.markWake(qg)
				return
			}
		}
	}
}

// markWake makes the next poll try the group again.
func (*Server) markWake(qg *queueGroup) {
	qg.mu.Lock()
	qg.wake = true
	qg.mu.Unlock()
}
