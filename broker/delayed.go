package broker

import (
	"container/heap"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/topics"
)

// Delayed publish: "$delayed/{seconds}/{topic}" publishes to topic after the
// delay, as EMQX and rmqtt do. Waiting messages are kept in the store's
// Wills concern, which has exactly the shape needed (a message, a fire
// time, put, delete, range at start-up, a TTL for what fires late after
// downtime), under IDs that start with U+0000, which no client ID can hold.
// In memory they sit in one heap under one mutex; the broker's coarse
// clock (0.1 s) fires those due, so there is no timer per message.

const (
	delayedPrefix   = "$delayed/"
	delayedIDPrefix = "\x00delayed/"
)

type delayed struct {
	at time.Time
	id string
	m  *Message
}

type delayedHeap []delayed

func (h delayedHeap) Len() int           { return len(h) }
func (h delayedHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayedHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayedHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*h = old[:len(old)-1]
	return d
}

var delayedSeq atomic.Uint64

// parseDelayed splits "$delayed/{seconds}/{topic}"; ok is false when the
// seconds are not a number or the topic is not one a client may publish to.
// aclTopic is the topic a publish to t lands on, which is what the ACL
// judges: the inner topic of "$delayed/{seconds}/{topic}", else t. A
// malformed delayed topic is judged as it is (and then refused by
// publishDelayed).
func aclTopic(t string) string {
	if _, inner, ok := parseDelayed(t); ok {
		return inner
	}
	return t
}

func parseDelayed(t string) (secs uint64, topic string, ok bool) {
	rest, found := strings.CutPrefix(t, delayedPrefix)
	if !found {
		return 0, "", false
	}
	n, topic, found := strings.Cut(rest, "/")
	if !found {
		return 0, "", false
	}
	secs, err := strconv.ParseUint(n, 10, 32)
	if err != nil || !topics.ValidTopicName(topic) || strings.HasPrefix(topic, "$SYS/") || strings.HasPrefix(topic, delayedPrefix) {
		return 0, "", false
	}
	return secs, topic, true
}

// publishDelayed keeps a "$delayed/..." publish until its time and returns
// the v5 reason code for its acknowledgement; the caller commits the write.
func (s *Server) publishDelayed(p *pub) byte {
	secs, topic, ok := parseDelayed(stringOf(p.topic))
	if !ok {
		s.stats.delayedRefused.Add(1)
		return packets.TopicNameInvalid
	}
	if secs > uint64(s.cfg.DelayedMax) {
		s.stats.delayedRefused.Add(1)
		return packets.QuotaExceeded
	}
	src := p.message()
	m := &Message{Message: src.Message, From: src.From}
	m.Topic = strings.Clone(topic)
	at := time.Now().Add(time.Duration(secs) * time.Second)
	id := delayedIDPrefix + strconv.FormatInt(time.Now().UnixNano(), 36) + "." + strconv.FormatUint(delayedSeq.Add(1), 36)
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if len(s.delayed) >= s.cfg.DelayedMaxCount {
		s.stats.delayedRefused.Add(1)
		return packets.QuotaExceeded
	}
	if err := s.store.Wills().Put(id, &m.Message, at); err != nil {
		s.log.Error("$delayed put", "err", err)
		return packets.UnspecifiedError
	}
	heap.Push(&s.delayed, delayed{at, id, m})
	return 0
}

// loadDelayed reads the delayed messages a previous run left in the store.
func (s *Server) loadDelayed() error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	err := s.store.Wills().Range(func(id string, m *store.Message, at time.Time) bool {
		if strings.HasPrefix(id, delayedIDPrefix) {
			s.delayed = append(s.delayed, delayed{at, id, &Message{Message: *m}})
		}
		return true
	})
	heap.Init(&s.delayed)
	return err
}

// fireDelayed publishes the delayed messages due at now; the coarse clock
// calls it every tick.
func (s *Server) fireDelayed(now time.Time) {
	s.dmu.Lock()
	if len(s.delayed) == 0 || s.delayed[0].at.After(now) {
		s.dmu.Unlock()
		return
	}
	var due []delayed
	for len(s.delayed) > 0 && !s.delayed[0].at.After(now) {
		due = append(due, heap.Pop(&s.delayed).(delayed))
	}
	s.dmu.Unlock()
	for _, d := range due {
		p := storedPub(d.m)
		if name, ok := queueTopic(d.m.Topic); ok {
			s.publishQueue(name, &p)
		} else {
			s.route(&p)
		}
		if err := s.store.Wills().Delete(d.id); err != nil {
			s.log.Error("$delayed delete", "err", err)
		}
	}
	s.store.Commit()
}

// delayedCount is how many delayed messages wait.
func (s *Server) delayedCount() int {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return len(s.delayed)
}
