package topics

import "sync/atomic"

// Group is the state of one shared group, the same object for as long as
// the group has members, so that a broker can keep per-group counters and
// choices in it and find them from any Result without a lock or a map.
type Group[S comparable] struct {
	Name   string
	Filter string // as ParseGroup returns it
	Queue  bool   // the original Coolpy7's persistent "$queue/{group}"

	members atomic.Pointer[[]Member[S]]

	// Next, Sticky and Strategy belong to whoever picks members; the trie
	// never touches them. Sticky points into a Members snapshot.
	Next     atomic.Uint64
	Sticky   atomic.Pointer[Member[S]]
	Strategy atomic.Int32
}

// Members returns the group's current members, a snapshot to read and
// not modify; nil once the group has none.
func (g *Group[S]) Members() []Member[S] {
	if p := g.members.Load(); p != nil {
		return *p
	}
	return nil
}
