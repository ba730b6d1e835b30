// Package storetest is the conformance suite every store.Store must pass:
// each implementation's tests call Run with a way to open it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
)

// Opener opens the store kept in dir with o, failing t if it cannot. The
// suite closes every store it opens; an in-memory store ignores dir.
type Opener func(t *testing.T, dir string, o store.Options) store.Store

// Clock is a settable clock for Options.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at a fixed, whole second.
func NewClock() *Clock { return &Clock{now: time.Unix(1_700_000_000, 0)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Run runs the suite. persistent says the store keeps its data across Close
// and Open in the same directory; the restart cases run only then.
func Run(t *testing.T, open Opener, persistent bool) {
	h := harness{open: open}
	t.Run("MessageRoundTrip", h.messageRoundTrip)
	t.Run("QueueOrder", h.queueOrder)
	t.Run("QueueIsolation", h.queueIsolation)
	t.Run("QueueIDs", h.queueIDs)
	t.Run("QueueBounds", h.queueBounds)
	t.Run("Inflight", h.inflight)
	t.Run("Inbound", h.inbound)
	t.Run("Retained", h.retained)
	t.Run("Wills", h.wills)
	t.Run("Sessions", h.sessions)
	t.Run("Expiry", h.expiry)
	t.Run("ExpirySpansTicks", h.expirySpansTicks)
	t.Run("ExpiredMakeRoom", h.expiredMakeRoom)
	t.Run("BackgroundSweeper", h.backgroundSweeper)
	t.Run("Concurrent", h.concurrent)
	t.Run("Commit", h.commit)
	t.Run("Closed", h.closed)
	if persistent {
		t.Run("Restart", h.restart)
	}
}

type harness struct{ open Opener }

// store opens a fresh store whose sweeper only runs when asked.
func (h harness) store(t *testing.T, o store.Options) (store.Store, string) {
	t.Helper()
	if o.SweepInterval == 0 {
		o.SweepInterval = -1
	}
	dir := t.TempDir()
	s := h.open(t, dir, o)
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func msg(topic, payload string) *store.Message {
	return &store.Message{Topic: topic, Payload: []byte(payload), QoS: 1}
}

func richMessage() *store.Message {
	p := &packets.Properties{
		PayloadFormat:   1,
		ContentType:     []byte("text/plain"),
		ResponseTopic:   []byte("reply/here"),
		CorrelationData: []byte{0, 1, 2, 0xff},
		SubscriptionIDs: []uint32{7, 268435455},
		User:            []packets.UserProperty{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k"), Value: []byte("")}},
	}
	p.Present = store.Kept
	return &store.Message{
		Topic: "a/b/ü", Payload: bytes.Repeat([]byte{0, 1, 0xfe}, 100), QoS: 2, Retain: true,
		Props: p, Expires: time.Unix(1_900_000_000, 123456789),
	}
}

// sameMessage fails t unless got carries what want does.
func sameMessage(t *testing.T, got, want *store.Message) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("message %v, want %v", got, want)
		}
		return
	}
	if got.Topic != want.Topic || !bytes.Equal(got.Payload, want.Payload) || got.QoS != want.QoS ||
		got.Retain != want.Retain || !got.Expires.Equal(want.Expires) {
		t.Fatalf("message %q %q qos %d retain %v expires %v, want %q %q qos %d retain %v expires %v",
			got.Topic, got.Payload, got.QoS, got.Retain, got.Expires, want.Topic, want.Payload, want.QoS, want.Retain, want.Expires)
	}
	if (got.Props == nil) != (want.Props == nil) {
		t.Fatalf("props %+v, want %+v", got.Props, want.Props)
	}
	if want.Props != nil {
		g, w := *got.Props, *want.Props
		for _, p := range []*packets.Properties{&g, &w} {
			p.Present &= store.Kept
			for i := range p.User { // nil and empty are the same on the wire
				if len(p.User[i].Value) == 0 {
					p.User[i].Value = nil
				}
			}
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("props %+v, want %+v", g, w)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appendN(t *testing.T, q store.Queues, id string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, _, err := q.Append(id, msg("t", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// payloads reads id's whole queue as payload strings.
func payloads(t *testing.T, q store.Queues, id string) []string {
	t.Helper()
	got, err := q.Read(id, 0, 0)
	must(t, err)
	out := []string{}
	for _, e := range got {
		out = append(out, string(e.Msg.Payload))
	}
	return out
}

func (h harness) messageRoundTrip(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	for _, m := range []*store.Message{richMessage(), {Topic: "plain"}, {Topic: "x", Payload: []byte("y"), QoS: 1}} {
		seq, _, err := s.Queues().Append("c", m)
		must(t, err)
		got, err := s.Queues().Read("c", seq-1, 1)
		must(t, err)
		if len(got) != 1 || got[0].Seq != seq {
			t.Fatalf("read %v, want seq %d", got, seq)
		}
		sameMessage(t, got[0].Msg, m)
	}
}

func (h harness) queueOrder(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	q := s.Queues()
	for i := 1; i <= 10; i++ {
		m := msg("t", fmt.Sprint(i))
		seq, dropped, err := q.Append("c", m)
		must(t, err)
		if seq != uint64(i) || dropped != 0 {
			t.Fatalf("append %d: seq %d dropped %d", i, seq, dropped)
		}
	}
	got, err := q.Read("c", 3, 4)
	must(t, err)
	if len(got) != 4 || got[0].Seq != 4 || got[3].Seq != 7 || string(got[0].Msg.Payload) != "4" {
		t.Fatalf("Read(after 3, max 4) = %v", got)
	}
	if n, b, err := q.Len("c"); err != nil || n != 10 || b != 11*1+10 { // topic "t" + payloads "1".."10"
		t.Fatalf("Len = %d %d %v", n, b, err)
	}
	must(t, q.Remove("c", 5))
	must(t, q.Remove("c", 2)) // already gone: nothing happens
	if got := payloads(t, q, "c"); !reflect.DeepEqual(got, []string{"6", "7", "8", "9", "10"}) {
		t.Fatalf("after Remove(5): %v", got)
	}
	if n, b, _ := q.Len("c"); n != 5 || b != 5+6 {
		t.Fatalf("Len after Remove = %d %d", n, b)
	}
	must(t, q.Remove("c", 100)) // beyond the tail: empties it
	if n, _, _ := q.Len("c"); n != 0 {
		t.Fatalf("Len after Remove(100) = %d", n)
	}
	if seq, _, _ := q.Append("c", msg("t", "11")); seq != 11 {
		t.Fatalf("sequence restarted after emptying: %d", seq)
	}
	must(t, q.Drop("c"))
	if n, b, _ := q.Len("c"); n != 0 || b != 0 {
		t.Fatalf("Len after Drop = %d %d", n, b)
	}
	if seq, _, _ := q.Append("c", msg("t", "x")); seq != 1 {
		t.Fatalf("first seq after Drop = %d", seq)
	}
	if got, _ := q.Read("nobody", 0, 0); len(got) != 0 {
		t.Fatalf("read of an unknown queue: %v", got)
	}
	if st := s.Stats(); st.Queued != 1 || st.QueuedBytes != 2 {
		t.Fatalf("Stats queued %d bytes %d, want 1 2", st.Queued, st.QueuedBytes)
	}
}

// queueIsolation uses IDs that prefix one another and hold bytes a careless
// key layout would confuse.
func (h harness) queueIsolation(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	ids := []string{"", "a", "ab", "a\x00", "a\xff", "a\xff\xff", "b", string(bytes.Repeat([]byte{'z'}, 300))}
	for i, id := range ids {
		appendN(t, s.Queues(), id, i+1)
		must(t, s.Inflight().Put(id, uint16(i+1), msg(id, "o")))
		must(t, s.Inflight().PutInbound(id, uint16(i+1)))
	}
	must(t, s.Queues().Drop("a"))
	must(t, s.Sessions().Delete("a\xff"))
	for i, id := range ids {
		want := i + 1
		if id == "a" || id == "a\xff" {
			want = 0
		}
		if n, _, _ := s.Queues().Len(id); n != want {
			t.Errorf("queue %q: %d messages, want %d", id, n, want)
		}
		if got := payloads(t, s.Queues(), id); len(got) != want {
			t.Errorf("queue %q reads %d messages, want %d", id, len(got), want)
		}
		var pids []uint16
		must(t, s.Inflight().Range(id, func(pid uint16, _ *store.Message, _ bool) bool { pids = append(pids, pid); return true }))
		must(t, s.Inflight().RangeInbound(id, func(pid uint16) bool { pids = append(pids, pid); return true }))
		if id == "a\xff" {
			if len(pids) != 0 {
				t.Errorf("deleted session %q still has packet IDs %v", id, pids)
			}
		} else if !reflect.DeepEqual(pids, []uint16{uint16(i + 1), uint16(i + 1)}) {
			t.Errorf("session %q packet IDs %v", id, pids)
		}
	}
}

// queueIDs lists the queues holding messages under a prefix: not those
// emptied or dropped, nor IDs that merely share bytes with the prefix in a
// careless key layout (a longer ID, one the prefix is only a suffix of).
func (h harness) queueIDs(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	q := s.Queues()
	for _, id := range []string{"\x00queue/b", "\x00queue/a", "\x00queue/", "\x00queue", "x\x00queue/c", "\x00queue/emptied", "\x00queue/dropped", "c1"} {
		appendN(t, q, id, 2)
	}
	must(t, q.Remove("\x00queue/emptied", 2))
	must(t, q.Drop("\x00queue/dropped"))
	ids, err := q.IDs("\x00queue/")
	must(t, err)
	if want := []string{"\x00queue/", "\x00queue/a", "\x00queue/b"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("IDs(\"\\x00queue/\") = %q, want %q", ids, want)
	}
	all, err := q.IDs("")
	must(t, err)
	if len(all) != 6 {
		t.Errorf("IDs(\"\") = %q, want the 6 queues holding messages", all)
	}
	if ids, err := q.IDs("nothing"); err != nil || len(ids) != 0 {
		t.Errorf("IDs of an unused prefix: %q, %v", ids, err)
	}
}

func (h harness) queueBounds(t *testing.T) {
	t.Run("RefuseNewestCount", func(t *testing.T) {
		s, _ := h.store(t, store.Options{MaxCount: 3, Policy: store.RefuseNewest})
		appendN(t, s.Queues(), "c", 3)
		seq, dropped, err := s.Queues().Append("c", msg("t", "x"))
		if !errors.Is(err, store.ErrQueueFull) || dropped != 1 || seq != 0 {
			t.Fatalf("append to a full queue: %d %d %v", seq, dropped, err)
		}
		if got := payloads(t, s.Queues(), "c"); !reflect.DeepEqual(got, []string{"0", "1", "2"}) {
			t.Fatalf("queue %v", got)
		}
		if d := s.Stats().Dropped; d != 1 {
			t.Fatalf("Dropped %d", d)
		}
		must(t, s.Queues().Remove("c", 1))
		if seq, _, err := s.Queues().Append("c", msg("t", "3")); err != nil || seq != 4 {
			t.Fatalf("append after room was made: %d %v", seq, err)
		}
	})
	t.Run("DropOldestCount", func(t *testing.T) {
		s, _ := h.store(t, store.Options{MaxCount: 3, Policy: store.DropOldest})
		appendN(t, s.Queues(), "c", 3)
		seq, dropped, err := s.Queues().Append("c", msg("t", "3"))
		if err != nil || dropped != 1 || seq != 4 {
			t.Fatalf("append to a full queue: %d %d %v", seq, dropped, err)
		}
		if got := payloads(t, s.Queues(), "c"); !reflect.DeepEqual(got, []string{"1", "2", "3"}) {
			t.Fatalf("queue %v", got)
		}
		if st := s.Stats(); st.Dropped != 1 || st.Queued != 3 {
			t.Fatalf("Stats %+v", st)
		}
	})
	t.Run("Bytes", func(t *testing.T) {
		for _, p := range []store.Policy{store.DropOldest, store.RefuseNewest} {
			t.Run(p.String(), func(t *testing.T) {
				s, _ := h.store(t, store.Options{MaxBytes: 30, Policy: p})
				q := s.Queues()
				for i := 0; i < 3; i++ { // 10 bytes each: topic "t" + 9
					_, _, err := q.Append("c", msg("t", fmt.Sprintf("%09d", i)))
					must(t, err)
				}
				_, dropped, err := q.Append("c", msg("t", "big-message-of-20-b"))
				switch p {
				case store.DropOldest:
					if err != nil || dropped != 2 {
						t.Fatalf("DropOldest: dropped %d %v", dropped, err)
					}
					if n, b, _ := q.Len("c"); n != 2 || b != 30 {
						t.Fatalf("Len %d %d", n, b)
					}
				case store.RefuseNewest:
					if !errors.Is(err, store.ErrQueueFull) || dropped != 1 {
						t.Fatalf("RefuseNewest: dropped %d %v", dropped, err)
					}
				}
				_, dropped, err = q.Append("c", msg("t", string(make([]byte, 30))))
				if !errors.Is(err, store.ErrQueueFull) || dropped != 1 {
					t.Fatalf("message over MaxBytes: dropped %d %v", dropped, err)
				}
				if n, _, _ := q.Len("c"); n == 0 {
					t.Fatal("a message too big for any queue emptied the queue")
				}
			})
		}
	})
}

func (h harness) inflight(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	in := s.Inflight()
	rich := richMessage()
	// Packet IDs wrap, so send order is not pid order.
	for _, pid := range []uint16{65535, 1, 300} {
		must(t, in.Put("c", pid, msg("t", fmt.Sprint(pid))))
	}
	must(t, in.Put("c", 2, rich))
	must(t, in.Release("c", 1))
	must(t, in.Delete("c", 300))
	type entry struct {
		pid      uint16
		payload  string
		released bool
	}
	var got []entry
	must(t, in.Range("c", func(pid uint16, m *store.Message, released bool) bool {
		e := entry{pid: pid, released: released}
		if m != nil {
			e.payload = string(m.Payload)
		}
		if pid == 2 {
			sameMessage(t, m, rich)
			e.payload = "rich"
		}
		got = append(got, e)
		return true
	}))
	want := []entry{{65535, "65535", false}, {1, "", true}, {2, "rich", false}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Range %v, want %v", got, want)
	}
	n := 0
	must(t, in.Range("c", func(uint16, *store.Message, bool) bool { n++; return false }))
	if n != 1 {
		t.Fatalf("Range went on after false: %d calls", n)
	}

	// Move takes a queued message into flight and the queue up to it.
	q := s.Queues()
	appendN(t, q, "m", 3)
	got2, err := q.Read("m", 0, 2)
	must(t, err)
	for i, e := range got2 {
		must(t, in.Move("m", e.Seq, uint16(10+i), e.Msg))
	}
	if rest := payloads(t, q, "m"); !reflect.DeepEqual(rest, []string{"2"}) {
		t.Fatalf("queue after Move: %v", rest)
	}
	var moved []string
	must(t, in.Range("m", func(pid uint16, m *store.Message, _ bool) bool {
		moved = append(moved, fmt.Sprint(pid, "=", string(m.Payload)))
		return true
	}))
	if !reflect.DeepEqual(moved, []string{"10=0", "11=1"}) {
		t.Fatalf("inflight after Move: %v", moved)
	}
	if st := s.Stats(); st.Queued != 1 {
		t.Fatalf("Stats.Queued %d after Move", st.Queued)
	}
}

func (h harness) inbound(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	in := s.Inflight()
	for _, pid := range []uint16{9, 3, 65535, 3} {
		must(t, in.PutInbound("c", pid))
	}
	must(t, in.DeleteInbound("c", 9))
	must(t, in.DeleteInbound("c", 10)) // unknown: nothing happens
	var got []uint16
	must(t, in.RangeInbound("c", func(pid uint16) bool { got = append(got, pid); return true }))
	if !reflect.DeepEqual(got, []uint16{3, 65535}) {
		t.Fatalf("RangeInbound %v", got)
	}
}

func retainedMap(t *testing.T, s store.Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	must(t, s.Retained().Range(func(topic string, m *store.Message) bool {
		got[topic] = string(m.Payload)
		return true
	}))
	return got
}

func (h harness) retained(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	r := s.Retained()
	must(t, r.Set("a/b", msg("a/b", "1")))
	must(t, r.Set("a", msg("a", "2")))
	must(t, r.Set("a/b", msg("a/b", "3")))
	must(t, r.Set("gone", msg("gone", "4")))
	must(t, r.Delete("gone"))
	must(t, r.Set("rich", richMessage()))
	got := retainedMap(t, s)
	if !reflect.DeepEqual(got, map[string]string{"a/b": "3", "a": "2", "rich": string(richMessage().Payload)}) {
		t.Fatalf("retained %v", got)
	}
	must(t, r.Range(func(topic string, m *store.Message) bool {
		if topic == "rich" {
			sameMessage(t, m, richMessage())
		}
		return true
	}))
}

func (h harness) wills(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	w := s.Wills()
	at := time.Unix(1_800_000_000, 5)
	must(t, w.Put("c1", richMessage(), at))
	must(t, w.Put("c2", msg("will", "2"), at))
	must(t, w.Put("c2", msg("will", "3"), at.Add(time.Second)))
	must(t, w.Put("c3", msg("will", "x"), at))
	must(t, w.Delete("c3"))
	got := map[string]time.Time{}
	must(t, w.Range(func(id string, m *store.Message, fireAt time.Time) bool {
		got[id] = fireAt
		switch id {
		case "c1":
			sameMessage(t, m, richMessage())
		case "c2":
			if string(m.Payload) != "3" {
				t.Errorf("c2's will is %q, want the replacement", m.Payload)
			}
		}
		return true
	}))
	if len(got) != 2 || !got["c1"].Equal(at) || !got["c2"].Equal(at.Add(time.Second)) {
		t.Fatalf("wills %v", got)
	}
}

func sessionMap(t *testing.T, s store.Store) map[string]*store.SessionRecord {
	t.Helper()
	got := map[string]*store.SessionRecord{}
	must(t, s.Sessions().Range(func(id string, rec *store.SessionRecord) bool {
		got[id] = rec
		return true
	}))
	return got
}

func (h harness) sessions(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	ss := s.Sessions()
	rec := &store.SessionRecord{Expiry: 3600, Subs: []store.Sub{
		{Filter: "a/+", QoS: 1},
		{Filter: "$share/g/b/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: 268435455},
	}}
	must(t, ss.Save("c1", rec))
	must(t, ss.Save("c2", &store.SessionRecord{Expiry: store.NeverExpire, Disconnected: time.Unix(1_700_000_000, 42)}))
	rec.Subs[0].QoS = 0 // the store kept its own copy
	got := sessionMap(t, s)
	if len(got) != 2 || got["c1"].Expiry != 3600 || len(got["c1"].Subs) != 2 || got["c1"].Subs[0].QoS != 1 ||
		!reflect.DeepEqual(got["c1"].Subs[1], rec.Subs[1]) || !got["c1"].Disconnected.IsZero() ||
		!got["c2"].Disconnected.Equal(time.Unix(1_700_000_000, 42)) || len(got["c2"].Subs) != 0 {
		t.Fatalf("sessions %+v", got)
	}

	// A session's end takes its messages, not its will.
	appendN(t, s.Queues(), "c1", 5)
	must(t, s.Inflight().Put("c1", 1, msg("t", "o")))
	must(t, s.Inflight().PutInbound("c1", 1))
	must(t, s.Wills().Put("c1", msg("will", "w"), time.Unix(1_800_000_000, 0)))
	must(t, ss.Delete("c1"))
	if got := sessionMap(t, s); len(got) != 1 || got["c2"] == nil {
		t.Fatalf("sessions after Delete: %v", got)
	}
	if n, _, _ := s.Queues().Len("c1"); n != 0 {
		t.Fatalf("queue survived its session: %d", n)
	}
	n := 0
	must(t, s.Inflight().Range("c1", func(uint16, *store.Message, bool) bool { n++; return true }))
	must(t, s.Inflight().RangeInbound("c1", func(uint16) bool { n++; return true }))
	if n != 0 {
		t.Fatalf("inflight state survived its session: %d", n)
	}
	wills := 0
	must(t, s.Wills().Range(func(string, *store.Message, time.Time) bool { wills++; return true }))
	if wills != 1 {
		t.Fatal("the will went with its session")
	}
	if st := s.Stats(); st.Queued != 0 || st.QueuedBytes != 0 {
		t.Fatalf("Stats after Delete: %+v", st)
	}
}

func (h harness) expiry(t *testing.T) {
	clock := NewClock()
	start := clock.Now()
	s, _ := h.store(t, store.Options{Clock: clock.Now, TTL: store.TTL{
		Messages: 100, Sessions: 1000, PacketIDs: 50, Wills: 10, Retained: 200,
	}})
	q := s.Queues()
	short := msg("t", "v5-short")
	short.Expires = start.Add(30 * time.Second)
	_, _, err := q.Append("c", msg("t", "ttl"))
	must(t, err)
	_, _, err = q.Append("c", short)
	must(t, err)
	long := msg("t", "v5-long")
	long.Expires = start.Add(time.Hour)
	must(t, s.Retained().Set("r/ttl", msg("r/ttl", "1")))
	must(t, s.Retained().Set("r/v5", short))
	must(t, s.Retained().Set("r/keep", msg("r/keep", "2")))
	must(t, s.Wills().Put("w", msg("w", "1"), start.Add(20*time.Second)))
	must(t, s.Inflight().PutInbound("c", 1))
	must(t, s.Inflight().Put("c", 2, short)) // in flight: kept until acknowledged
	must(t, s.Sessions().Save("v5", &store.SessionRecord{Expiry: 60, Disconnected: start}))
	must(t, s.Sessions().Save("v3", &store.SessionRecord{Expiry: store.NeverExpire, Disconnected: start}))
	must(t, s.Sessions().Save("online", &store.SessionRecord{Expiry: 60}))
	appendN(t, q, "v5", 2)

	clock.Add(40 * time.Second) // v5 message expired, not the TTL'd one
	_, _, err = q.Append("c", long)
	must(t, err)
	if got := payloads(t, q, "c"); !reflect.DeepEqual(got, []string{"ttl", "v5-long"}) {
		t.Fatalf("read at +40s: %v", got)
	}
	if n, _, _ := q.Len("c"); n != 3 {
		t.Fatalf("Len counts unswept messages: %d, want 3", n)
	}
	must(t, s.Sweep(context.Background()))
	if n, b, _ := q.Len("c"); n != 2 || b != int64(1+3+1+7) {
		t.Fatalf("after sweep at +40s: Len %d %d", n, b)
	}
	if got := retainedMap(t, s); len(got) != 2 || got["r/v5"] != "" {
		t.Fatalf("retained at +40s: %v", got)
	}
	var inbound []uint16
	must(t, s.Inflight().RangeInbound("c", func(pid uint16) bool { inbound = append(inbound, pid); return true }))
	if len(inbound) != 1 {
		t.Fatalf("inbound mark gone before its TTL: %v", inbound)
	}

	clock.Add(40 * time.Second) // +80s: mark (50s), will (20s+10s), v5 session (60s)
	must(t, s.Sweep(context.Background()))
	inbound = nil
	must(t, s.Inflight().RangeInbound("c", func(pid uint16) bool { inbound = append(inbound, pid); return true }))
	if len(inbound) != 0 {
		t.Fatalf("inbound mark kept past its TTL: %v", inbound)
	}
	must(t, s.Wills().Range(func(id string, _ *store.Message, _ time.Time) bool {
		t.Fatalf("will %s kept past its TTL", id)
		return true
	}))
	if got := sessionMap(t, s); len(got) != 2 || got["v5"] != nil {
		t.Fatalf("sessions at +80s: %v", got)
	}
	if n, _, _ := q.Len("v5"); n != 0 {
		t.Fatalf("an expired session's queue is kept: %d", n)
	}
	inflight := 0
	must(t, s.Inflight().Range("c", func(uint16, *store.Message, bool) bool { inflight++; return true }))
	if inflight != 1 {
		t.Fatal("an inflight message was expired")
	}

	clock.Add(30 * time.Second) // +110s: the TTL'd message (100s)
	if got := payloads(t, q, "c"); !reflect.DeepEqual(got, []string{"v5-long"}) {
		t.Fatalf("read at +110s: %v", got)
	}
	clock.Add(100 * time.Second) // +210s: retained TTL (200s), the last message's TTL (+40s+100s)
	must(t, s.Sweep(context.Background()))
	if n, _, _ := q.Len("c"); n != 0 {
		t.Fatalf("after sweep at +210s: Len %d", n)
	}
	if got := retainedMap(t, s); len(got) != 0 {
		t.Fatalf("retained at +210s: %v", got)
	}
	clock.Add(1000 * time.Second) // the v3 session, by TTL.Sessions
	must(t, s.Sweep(context.Background()))
	if got := sessionMap(t, s); len(got) != 1 || got["online"] == nil {
		t.Fatalf("sessions at +1210s: %v", got)
	}
	if st := s.Stats(); st.Expired == 0 || st.Queued != 0 {
		t.Fatalf("Stats %+v", st)
	}
}

// expirySpansTicks expires scattered messages in a queue longer than one
// sweep tick and one lock hold.
func (h harness) expirySpansTicks(t *testing.T) {
	clock := NewClock()
	s, _ := h.store(t, store.Options{Clock: clock.Now, SweepBudget: 100})
	q := s.Queues()
	const n = 3000
	for i := 0; i < n; i++ {
		m := msg("t", fmt.Sprint(i))
		if i%7 == 3 {
			m.Expires = clock.Now().Add(time.Duration(1+i%2) * time.Minute)
		}
		_, _, err := q.Append("c", m)
		must(t, err)
	}
	appendN(t, q, "d", 10)
	clock.Add(90 * time.Second) // those expiring at one minute, not two
	must(t, s.Sweep(context.Background()))
	want := 0
	for i := 0; i < n; i++ {
		if !(i%7 == 3 && i%2 == 0) {
			want++
		}
	}
	if c, _, _ := q.Len("c"); c != want {
		t.Fatalf("after one minute: %d messages, want %d", c, want)
	}
	clock.Add(time.Minute)
	must(t, s.Sweep(context.Background()))
	if c, _, _ := q.Len("c"); c != n-(n+3)/7 {
		t.Fatalf("after two minutes: %d messages, want %d", c, n-(n+3)/7)
	}
	if got := payloads(t, q, "c"); len(got) != n-(n+3)/7 || got[0] != "0" || got[3] != "4" {
		t.Fatalf("queue after sweeps: %d messages starting %v", len(got), got[:4])
	}
	if c, _, _ := q.Len("d"); c != 10 {
		t.Fatalf("the next queue lost messages: %d", c)
	}
}

func (h harness) expiredMakeRoom(t *testing.T) {
	clock := NewClock()
	s, _ := h.store(t, store.Options{Clock: clock.Now, MaxCount: 3, Policy: store.RefuseNewest})
	q := s.Queues()
	m := msg("t", "expiring")
	m.Expires = clock.Now().Add(time.Second)
	_, _, err := q.Append("c", msg("t", "0"))
	must(t, err)
	_, _, err = q.Append("c", m)
	must(t, err)
	_, _, err = q.Append("c", msg("t", "2"))
	must(t, err)
	clock.Add(2 * time.Second)
	if _, dropped, err := q.Append("c", msg("t", "3")); err != nil || dropped != 0 {
		t.Fatalf("append with an expired message in the way: dropped %d %v", dropped, err)
	}
	if got := payloads(t, q, "c"); !reflect.DeepEqual(got, []string{"0", "2", "3"}) {
		t.Fatalf("queue %v", got)
	}
	if st := s.Stats(); st.Dropped != 0 || st.Expired != 1 {
		t.Fatalf("Stats %+v", st)
	}
}

func (h harness) backgroundSweeper(t *testing.T) {
	clock := NewClock()
	s, _ := h.store(t, store.Options{Clock: clock.Now, SweepInterval: 5 * time.Millisecond, SweepBudget: 3,
		TTL: store.TTL{Messages: 1}})
	for i := 0; i < 5; i++ {
		appendN(t, s.Queues(), fmt.Sprint("c", i), 4)
	}
	clock.Add(3 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Queued != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper left %d messages", s.Stats().Queued)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// concurrent runs writers on shared and own queues with readers removing
// as they go, as the broker's event loops and sessions would.
func (h harness) concurrent(t *testing.T) {
	s, _ := h.store(t, store.Options{MaxCount: 1 << 20})
	q := s.Queues()
	const writers, per = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprint("own", w)
			for i := 0; i < per; i++ {
				if _, _, err := q.Append("shared", msg("t", fmt.Sprint(w, "/", i))); err != nil {
					t.Error(err)
					return
				}
				seq, _, err := q.Append(own, msg("t", fmt.Sprint(i)))
				if err != nil || seq != uint64(i+1) {
					t.Errorf("%s: seq %d %v", own, seq, err)
					return
				}
				if i%10 == 9 {
					if err := s.Commit().Wait(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
				if err := s.Inflight().Put(own, uint16(i), msg("t", "x")); err != nil {
					t.Error(err)
					return
				}
				if err := s.Inflight().Delete(own, uint16(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// A consumer reads the shared queue as it fills and removes what it
	// read: every message must come exactly once, each writer's in order.
	done := make(chan map[int]int)
	go func() {
		next := map[int]int{}
		var after uint64
		for got := 0; got < writers*per; {
			batch, err := q.Read("shared", after, 50)
			if err != nil {
				t.Error(err)
				break
			}
			for _, e := range batch {
				var w, i int
				fmt.Sscanf(string(e.Msg.Payload), "%d/%d", &w, &i)
				if i != next[w] {
					t.Errorf("writer %d: message %d after %d", w, i, next[w]-1)
				}
				next[w] = i + 1
				after = e.Seq
				got++
			}
			if len(batch) > 0 {
				if err := q.Remove("shared", after); err != nil {
					t.Error(err)
					break
				}
			}
		}
		done <- next
	}()
	wg.Wait()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not see every message")
	}
	for w := 0; w < writers; w++ {
		if n, _, _ := q.Len(fmt.Sprint("own", w)); n != per {
			t.Fatalf("own%d: %d messages", w, n)
		}
	}
	if st := s.Stats(); st.Queued != writers*per {
		t.Fatalf("Stats.Queued %d, want %d", st.Queued, writers*per)
	}
}

func (h harness) commit(t *testing.T) {
	s, _ := h.store(t, store.Options{})
	_, _, err := s.Queues().Append("c", msg("t", "1"))
	must(t, err)
	p := s.Commit()
	called := make(chan error, 1)
	p.OnDone(func(err error) { called <- err })
	select {
	case err := <-called:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("OnDone never ran")
	}
	<-p.Done()
	must(t, p.Err())
	must(t, s.Commit().Wait(context.Background())) // nothing new: complete
	must(t, s.Sync(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Sync(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func (h harness) closed(t *testing.T) {
	s := h.open(t, t.TempDir(), store.Options{SweepInterval: -1})
	_, _, err := s.Queues().Append("c", msg("t", "1"))
	must(t, err)
	p := s.Commit()
	must(t, s.Close())
	must(t, p.Wait(context.Background())) // Close completes what was pending
	if _, _, err := s.Queues().Append("c", msg("t", "1")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.Sessions().Range(func(string, *store.SessionRecord) bool { return true }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Range after Close: %v", err)
	}
	if _, err := s.Queues().IDs(""); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("IDs after Close: %v", err)
	}
	if err := s.Commit().Wait(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func (h harness) restart(t *testing.T) {
	dir := t.TempDir()
	o := store.Options{SweepInterval: -1, MaxCount: 5, Policy: store.DropOldest}
	s := h.open(t, dir, o)
	rec := &store.SessionRecord{Expiry: 60, Disconnected: time.Unix(1_900_000_000, 0), Subs: []store.Sub{{Filter: "a/#", QoS: 2, ID: 5}}}
	must(t, s.Sessions().Save("c", rec))
	appendN(t, s.Queues(), "c", 7) // two dropped
	must(t, s.Queues().Remove("c", 3))
	_, _, err := s.Queues().Append("c", richMessage())
	must(t, err)
	must(t, s.Inflight().Put("c", 9, msg("t", "nine")))
	must(t, s.Inflight().Put("c", 4, richMessage()))
	must(t, s.Inflight().Release("c", 9))
	must(t, s.Inflight().PutInbound("c", 77))
	must(t, s.Retained().Set("r", richMessage()))
	must(t, s.Wills().Put("c", richMessage(), time.Unix(1_900_000_000, 7)))
	before := s.Stats()
	must(t, s.Close())

	s = h.open(t, dir, o)
	defer s.Close()
	if got := sessionMap(t, s); len(got) != 1 || !reflect.DeepEqual(got["c"].Subs, rec.Subs) || !got["c"].Disconnected.Equal(rec.Disconnected) {
		t.Fatalf("sessions after restart: %+v", got)
	}
	if ids, err := s.Queues().IDs(""); err != nil || !reflect.DeepEqual(ids, []string{"c"}) {
		t.Fatalf("queue IDs after restart: %q, %v", ids, err)
	}
	got, err := s.Queues().Read("c", 0, 0)
	must(t, err)
	if len(got) != 5 || got[0].Seq != 4 || got[4].Seq != 8 {
		t.Fatalf("queue after restart: %v", got)
	}
	sameMessage(t, got[4].Msg, richMessage())
	if seq, _, _ := s.Queues().Append("c", msg("t", "x")); seq != 9 {
		t.Fatalf("seq after restart %d, want 9", seq)
	}
	var order []uint16
	must(t, s.Inflight().Range("c", func(pid uint16, m *store.Message, released bool) bool {
		order = append(order, pid)
		if pid == 9 && (!released || m != nil) {
			t.Errorf("pid 9 lost its release")
		}
		if pid == 4 {
			sameMessage(t, m, richMessage())
		}
		return true
	}))
	if !reflect.DeepEqual(order, []uint16{9, 4}) {
		t.Fatalf("inflight order after restart %v", order)
	}
	var in []uint16
	must(t, s.Inflight().RangeInbound("c", func(pid uint16) bool { in = append(in, pid); return true }))
	if !reflect.DeepEqual(in, []uint16{77}) {
		t.Fatalf("inbound after restart %v", in)
	}
	if r := retainedMap(t, s); len(r) != 1 {
		t.Fatalf("retained after restart %v", r)
	}
	wills := 0
	must(t, s.Wills().Range(func(id string, m *store.Message, at time.Time) bool {
		wills++
		sameMessage(t, m, richMessage())
		if !at.Equal(time.Unix(1_900_000_000, 7)) {
			t.Errorf("will fires at %v", at)
		}
		return true
	}))
	if wills != 1 {
		t.Fatal("the will was lost")
	}
	after := s.Stats() // the Append above dropped one to add one
	if before.Queued != 5 || before.Dropped != 2 || after.Queued != 5 || after.QueuedBytes != before.QueuedBytes || after.Dropped != 3 {
		t.Fatalf("counters: before %+v, after %+v", before, after)
	}
}
