package topics

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// seed keys every hash in the package. It is random per process so clients
// cannot choose topic names that all collide.
var seed = maphash.MakeSeed()

// smallSlots is the largest slot array that is scanned from its first slot
// rather than hashed: comparing a few short names is cheaper than hashing.
const smallSlots = 4

// tree is a topic tree shared by Trie and Retained. Readers walk it without
// locks while one writer at a time (the owner's mutex) changes it. Every
// change becomes visible through one atomic store, and nodes and slots are
// never moved while reachable, so a reader finds everything that stayed in
// the tree for the whole of its walk.
type tree[V any] struct {
	root node[V]
	// tomb fills a slot whose child was removed, so that probes for other
	// children do not stop there. Its name contains '/', which no level
	// does, so readers never mistake it for a child and need not know it.
	tomb *node[V]
}

func (tr *tree[V]) init() { tr.tomb = &node[V]{name: "/"} }

// node is one topic level.
type node[V any] struct {
	name string
	kids atomic.Pointer[table[V]] // nil without children
	val  atomic.Pointer[V]        // nil without a value
}

// table holds a node's children. The wildcard children have fields of
// their own, so matching a topic does not look up "+" and "#" at every
// level. The others live in open-addressed atomic slots: the writer fills
// free slots in place and deletes by storing the tombstone, and replaces the
// whole table only to grow or shrink it, which keeps a change amortised
// O(1) even under a node with millions of children.
type table[V any] struct {
	plus, hash atomic.Pointer[node[V]]
	slots      []atomic.Pointer[node[V]] // length 0 or a power of two
	live, used int32                     // children, and children plus tombstones, in slots; writer only
}

// child returns the non-wildcard child called name, or nil.
func (n *node[V]) child(name string) *node[V] {
	if t := n.kids.Load(); t != nil {
		return t.find(name)
	}
	return nil
}

func (n *node[V]) empty() bool { return n.val.Load() == nil && n.kids.Load() == nil }

func (t *table[V]) find(name string) *node[V] {
	size := len(t.slots)
	i := t.start(name)
	for range size {
		c := t.slots[i].Load()
		if c == nil {
			return nil
		}
		if c.name == name {
			return c
		}
		i = (i + 1) & (size - 1)
	}
	return nil
}

// get is find for the writer, which also looks up wildcard children. t may
// be nil.
func (t *table[V]) get(name string) *node[V] {
	switch {
	case t == nil:
		return nil
	case name == "+":
		return t.plus.Load()
	case name == "#":
		return t.hash.Load()
	}
	return t.find(name)
}

// with adds the child c, which must not be present, and returns t or the
// table that replaces it. t may be nil.
func (t *table[V]) with(c, tomb *node[V]) *table[V] {
	if t == nil {
		t = &table[V]{}
	}
	switch c.name {
	case "+":
		t.plus.Store(c)
		return t
	case "#":
		t.hash.Store(c)
		return t
	}
	if int(t.used) >= maxUsed(len(t.slots)) {
		return t.rebuild(int(t.live)+1, c, tomb)
	}
	if place(t.slots, t.start(c.name), c, tomb) {
		t.used++
	}
	t.live++
	return t
}

// without removes the child c and returns t, the smaller table that
// replaces it, or nil when no children are left.
func (t *table[V]) without(c, tomb *node[V]) *table[V] {
	switch c.name {
	case "+":
		t.plus.Store(nil)
	case "#":
		t.hash.Store(nil)
	default:
		for i := t.start(c.name); ; i = (i + 1) & (len(t.slots) - 1) {
			if t.slots[i].Load() == c {
				t.slots[i].Store(tomb)
				t.live--
				break
			}
		}
	}
	if t.live == 0 && t.plus.Load() == nil && t.hash.Load() == nil {
		return nil
	}
	if shrink(len(t.slots), int(t.live)) {
		return t.rebuild(int(t.live), nil, tomb)
	}
	return t
}

// rebuild returns a copy of t sized for n children, without tombstones and
// with extra added if it is not nil.
func (t *table[V]) rebuild(n int, extra, tomb *node[V]) *table[V] {
	nt := &table[V]{}
	nt.plus.Store(t.plus.Load())
	nt.hash.Store(t.hash.Load())
	if size := slotsFor(n); size > 0 {
		nt.slots = make([]atomic.Pointer[node[V]], size)
	}
	for i := range t.slots {
		if c := t.slots[i].Load(); c != nil && c != tomb {
			place(nt.slots, nt.start(c.name), c, nil)
		}
	}
	if extra != nil {
		place(nt.slots, nt.start(extra.name), extra, nil)
	}
	nt.live, nt.used = int32(n), int32(n)
	return nt
}

// start is the first slot to probe for name.
func (t *table[V]) start(name string) int {
	if len(t.slots) <= smallSlots {
		return 0
	}
	return int(maphash.String(seed, name) & uint64(len(t.slots)-1))
}

// path returns the node for filter or topic s, creating missing levels.
// Writer only.
func (tr *tree[V]) path(s string) *node[V] {
	n := &tr.root
	for {
		lvl, rest, last := nextLevel(s)
		t := n.kids.Load()
		c := t.get(lvl)
		if c == nil {
			// Cloned so that the tree never pins, or sees changes to, a
			// caller's buffer viewed as a string.
			c = &node[V]{name: strings.Clone(lvl)}
			if nt := t.with(c, tr.tomb); nt != t {
				n.kids.Store(nt)
			}
		}
		if last {
			return c
		}
		n, s = c, rest
	}
}

// update applies fn to the node for s below n, if there is one, and when fn
// reports a change unlinks the nodes that change left empty, so that
// unsubscribing returns the memory. Writer only.
func (tr *tree[V]) update(n *node[V], s string, fn func(*node[V]) bool) bool {
	lvl, rest, last := nextLevel(s)
	t := n.kids.Load()
	c := t.get(lvl)
	if c == nil {
		return false
	}
	var changed bool
	if last {
		changed = fn(c)
	} else {
		changed = tr.update(c, rest, fn)
	}
	if changed && c.empty() {
		if nt := t.without(c, tr.tomb); nt != t {
			n.kids.Store(nt)
		}
	}
	return changed
}

// place stores v in the first nil or tombstone slot from i on and reports
// whether it took a nil one. The caller guarantees a free slot.
func place[T any](slots []atomic.Pointer[T], i int, v, tomb *T) (tookNil bool) {
	for ; ; i = (i + 1) & (len(slots) - 1) {
		switch slots[i].Load() {
		case nil:
			slots[i].Store(v)
			return true
		case tomb:
			slots[i].Store(v)
			return false
		}
	}
}

// maxUsed is how many slots of an array of length size may hold children
// or tombstones before it is rebuilt. Small arrays are scanned whole, so
// they may fill up; larger ones keep probe runs short.
func maxUsed(size int) int {
	if size <= smallSlots {
		return size
	}
	return size / 4 * 3
}

// slotsFor is the slot array length a rebuild gives n entries: exact for
// small arrays, at most half full otherwise, so that the next rebuild is at
// least a quarter of the array's length of changes away.
func slotsFor(n int) int {
	if n == 0 {
		return 0
	}
	size := 1
	for size < n || size > smallSlots && 2*n > size {
		size <<= 1
	}
	return size
}

// shrink reports whether an array of length size holding live entries
// should be rebuilt smaller; the factor of four between growing and
// shrinking keeps a node whose size hovers from rebuilding on every change.
func shrink(size, live int) bool {
	return size > 0 && slotsFor(live)*4 <= size
}
