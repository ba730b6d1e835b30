package topics

// Design: lock-free reads, serialised writes.
//
// Match walks the tree with atomic loads only; Subscribe and Unsubscribe
// take one mutex. Every node's children sit in an open-addressed table of
// atomic slots (node.go) that the writer fills in place and that is only
// replaced to grow or shrink, and every filter's subscribers sit in an
// immutable value replaced on change (subscribers.go), so a reader sees a
// node or a subscriber list before or after a change, never half of one.
// MEASUREMENTS
//
// Memory is what made the open-addressed table the child index: a Go map
// costs a few hundred bytes even with one entry, and sync.Map an
// allocation per entry, while a slot costs 8 bytes over the table's load.
// A leaf with one subscriber is a node (32 bytes), its name and one subs
// value (48 bytes) holding the subscriber inline.

import (
	"sync"
	"sync/atomic"
)

// Trie holds subscriptions by filter and finds those matching a topic.
// Its methods are safe for concurrent use; Match never waits for writers.
// S is the subscriber, typically a pointer to a session.
type Trie[S comparable] struct {
	mu    sync.Mutex // serialises writers
	tree  tree[subs[S]]
	tomb  *Member[S] // memberSet's tombstone
	count atomic.Int64
}

// NewTrie returns an empty Trie.
func NewTrie[S comparable]() *Trie[S] {
	t := &Trie[S]{tomb: new(Member[S])}
	t.tree.init()
	return t
}

// Subscribe adds sub's subscription to filter, or replaces its options if
// sub already has one, and reports whether it is new. A "$share/{group}/"
// filter makes sub a member of that group on the rest of the filter. The
// filter must be valid (see ValidFilter).
func (t *Trie[S]) Subscribe(filter string, sub S, opts Options) (isNew bool) {
	m := Member[S]{Sub: sub, Opts: opts}
	group, f, shared := ParseShared(filter)
	if !shared {
		f = filter
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.tree.path(f)
	old := n.val.Load()
	var c *subs[S]
	if shared {
		c, isNew = old.withShared(group, f, m)
	} else {
		c, isNew = old.with(m, t.tomb)
	}
	if c != old {
		n.val.Store(c)
	}
	if isNew {
		t.count.Add(1)
	}
	return isNew
}

// Unsubscribe removes sub's subscription to filter and reports whether it
// existed. Levels left without subscriptions are freed.
func (t *Trie[S]) Unsubscribe(filter string, sub S) (existed bool) {
	group, f, shared := ParseShared(filter)
	if !shared {
		f = filter
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	existed = t.tree.update(&t.tree.root, f, func(n *node[subs[S]]) bool {
		old := n.val.Load()
		var c *subs[S]
		var ok bool
		if shared {
			c, ok = old.withoutShared(group, sub)
		} else {
			c, ok = old.without(sub, t.tomb)
		}
		if c != old {
			n.val.Store(c)
		}
		return ok
	})
	if existed {
		t.count.Add(-1)
	}
	return existed
}

// Count returns the number of subscriptions, shared ones included.
func (t *Trie[S]) Count() int { return int(t.count.Load()) }

// Match empties r and fills it with the subscriptions matching topic: one
// entry per non-shared subscriber, merged over its matching subscriptions
// and leaving out those with NoLocal when the subscriber is publisher, and
// every matching shared group. Filters starting with a wildcard do not
// match topics starting with '$' (MQTT 3.1.1 and 5.0 §4.7.2).
func (t *Trie[S]) Match(topic string, publisher S, r *Result[S]) {
	oldSubs, oldShared := r.Subs, r.Shared
	r.truncate()
	t.match(&t.tree.root, topic, false, isDollar(topic), publisher, r)
	r.finish()
	// Drop the references left from an earlier match past the new ends.
	clear(oldSubs[min(len(r.Subs), len(oldSubs)):])
	clear(oldShared[min(len(r.Shared), len(oldShared)):])
}

// match collects what matches the levels in rest below n; end means there
// are none left. dollar leaves out n's wildcard children.
func (t *Trie[S]) match(n *node[subs[S]], rest string, end, dollar bool, publisher S, r *Result[S]) {
	kids := n.kids.Load()
	if kids != nil && !dollar {
		// "#" matches the level it follows too: "a/#" matches "a".
		if c := kids.hash.Load(); c != nil {
			r.collect(c.val.Load(), publisher, t.tomb)
		}
	}
	if end {
		r.collect(n.val.Load(), publisher, t.tomb)
		return
	}
	if kids == nil {
		return
	}
	lvl, rest, last := nextLevel(rest)
	if c := kids.find(lvl); c != nil {
		t.match(c, rest, last, false, publisher, r)
	}
	if dollar {
		return
	}
	if c := kids.plus.Load(); c != nil {
		t.match(c, rest, last, false, publisher, r)
	}
}
