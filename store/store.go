// Package store is the broker's persistence layer: sessions, offline queues,
// QoS 1/2 messages in flight, retained messages and delayed wills, behind one
// interface per concern so that an in-memory and an on-disk implementation
// (store/memory, store/pebble) are interchangeable and are held to the same
// conformance suite (store/storetest).
//
// Every write is visible to reads as soon as its method returns. Durability
// is separate: Store.Commit returns a Pending that completes once every write
// made before the call is on disk, so an event loop can send PUBACK later
// without ever blocking on an fsync. Writes reach the disk as a prefix in the
// order they were made: after a crash, if a write survived, so did every
// write made before it. A broker that records an inbound QoS 2 packet ID
// after routing the message therefore never finds the mark without the
// message.
//
// Messages handed to a store and messages returned by it are immutable: the
// in-memory store keeps and returns the very pointer it was given.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coolpy7/coolpy7/packets"
)

// Message is an application message as the store keeps it: one session's
// copy in a queue or in flight, a retained message, or a will.
type Message struct {
	Topic   string
	Payload []byte
	// QoS and Retain are the delivery's, as they will be sent.
	QoS    byte
	Retain bool
	// Props are the v5 properties to send with the message. A store keeps
	// those a server forwards (payload format, content type, response
	// topic, correlation data, user properties) and the subscription
	// identifiers of a queued or inflight delivery; it drops the rest.
	// Nil when there are none.
	Props *packets.Properties
	// Expires is when the v5 message expiry runs out; zero for never.
	Expires time.Time
}

// Kept is the set of properties a store keeps, as Properties.Present bits.
const Kept = 1<<packets.PropPayloadFormat | 1<<packets.PropContentType |
	1<<packets.PropResponseTopic | 1<<packets.PropCorrelationData |
	1<<packets.PropUser | 1<<packets.PropSubscriptionID

// Size is what m counts against a queue's MaxBytes: the bytes of its topic,
// payload and kept properties. It leaves out the store's own overhead so
// that every implementation counts alike.
func (m *Message) Size() int {
	n := len(m.Topic) + len(m.Payload)
	if p := m.Props; p != nil {
		n += len(p.ContentType) + len(p.ResponseTopic) + len(p.CorrelationData) + 4*len(p.SubscriptionIDs)
		for _, u := range p.User {
			n += len(u.Key) + len(u.Value)
		}
	}
	return n
}

// Expired reports whether m's v5 message expiry has passed at now.
func (m *Message) Expired(now time.Time) bool {
	return !m.Expires.IsZero() && !now.Before(m.Expires)
}

// NeverExpire is the session expiry of a session that outlives any absence.
const NeverExpire = ^uint32(0)

// SessionRecord is what survives of a persistent session: enough to restore
// its subscriptions and to know when it ends. Its messages live in Queues
// and Inflight under the same client ID.
type SessionRecord struct {
	// Expiry is the session expiry interval in seconds as agreed with the
	// client, NeverExpire for none (v3 persistent sessions).
	Expiry uint32
	// Disconnected is when the client went away; zero while it is
	// connected. The session ends Expiry seconds (capped by TTL.Sessions)
	// after it. After a crash the broker finds records of clients that were
	// connected and must save them again with Disconnected set.
	Disconnected time.Time
	Subs         []Sub
}

// Sub is one subscription with its options.
type Sub struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	// ID is the v5 subscription identifier, 0 for none.
	ID uint32
}

// Queued is a message read from a queue with its sequence number.
type Queued struct {
	Seq uint64
	Msg *Message
}

// Sessions holds session records. A session's end is Delete, which also
// drops its queue and inflight state; its will is separate (Wills) because
// the will is published at the session's end.
type Sessions interface {
	// Save creates or replaces id's record.
	Save(id string, rec *SessionRecord) error
	// Delete removes id's record, queue, outbound inflight messages and
	// inbound QoS 2 packet IDs in one atomic write.
	Delete(id string) error
	// Range calls fn for every session that has not expired, in no
	// particular order, until fn returns false. It reads records only, never
	// messages, so start-up costs the number of sessions, not the number of
	// messages. fn may call the store.
	Range(fn func(id string, rec *SessionRecord) bool) error
}

// Queues holds each session's messages waiting to be sent, in order, bounded
// by Options.MaxCount and Options.MaxBytes.
type Queues interface {
	// Append adds m at the end of id's queue and returns its sequence
	// number, which increases by one with every Append to a queue until the
	// queue is dropped. On a full queue the Policy decides: DropOldest
	// removes the oldest messages to make room and reports how many;
	// RefuseNewest keeps the queue as it is and returns dropped 1 and
	// ErrQueueFull, as does a message bigger than MaxBytes under either
	// policy. Expired messages are discarded before anything is dropped.
	Append(id string, m *Message) (seq uint64, dropped int, err error)
	// Read returns up to max messages (all if max <= 0) with sequence
	// numbers above after, oldest first, skipping expired ones.
	Read(id string, after uint64, max int) ([]Queued, error)
	// Remove deletes every message up to and including seq.
	Remove(id string, seq uint64) error
	// Len is the number and total Size of id's queued messages, counting
	// expired ones the sweeper has not yet removed.
	Len(id string) (count int, bytes int64, err error)
	// Drop empties id's queue; sequence numbers start again at 1.
	Drop(id string) error
	// IDs returns, sorted, the IDs that start with prefix and whose queue
	// holds messages (as Len counts them): how queues the caller names
	// itself, not after a session, are found again after a restart. It
	// visits every queue, so it is for start-up, not for a hot path.
	IDs(prefix string) ([]string, error)
}

// Inflight holds QoS 1/2 messages sent to a session and not yet fully
// acknowledged, and the packet IDs of inbound QoS 2 messages not yet
// released.
type Inflight interface {
	// Put records m as sent to id with packet ID pid, after every message
	// already in flight; a Put for a pid already in flight replaces it.
	Put(id string, pid uint16, m *Message) error
	// Move is Put for a message read from id's queue at seq: it also
	// removes the queue up to seq, in the same atomic write, so that a
	// crash leaves the message in exactly one place.
	Move(id string, seq uint64, pid uint16, m *Message) error
	// Release marks pid's QoS 2 message as received by the client
	// (PUBREC): only PUBREL/PUBCOMP is left, so its message is discarded.
	// It keeps its place in the send order.
	Release(id string, pid uint16) error
	// Delete forgets pid (PUBACK, PUBCOMP).
	Delete(id string, pid uint16) error
	// Range calls fn for id's inflight messages in the order they were
	// put, until fn returns false; m is nil once released. fn may call the
	// store.
	Range(id string, fn func(pid uint16, m *Message, released bool) bool) error

	// PutInbound records an inbound QoS 2 packet ID (PUBREC sent).
	PutInbound(id string, pid uint16) error
	// DeleteInbound forgets it (PUBREL received).
	DeleteInbound(id string, pid uint16) error
	// RangeInbound calls fn for id's inbound packet IDs not yet released
	// nor expired, in increasing order, until fn returns false.
	RangeInbound(id string, fn func(pid uint16) bool) error
}

// Retained holds the retained message of each topic. The broker keeps its
// own index for matching; this is for start-up.
type Retained interface {
	Set(topic string, m *Message) error
	Delete(topic string) error
	// Range calls fn for every retained message that has not expired, until
	// fn returns false. fn may call the store.
	Range(fn func(topic string, m *Message) bool) error
}

// Wills holds wills waiting for their delay (v5 Will Delay Interval) or
// their session's end, so that a restart does not lose them.
type Wills interface {
	Put(id string, m *Message, fireAt time.Time) error
	Delete(id string) error
	// Range calls fn for every will that has not expired, until fn returns
	// false; a will whose fireAt has passed is due now. fn may call the
	// store.
	Range(fn func(id string, m *Message, fireAt time.Time) bool) error
}

// Store bundles the concerns with durability, expiry and shutdown. All
// methods are safe for concurrent use.
type Store interface {
	Sessions() Sessions
	Queues() Queues
	Inflight() Inflight
	Retained() Retained
	Wills() Wills

	// Commit returns a Pending that completes when every write made before
	// the call is durable under the store's Durability: at once for
	// Interval and for the in-memory store, after the next group fsync for
	// Durable.
	Commit() Pending
	// Sync makes every write made so far durable, whatever the Durability,
	// and waits for it or for ctx.
	Sync(ctx context.Context) error
	// Sweep runs one complete expiry pass now, as the background sweeper
	// does a bounded slice of at every tick.
	Sweep(ctx context.Context) error
	Stats() Stats
	// Close waits for calls in progress, syncs, completes every Pending and
	// releases the store; it must not be called from a Range callback.
	// Calls after Close return ErrClosed.
	Close() error
}

// Stats are a store's counters.
type Stats struct {
	// DiskBytes is the space the store takes on disk; 0 in memory.
	DiskBytes uint64
	// Queued and QueuedBytes total every queue (Len summed); Dropped counts
	// messages dropped by a full queue, over the store's whole life.
	Queued      int64
	QueuedBytes int64
	Dropped     int64
	// Expired counts what the sweeper and full queues deleted since open.
	Expired int64
	// Writes and Syncs count write operations and fsyncs since open:
	// Syncs/Writes is the share of an fsync each write paid.
	Writes int64
	Syncs  int64
}

// Policy is what a full queue does with a new message.
type Policy uint8

const (
	// RefuseNewest keeps the queue and refuses the new message (the
	// broker's behaviour without a store).
	RefuseNewest Policy = iota
	// DropOldest drops the oldest messages to make room.
	DropOldest
)

func (p Policy) String() string {
	if p == DropOldest {
		return "drop-oldest"
	}
	return "refuse-newest"
}

// ParsePolicy reads "drop-oldest" or "refuse-newest".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "drop-oldest":
		return DropOldest, nil
	case "refuse-newest":
		return RefuseNewest, nil
	}
	return 0, fmt.Errorf("store: queue policy %q: want drop-oldest or refuse-newest", s)
}

// Durability is when a write counts as done. The zero value is Durable.
type Durability struct{ interval time.Duration }

// Durable completes a Commit only after an fsync that covers it. Writers
// waiting at the same moment share one fsync (group commit).
var Durable = Durability{}

// Interval completes a Commit at once and fsyncs every d: a power cut loses
// at most the last d of acknowledged writes, in exchange for no wait.
func Interval(d time.Duration) Durability {
	if d <= 0 {
		return Durable
	}
	return Durability{d}
}

// Every is the sync interval, 0 for Durable.
func (d Durability) Every() time.Duration { return d.interval }

func (d Durability) String() string {
	if d.interval == 0 {
		return "durable"
	}
	return d.interval.String()
}

// ParseDurability reads "durable" or a Go duration such as "100ms".
func ParseDurability(s string) (Durability, error) {
	if s == "durable" || s == "" {
		return Durable, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Durable, fmt.Errorf("store: durability %q: want durable or a positive duration such as 100ms", s)
	}
	return Interval(d), nil
}

// TTL are the expiry settings in seconds, 0 for never. They bound what an
// absent client can leave behind, on top of the v5 session and message
// expiry the clients ask for; the shorter of the two wins.
type TTL struct {
	// Messages bounds how long a message waits in a queue (the original
	// Coolpy7's message I/O cache). Messages already in flight are kept
	// until acknowledged or their session ends, as MQTT requires.
	Messages uint32
	// Sessions bounds how long a disconnected session, with its
	// subscriptions, is kept.
	Sessions uint32
	// PacketIDs bounds how long an inbound QoS 2 packet ID waits for its
	// PUBREL.
	PacketIDs uint32
	// Wills bounds how long after its fire time a will is still published
	// (it can only be late if the broker was down).
	Wills uint32
	// Retained bounds how long a retained message is kept after it is set.
	Retained uint32
}

// Options configure a store. The zero value is durable, unbounded, without
// TTLs, sweeping every second.
type Options struct {
	Durability Durability
	// MaxCount and MaxBytes bound each session's queue; 0 is unbounded.
	MaxCount int
	MaxBytes int64
	Policy   Policy
	TTL      TTL
	// SweepInterval is how often the background sweeper runs (default 1s;
	// negative turns it off, leaving Sweep to the caller) and SweepBudget
	// how many records it may visit per run (default 10000), so that
	// sweeping a large store is spread out instead of stalling it.
	SweepInterval time.Duration
	SweepBudget   int
	// Clock tells the time for expiry; nil is time.Now. Tests move it.
	Clock func() time.Time
	// Logger receives the disk store's errors (and, at debug level, its
	// engine's events); nil discards them.
	Logger *slog.Logger
}

// Defaults returns o with every zero setting that has a default filled in.
func (o Options) Defaults() Options {
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Second
	}
	if o.SweepBudget <= 0 {
		o.SweepBudget = 10000
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

var (
	// ErrQueueFull is returned by Append when the queue has no room for
	// the message under the policy.
	ErrQueueFull = errors.New("store: queue full")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("store: closed")
)
