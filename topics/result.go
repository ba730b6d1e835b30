package topics

import "slices"

// Match is one subscriber a message goes to, merged over all of its
// non-shared subscriptions that match the topic.
type Match[S comparable] struct {
	Sub               S
	QoS               byte // the highest of the matching subscriptions
	RetainAsPublished bool // set if any matching subscription asked for it
	nids              int32
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
}

// Result receives what Trie.Match finds. Reusing one Result keeps Match
// free of allocations once its slices have grown to the fan-out seen.
type Result[S comparable] struct {
	Subs   []Match[S]
	Shared []SharedMatch[S]

	ids     []uint32    // backs every Subs[i].IDs
	pending []pendingID // identifiers in the order found, before grouping
	// index finds a subscriber's entry in Subs once Subs is too long to
	// scan; it is only built when a second subscription list matches.
	index   map[S]int32
	indexed bool
}

type pendingID struct {
	at int32 // index in Subs
	id uint32
}

// linearMax is the longest Subs that is scanned for a subscriber rather
// than indexed in a map.
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

// collect adds the subscriptions of one filter. Nothing needs merging
// within one filter's list, which holds a subscriber once, so entries are
// only checked for duplicates once a previous filter has added some.
func (r *Result[S]) collect(c *subs[S], publisher S, tomb *Member[S]) {
	if c == nil {
		return
	}
	merge := len(r.Subs) > 0
	if c.more == nil {
		r.add(&c.one[0], publisher, merge)
		return
	}
	for i := range c.more.list {
		r.add(&c.more.list[i], publisher, merge)
	}
	if set := c.more.set; set != nil {
		for i := range set.slots {
			if m := set.slots[i].Load(); m != nil && m != tomb {
				r.add(m, publisher, merge)
			}
		}
	}
	r.Shared = append(r.Shared, c.more.shared...)
}

func (r *Result[S]) add(m *Member[S], publisher S, merge bool) {
	if m.Opts.NoLocal && m.Sub == publisher {
		return
	}
	i := -1
	if merge {
		i = r.find(m.Sub)
	}
	if i < 0 {
		i = len(r.Subs)
		r.Subs = append(r.Subs, Match[S]{Sub: m.Sub, QoS: m.Opts.QoS, RetainAsPublished: m.Opts.RetainAsPublished})
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

// find returns the index in Subs of sub's entry, or -1.
func (r *Result[S]) find(sub S) int {
	if !r.indexed {
		if len(r.Subs) <= linearMax {
			for i := range r.Subs {
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
