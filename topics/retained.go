package topics

import (
	"sync"
	"sync/atomic"
)

// Retained holds the retained message of each topic. Its methods are safe
// for concurrent use; Get and Match read without locking, as Trie.Match
// does, so a Match callback may call Set or Delete.
type Retained[M any] struct {
	mu   sync.Mutex // serialises writers
	tree tree[retainedMsg[M]]
	n    atomic.Int64
}

// retainedMsg keeps the topic beside the message so that Match can pass
// it without rebuilding it from the levels walked.
type retainedMsg[M any] struct {
	topic string
	m     M
}

// NewRetained returns an empty Retained.
func NewRetained[M any]() *Retained[M] {
	r := &Retained[M]{}
	r.tree.init()
	return r
}

// Set makes m the retained message of topic, which must be a valid topic
// name. Retained keeps topic for Match to pass on.
func (r *Retained[M]) Set(topic string, m M) {
	v := &retainedMsg[M]{topic: topic, m: m}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tree.path(topic).val.Swap(v) == nil {
		r.n.Add(1)
	}
}

// Delete removes topic's retained message and reports whether it had one.
func (r *Retained[M]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.tree.update(&r.tree.root, topic, func(n *node[retainedMsg[M]]) bool {
		return n.val.Swap(nil) != nil
	})
	if ok {
		r.n.Add(-1)
	}
	return ok
}

// Get returns topic's retained message.
func (r *Retained[M]) Get(topic string) (M, bool) {
	n := &r.tree.root
	for {
		lvl, rest, last := nextLevel(topic)
		if n = n.child(lvl); n == nil {
			var zero M
			return zero, false
		}
		if last {
			break
		}
		topic = rest
	}
	if v := n.val.Load(); v != nil {
		return v.m, true
	}
	var zero M
	return zero, false
}

// Len returns the number of retained messages.
func (r *Retained[M]) Len() int { return int(r.n.Load()) }

// Match calls fn for each retained message whose topic matches filter, a
// valid non-shared filter, until fn returns false. It follows the filter's
// levels, so only '+' and '#' make it visit more than one branch; topics
// starting with '$' match no filter starting with a wildcard.
func (r *Retained[M]) Match(filter string, fn func(topic string, m M) bool) {
	r.match(&r.tree.root, filter, true, fn)
}

// match visits what matches the levels of filter below n and reports
// whether to go on.
func (r *Retained[M]) match(n *node[retainedMsg[M]], filter string, root bool, fn func(string, M) bool) bool {
	lvl, rest, last := nextLevel(filter)
	switch lvl {
	case "#":
		return visitAll(n, root, fn)
	case "+":
		t := n.kids.Load()
		if t == nil {
			return true
		}
		for i := range t.slots {
			// The tombstone has no value and no children, so walking into
			// it visits nothing.
			c := t.slots[i].Load()
			if c == nil || root && isDollar(c.name) {
				continue
			}
			if !r.step(c, rest, last, fn) {
				return false
			}
		}
		return true
	}
	if c := n.child(lvl); c != nil {
		return r.step(c, rest, last, fn)
	}
	return true
}

func (r *Retained[M]) step(n *node[retainedMsg[M]], rest string, last bool, fn func(string, M) bool) bool {
	if !last {
		return r.match(n, rest, false, fn)
	}
	if v := n.val.Load(); v != nil {
		return fn(v.topic, v.m)
	}
	return true
}

// visitAll visits n and everything below it, as "#" matches the level it
// follows too.
func visitAll[M any](n *node[retainedMsg[M]], root bool, fn func(string, M) bool) bool {
	if v := n.val.Load(); v != nil && !fn(v.topic, v.m) {
		return false
	}
	t := n.kids.Load()
	if t == nil {
		return true
	}
	for i := range t.slots {
		if c := t.slots[i].Load(); c != nil && !(root && isDollar(c.name)) {
			if !visitAll(c, false, fn) {
				return false
			}
		}
	}
	return true
}
