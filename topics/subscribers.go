package topics

import (
	"hash/maphash"
	"slices"
	"sync/atomic"
)

// Member is one subscriber of a filter and the options it subscribed with.
type Member[S comparable] struct {
	Sub  S
	Opts Options
}

const (
	// bigList is the subscriber count at which a filter's list stops being
	// copied on every change and becomes a memberSet, so that a filter with
	// a million subscribers costs O(1), not O(n), per subscribe.
	bigList = 512
	// smallList is the count at which a memberSet turns back into a list,
	// well below bigList so that a count hovering near the threshold does
	// not convert on every change.
	smallList = bigList / 4
)

// subs is everything subscribed to one filter. Writers replace it rather
// than change it, except for the slots of its memberSet.
type subs[S comparable] struct {
	// one is the subscriber when more is nil: a filter with a single
	// subscriber, the usual case, then costs one 24-byte value.
	one  [1]Member[S]
	more *moreSubs[S]
}

// moreSubs holds the subscribers of a filter that has more than one, or a
// shared group.
type moreSubs[S comparable] struct {
	list   []Member[S]
	set    *memberSet[S] // replaces list for bigList subscribers and more
	shared []SharedMatch[S]
}

// memberSet is an open-addressed hash set of a filter's subscribers, keyed
// by subscriber, that the writer updates in place the way table does, so
// readers iterate it without locks.
type memberSet[S comparable] struct {
	slots      []atomic.Pointer[Member[S]]
	live, used int32 // writer only, as in table
}

func newSubs[S comparable](list []Member[S], set *memberSet[S], shared []SharedMatch[S]) *subs[S] {
	switch {
	case len(list) == 0 && set == nil && len(shared) == 0:
		return nil
	case len(list) == 1 && set == nil && len(shared) == 0:
		return &subs[S]{one: [1]Member[S]{list[0]}}
	}
	return &subs[S]{more: &moreSubs[S]{list: list, set: set, shared: shared}}
}

func (s *subs[S]) parts() (list []Member[S], set *memberSet[S], shared []SharedMatch[S]) {
	switch {
	case s == nil:
		return nil, nil, nil
	case s.more == nil:
		return s.one[:], nil, nil
	}
	return s.more.list, s.more.set, s.more.shared
}

// with returns s with m added or, if m.Sub is already subscribed, its
// options replaced. The result is s itself when only set's slots changed.
// s may be nil.
func (s *subs[S]) with(m Member[S], tomb *Member[S]) (ns *subs[S], isNew bool) {
	list, set, shared := s.parts()
	if set != nil {
		nset, isNew := set.with(m, tomb)
		if nset == set {
			return s, isNew
		}
		return newSubs(nil, nset, shared), isNew
	}
	if i := indexOf(list, m.Sub); i >= 0 {
		nl := slices.Clone(list)
		nl[i] = m
		return newSubs(nl, nil, shared), false
	}
	if len(list) >= bigList {
		return newSubs(nil, newMemberSet(list, m), shared), true
	}
	return newSubs(appendExact(list, m), nil, shared), true
}

// without returns s without sub's subscription and whether there was one.
func (s *subs[S]) without(sub S, tomb *Member[S]) (*subs[S], bool) {
	list, set, shared := s.parts()
	if set != nil {
		if !set.remove(sub, tomb) {
			return s, false
		}
		switch {
		case int(set.live) <= smallList:
			return newSubs(set.members(tomb), nil, shared), true
		case shrink(len(set.slots), int(set.live)):
			return newSubs(nil, set.rebuild(int(set.live), nil, tomb), shared), true
		}
		return s, true
	}
	i := indexOf(list, sub)
	if i < 0 {
		return s, false
	}
	return newSubs(removeAt(list, i), nil, shared), true
}

// withShared is with for a member of a shared group on this filter;
// newGroup makes the group's state when the group is new.
func (s *subs[S]) withShared(group, filter string, m Member[S], newGroup func() *Group[S]) (*subs[S], bool) {
	list, set, shared := s.parts()
	gi := groupIndex(shared, group)
	if gi < 0 {
		g := newGroup()
		ms := []Member[S]{m}
		g.members.Store(&ms)
		ns := appendExact(shared, SharedMatch[S]{Group: g.Name, Filter: g.Filter, Members: ms, State: g})
		return newSubs(list, set, ns), true
	}
	ns := slices.Clone(shared)
	g := &ns[gi]
	isNew := false
	if i := indexOf(g.Members, m.Sub); i >= 0 {
		g.Members = slices.Clone(g.Members)
		g.Members[i] = m
	} else {
		g.Members = appendExact(g.Members, m)
		isNew = true
	}
	g.State.members.Store(&g.Members)
	return newSubs(list, set, ns), isNew
}

// withoutShared is without for a member of a shared group on this filter;
// a group left without members goes, and is returned as gone.
func (s *subs[S]) withoutShared(group string, sub S) (ns *subs[S], existed bool, gone *Group[S]) {
	list, set, shared := s.parts()
	gi := groupIndex(shared, group)
	if gi < 0 {
		return s, false, nil
	}
	i := indexOf(shared[gi].Members, sub)
	if i < 0 {
		return s, false, nil
	}
	var nsh []SharedMatch[S]
	g := shared[gi].State
	if len(shared[gi].Members) == 1 {
		nsh = removeAt(shared, gi)
		g.members.Store(nil)
		gone = g
	} else {
		nsh = slices.Clone(shared)
		nsh[gi].Members = removeAt(nsh[gi].Members, i)
		g.members.Store(&nsh[gi].Members)
	}
	return newSubs(list, set, nsh), true, gone
}

func newMemberSet[S comparable](list []Member[S], m Member[S]) *memberSet[S] {
	s := &memberSet[S]{slots: make([]atomic.Pointer[Member[S]], slotsFor(len(list)+1))}
	for _, v := range list {
		place(s.slots, s.start(v.Sub), &v, nil)
	}
	place(s.slots, s.start(m.Sub), &m, nil)
	s.live = int32(len(list) + 1)
	s.used = s.live
	return s
}

// start is the first slot to probe for sub. A set always holds more than
// smallList members, so it is never small enough to scan unhashed.
func (s *memberSet[S]) start(sub S) int {
	return int(maphash.Comparable(seed, sub) & uint64(len(s.slots)-1))
}

// find returns the slot holding sub, or -1.
func (s *memberSet[S]) find(sub S, tomb *Member[S]) int {
	size := len(s.slots)
	i := s.start(sub)
	for range size {
		m := s.slots[i].Load()
		if m == nil {
			return -1
		}
		if m != tomb && m.Sub == sub {
			return i
		}
		i = (i + 1) & (size - 1)
	}
	return -1
}

// with is subs.with for the set: it stores m in place, or returns the
// rebuilt set that holds it.
func (s *memberSet[S]) with(m Member[S], tomb *Member[S]) (*memberSet[S], bool) {
	if i := s.find(m.Sub, tomb); i >= 0 {
		s.slots[i].Store(&m)
		return s, false
	}
	if int(s.used) >= maxUsed(len(s.slots)) {
		return s.rebuild(int(s.live)+1, &m, tomb), true
	}
	if place(s.slots, s.start(m.Sub), &m, tomb) {
		s.used++
	}
	s.live++
	return s, true
}

func (s *memberSet[S]) remove(sub S, tomb *Member[S]) bool {
	i := s.find(sub, tomb)
	if i < 0 {
		return false
	}
	s.slots[i].Store(tomb)
	s.live--
	return true
}

// rebuild is table.rebuild for the set.
func (s *memberSet[S]) rebuild(n int, extra, tomb *Member[S]) *memberSet[S] {
	ns := &memberSet[S]{slots: make([]atomic.Pointer[Member[S]], slotsFor(n))}
	for i := range s.slots {
		if m := s.slots[i].Load(); m != nil && m != tomb {
			place(ns.slots, ns.start(m.Sub), m, nil)
		}
	}
	if extra != nil {
		place(ns.slots, ns.start(extra.Sub), extra, nil)
	}
	ns.live, ns.used = int32(n), int32(n)
	return ns
}

func (s *memberSet[S]) members(tomb *Member[S]) []Member[S] {
	list := make([]Member[S], 0, s.live)
	for i := range s.slots {
		if m := s.slots[i].Load(); m != nil && m != tomb {
			list = append(list, *m)
		}
	}
	return list
}

func indexOf[S comparable](list []Member[S], sub S) int {
	for i := range list {
		if list[i].Sub == sub {
			return i
		}
	}
	return -1
}

func groupIndex[S comparable](shared []SharedMatch[S], group string) int {
	for i := range shared {
		if shared[i].Group == group {
			return i
		}
	}
	return -1
}

// appendExact appends to a copy of s sized exactly, since these slices are
// never appended to again and spare capacity would be memory held for good.
func appendExact[T any](s []T, v T) []T {
	ns := make([]T, len(s)+1)
	copy(ns, s)
	ns[len(s)] = v
	return ns
}

// removeAt returns a copy of s without element i, or nil if it would be empty.
func removeAt[T any](s []T, i int) []T {
	if len(s) == 1 {
		return nil
	}
	ns := make([]T, 0, len(s)-1)
	ns = append(ns, s[:i]...)
	return append(ns, s[i+1:]...)
}
