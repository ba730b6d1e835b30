package topics

import "slices"

// Match is one subscriber a message goes to, merged over all of its
// non-shared subscriptions that match the topic.
type Match[S comparable] struct {
	Sub               S
	QoS               byte  // the highest of the matching subscriptions
	RetainAsPublished bool  // set if any matching subscription asked for it
	nids              int32 // len(IDs) to come, while matching
	// IDs are the v5 subscription identifiers of the matching
	// subscriptions. It is a view into the Result, valid until the Result
	// is reset or reused; copy it to keep it.
	IDs []uint32
}

// SharedMatch is a shared group with a subscription matching the topic;
// the broker delivers to one of its members.
type SharedMatch[S comparable] struct {
	Group  string
	Filter string // without the "$share/{group}/" prefix
	// Members is a snapshot that the trie shares with every Result and
	// never changes: read it, do not modify it.
	Members []Member[S]
	// State is the group's, the same for every snapshot while the group
	// exists.
	State *Group[S]
}

// Result receives what Trie.Match finds. Reusing one Result keeps Match
// free of allocations once its slices have grown to the fan-out seen.
type Result[S comparable] struct {
	Subs   []Match[S]
	Shared []SharedMatch[S]

	ids     []uint32    // backs every Subs[i].IDs
	pending []pendingID // identifiers in the order found, before grouping
	// index finds a subscriber's entry in Subs once there are too many
	// entries from earlier filters to scan.
	index   map[S]int32
	indexed bool
}

type pendingID struct {
	at int32 // index in Subs
	id uint32
}

// linearMax is the most entries from earlier filters that are scanned for
// a subscriber before Result indexes Subs in a map.
const linearMax = 64

// Reset empties r and drops its references to subscribers, so that a
// pooled Result does not keep sessions alive. Match need not be preceded by
// Reset.
func (r *Result[S]) Reset() {
	clear(r.Subs)
	clear(r.Shared)
	r.truncate()
}

// truncate empties r but leaves the old entries in place: Match overwrites
// those it reuses and clears the rest, which saves writing a long Subs twice.
func (r *Result[S]) truncate() {
	r.Subs = r.Subs[:0]
	r.Shared = r.Shared[:0]
	r.pending = r.pending[:0]
	if r.indexed {
		clear(r.index)
		r.indexed = false
	}
}

// collect adds the subscriptions of one filter. A filter holds each
// subscriber once, so its entries are only checked against the prev
// entries that earlier filters added.
func (r *Result[S]) collect(c *subs[S], publisher S, tomb *Member[S]) {
	if c == nil {
		return
	}
	prev := len(r.Subs)
	if c.more == nil {
		r.add(&c.one[0], publisher, prev)
		return
	}
	for i := range c.more.list {
		r.add(&c.more.list[i], publisher, prev)
	}
	if set := c.more.set; set != nil {
		for i := range set.slots {
			if m := set.slots[i].Load(); m != nil && m != tomb {
				r.add(m, publisher, prev)
			}
		}
	}
	r.Shared = append(r.Shared, c.more.shared...)
}

func (r *Result[S]) add(m *Member[S], publisher S, prev int) {
	if m.Opts.NoLocal && m.Sub == publisher {
		return
	}
	i := -1
	if prev > 0 {
		i = r.find(m.Sub, prev)
	}
	if i < 0 {
		i = len(r.Subs)
		// Appending a zero Match and then setting fields compiles to plain
		// stores; appending a composite literal copies it from the stack
		// through overlapping moves, which measured four times slower.
		r.Subs = append(r.Subs, Match[S]{})
		s := &r.Subs[i]
		s.Sub, s.QoS, s.RetainAsPublished = m.Sub, m.Opts.QoS, m.Opts.RetainAsPublished
		if r.indexed {
			r.index[m.Sub] = int32(i)
		}
	} else {
		s := &r.Subs[i]
		s.QoS = max(s.QoS, m.Opts.QoS)
		s.RetainAsPublished = s.RetainAsPublished || m.Opts.RetainAsPublished
	}
	if m.Opts.ID != 0 {
		r.Subs[i].nids++
		r.pending = append(r.pending, pendingID{int32(i), m.Opts.ID})
	}
}

// find returns the index in Subs of sub's entry, or -1. Only the first
// prev entries, those from earlier lists, can hold sub.
func (r *Result[S]) find(sub S, prev int) int {
	if !r.indexed {
		if prev <= linearMax {
			for i := range r.Subs[:prev] {
				if r.Subs[i].Sub == sub {
					return i
				}
			}
			return -1
		}
		if r.index == nil {
			r.index = make(map[S]int32, len(r.Subs))
		}
		for i := range r.Subs {
			r.index[r.Subs[i].Sub] = int32(i)
		}
		r.indexed = true
	}
	if i, ok := r.index[sub]; ok {
		return int(i)
	}
	return -1
}

// finish groups the identifiers found into one contiguous run per
// subscriber, in the order they were found.
func (r *Result[S]) finish() {
	n := len(r.pending)
	if n == 0 {
		return
	}
	r.ids = slices.Grow(r.ids[:0], n)[:n]
	off := 0
	for i := range r.Subs {
		if k := int(r.Subs[i].nids); k > 0 {
			r.Subs[i].IDs = r.ids[off : off : off+k]
			off += k
		}
	}
	for _, p := range r.pending {
		s := &r.Subs[p.at]
		s.IDs = append(s.IDs, p.id)
	}
}
