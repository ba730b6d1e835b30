package broker

import (
	"github.com/coolpy7/coolpy7/hooks"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/coolpy7/coolpy7/topics"
)

// Shared-group strategies, as stored in topics.Group.Strategy; 0 means not
// yet looked up in the config.
const (
	stratRoundRobin int32 = iota + 1
	stratRandom
	stratSticky
	stratHashClient
	stratHashTopic
)

// strategyNames are the config's names, indexed by strategy.
var strategyNames = [...]string{"", "round_robin", "random", "sticky", "hash_clientid", "hash_topic"}

type group = topics.Group[*session]

// strategy returns g's strategy, looking it up in the config on first use
// so that routing reads one atomic instead of a map.
func (s *Server) strategy(g *group) int32 {
	if v := g.Strategy.Load(); v != 0 {
		return v
	}
	v := s.strategyOf(g.Name)
	g.Strategy.Store(v)
	return v
}

// strategyOf is the configured strategy of group name.
func (s *Server) strategyOf(name string) int32 {
	st := s.cfg.SharedStrategy
	if o, ok := s.cfg.SharedStrategies[name]; ok {
		st = o
	}
	if v := int32(slices.Index(strategyNames[:], st)); v > 0 {
		return v
	}
	return stratRoundRobin // config.Validate lets no other name through
}

var hashSeed = maphash.MakeSeed()

// first returns the index in ms of the member the strategy picks for p.
// The caller tries the members after it in order when that one cannot
// take the message, so the hash strategies pin a publisher or topic to a
// member while it is available and to the same next one while it is not.
func (s *Server) first(g *group, ms []topics.Member[*session], p *pub) int {
	n := uint64(len(ms))
	switch s.strategy(g) {
	case stratRandom:
		return int(rand.Uint64N(n))
	case stratSticky:
		if st := g.Sticky.Load(); st != nil {
			for i := range ms {
				if ms[i].Sub == st.Sub {
					return i
				}
			}
		}
		return int(rand.Uint64N(n))
	case stratHashClient:
		id := ""
		if p.from != nil {
			id = p.from.id
		}
		return int(maphash.String(hashSeed, id) % n)
	case stratHashTopic:
		return int(maphash.Bytes(hashSeed, p.topic) % n)
	}
	return int((g.Next.Add(1) - 1) % n)
}

// offerShared gives p to one member of g, the strategy's pick or the first
// after it that is online with room, never to except. qseq is the message's
// sequence number in a $queue group's store queue. It reports false when
// no member could take it, and the index of the strategy's pick.
func (s *Server) offerShared(g *group, ms []topics.Member[*session], p *pub, except *session, qseq uint64) (ok bool, start int) {
	n := len(ms)
	if n == 0 {
		return false, -1
	}
	start = s.first(g, ms, p)
	for i := range n {
		m := &ms[(start+i)%n]
		if m.Sub == except {
			continue
		}
		if s.offerTo(g, m, p, qseq, true) {
			if s.strategy(g) == stratSticky && g.Sticky.Load() != m {
				g.Sticky.Store(m)
			}
			return true, start
		}
	}
	return false, start
}

// offerTo puts p to member m of g; with try set only if m is online with
// room. A member the OnDeliver hook refuses does not take it, so the next
// member is offered it.
func (s *Server) offerTo(g *group, m *topics.Member[*session], p *pub, qseq uint64, try bool) bool {
	if s.hookEv&hooks.Deliver != 0 && !s.hookDeliver(m.Sub, p) {
		return false
	}
	var idb [1]uint32
	ids := idb[:0]
	if m.Opts.ID != 0 {
		ids = append(ids, m.Opts.ID)
	}
	qos := min(p.qos, m.Opts.QoS)
	ok := m.Sub.put(p, qos, false, ids, g, qseq, try)
	if ok && qos == 0 && g.Queue {
		// Nothing will acknowledge it; it is delivered once written.
		s.queueSettled(g.Name, qseq, false)
	}
	return ok
}

// routeShared delivers p to one member of the matching group g. When no
// member is online with room, a QoS 1/2 message goes to the strategy's pick
// anyway, to wait in its queue (or be dropped and counted if that is full).
func (s *Server) routeShared(g *topics.SharedMatch[*session], p *pub) bool {
	if g.State.Queue {
		return false // a $queue group is fed from its store queue, not by routing
	}
	ok, start := s.offerShared(g.State, g.Members, p, nil, 0)
	if ok {
		return true
	}
	if start < 0 {
		return false
	}
	if p.qos == 0 {
		// No member could take it without waiting: QoS 0 does not wait.
		s.stats.dropped[dropSlow].Add(1)
		return false
	}
	return s.offerTo(g.State, &g.Members[start], p, 0, false)
}

// takeShared removes from the session the messages that came through a
// shared group and that its client has not received (QoS 2 past PUBREC
// has been), for reassign. Callers hold mu.
func (s *session) takeShared() []delivery {
	f := s.flow
	if f == nil {
		return nil
	}
	var out []delivery
	keep := func(list []delivery) []delivery {
		n := 0
		for _, d := range list {
			if d.grp != nil && !d.released {
				if d.pid != 0 {
					// Handed on: a persistent member must not get it again
					// from the store when it returns.
					s.forget(d.pid)
				}
				out = append(out, d)
				continue
			}
			list[n] = d
			n++
		}
		clear(list[n:])
		if n == 0 {
			return nil
		}
		return list[:n]
	}
	f.inflight = keep(f.inflight)
	f.queue = keep(f.queue)
	s.trim()
	return out
}

// reassign hands the shared-group messages a departing member held to the
// other members of their groups (MQTT 5.0 §4.8.2 asks it when a session
// ends; we do it when the connection does, so that a crashed consumer does
// not hold messages its peers could process). A $queue message goes back to
// its queue. When no other member is online with room, a message waits in
// another member's queue, else in from's own if from lives on.
func (s *Server) reassign(from *session, ds []delivery) {
	for i := range ds {
		d := &ds[i]
		if d.grp.Queue {
			s.queueSettled(d.grp.Name, d.qseq, true)
			continue
		}
		p := storedPub(d.msg)
		ms := d.grp.Members()
		if ok, _ := s.offerShared(d.grp, ms, &p, from, 0); ok {
			continue
		}
		placed := false
		for j := range ms {
			if ms[j].Sub != from {
				placed = s.offerTo(d.grp, &ms[j], &p, 0, false)
				break
			}
		}
		if !placed && !from.put(&p, d.qos, false, d.ids, d.grp, 0, false) {
			s.stats.dropped[dropQueueFull].Add(1)
		}
	}
}

// SharedGroup describes one shared group for $SYS and the admin API.
type SharedGroup struct {
	Name     string   `json:"name"`
	Filter   string   `json:"filter"`
	Strategy string   `json:"strategy"`
	Queue    bool     `json:"queue,omitempty"` // the original's persistent $queue/{group}
	Members  []string `json:"members"`         // client IDs
	Online   int      `json:"online"`
	// Queued counts the group's messages waiting: in its store queue for a
	// $queue group, else in its members' session queues.
	Queued int `json:"queued"`
}

// SharedGroups lists every shared group, sorted by name and filter.
func (s *Server) SharedGroups() []SharedGroup {
	gs := s.subs.Groups()
	out := make([]SharedGroup, 0, len(gs))
	for _, g := range gs {
		sg := SharedGroup{Name: g.Name, Filter: g.Filter, Strategy: strategyNames[s.strategy(g)], Queue: g.Queue, Members: []string{}}
		for _, m := range g.Members() {
			sess := m.Sub
			sg.Members = append(sg.Members, sess.id)
			sess.mu.Lock()
			if sess.c != nil {
				sg.Online++
			}
			if f := sess.flow; f != nil && !g.Queue {
				for i := range f.queue {
					if f.queue[i].grp == g {
						sg.Queued++
					}
				}
			}
			sess.mu.Unlock()
		}
		if g.Queue {
			sg.Queued = s.queueDepth(g.Name)
		}
		out = append(out, sg)
	}
	// A $queue group whose messages wait for a first member is shown too.
	s.qmu.Lock()
	var waiting []string
	for name := range s.queues {
		if s.subs.Group(name, "$queue/"+name) == nil {
			waiting = append(waiting, name)
		}
	}
	s.qmu.Unlock()
	for _, name := range waiting {
		if n := s.queueDepth(name); n > 0 {
			out = append(out, SharedGroup{Name: name, Filter: "$queue/" + name, Strategy: strategyNames[s.strategyOf(name)], Queue: true, Members: []string{}, Queued: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Filter < out[j].Filter
	})
	return out
}
