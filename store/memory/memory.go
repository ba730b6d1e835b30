// Package memory is the in-memory store: everything is lost when the process
// ends, and Commit is always complete. It is the broker's store when no data
// directory is configured, and the reference the disk store is tested
// against.
package memory

import (
	"cmp"
	"context"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/internal/rule"
)

// Store is an in-memory store.Store. Sessions are spread over shards, each
// with its own mutex, so that deliveries to different sessions rarely meet
// on a lock.
type Store struct {
	o      store.Options
	seed   maphash.Seed
	shards [64]shard

	rmu      sync.Mutex
	retained map[string]retainedMsg

	banList bans // bans.go

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	queued, queuedBytes, dropped, expired, writes atomic.Int64
}

type shard struct {
	mu       sync.Mutex
	sessions map[string]*store.SessionRecord
	queues   map[string]*queue
	out      map[string]*outbound
	in       map[string]map[uint16]int64 // pid → at
	wills    map[string]will
}

type item struct {
	seq  uint64
	at   int64
	size int
	m    *store.Message
}

type queue struct {
	items []item
	last  uint64 // the last sequence number given out
	bytes int64
}

type outbound struct {
	last    uint64 // the last send-order number given out
	entries map[uint16]outEntry
}

type outEntry struct {
	ord      uint64
	m        *store.Message
	released bool
}

type will struct {
	m      *store.Message
	fireAt time.Time
}

type retainedMsg struct {
	m  *store.Message
	at int64
}

// Open returns an empty store running its sweeper per o.
func Open(o store.Options) *Store {
	s := &Store{o: o.Defaults(), seed: maphash.MakeSeed(), retained: map[string]retainedMsg{}, stop: make(chan struct{})}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.sessions = map[string]*store.SessionRecord{}
		sh.queues = map[string]*queue{}
		sh.out = map[string]*outbound{}
		sh.in = map[string]map[uint16]int64{}
		sh.wills = map[string]will{}
	}
	if s.o.SweepInterval > 0 {
		s.wg.Add(1)
		go s.sweeper()
	}
	return s
}

func (s *Store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// lock returns id's shard locked, or ErrClosed; write counts the call in
// Stats.Writes.
func (s *Store) lock(id string, write bool) (*shard, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if write {
		s.writes.Add(1)
	}
	sh := s.shard(id)
	sh.mu.Lock()
	return sh, nil
}

func (s *Store) Sessions() store.Sessions { return (*sessions)(s) }
func (s *Store) Queues() store.Queues     { return (*queues)(s) }
func (s *Store) Inflight() store.Inflight { return (*inflight)(s) }
func (s *Store) Retained() store.Retained { return (*retained)(s) }
func (s *Store) Wills() store.Wills       { return (*wills)(s) }

// Commit is always complete: nothing here outlives the process anyway.
func (s *Store) Commit() store.Pending { return store.Pending{} }

func (s *Store) Sync(context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

func (s *Store) Stats() store.Stats {
	return store.Stats{
		Queued:      s.queued.Load(),
		QueuedBytes: s.queuedBytes.Load(),
		Dropped:     s.dropped.Load(),
		Expired:     s.expired.Load(),
		Writes:      s.writes.Load(),
	}
}

func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	close(s.stop)
	s.wg.Wait()
	return nil
}

func (s *Store) sweeper() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Sweep(context.Background())
		}
	}
}

// Sweep deletes everything expired. In memory a whole pass is quick and
// holds one shard's lock at a time, so it ignores SweepBudget.
func (s *Store) Sweep(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.o.Clock()
	t := s.o.TTL
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, rec := range sh.sessions {
			if rule.Session(t, rec, now) {
				s.expired.Add(1)
				s.deleteSession(sh, id)
			}
		}
		for _, q := range sh.queues {
			s.purge(q, now)
		}
		for id, marks := range sh.in {
			for pid, at := range marks {
				if rule.Mark(t, at, now) {
					s.expired.Add(1)
					delete(marks, pid)
				}
			}
			if len(marks) == 0 {
				delete(sh.in, id)
			}
		}
		for id, w := range sh.wills {
			if rule.Will(t, w.m, w.fireAt, now) {
				s.expired.Add(1)
				delete(sh.wills, id)
			}
		}
		sh.mu.Unlock()
	}
	s.rmu.Lock()
	for topic, r := range s.retained {
		if rule.Retained(t, r.m, r.at, now) {
			s.expired.Add(1)
			delete(s.retained, topic)
		}
	}
	s.rmu.Unlock()
	return nil
}

// deleteSession drops everything of id but its will. Callers hold sh.mu.
func (s *Store) deleteSession(sh *shard, id string) {
	delete(sh.sessions, id)
	if q := sh.queues[id]; q != nil {
		s.queued.Add(-int64(len(q.items)))
		s.queuedBytes.Add(-q.bytes)
		delete(sh.queues, id)
	}
	delete(sh.out, id)
	delete(sh.in, id)
}

// purge removes q's expired messages. Callers hold the shard's lock.
func (s *Store) purge(q *queue, now time.Time) {
	kept := q.items[:0]
	for _, it := range q.items {
		if rule.Queued(s.o.TTL, it.m, it.at, now) {
			s.expired.Add(1)
			s.queued.Add(-1)
			s.queuedBytes.Add(-int64(it.size))
			q.bytes -= int64(it.size)
			continue
		}
		kept = append(kept, it)
	}
	clear(q.items[len(kept):])
	q.items = kept
}

type sessions Store

func (ss *sessions) Save(id string, rec *store.SessionRecord) error {
	s := (*Store)(ss)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	sh.sessions[id] = cloneRecord(rec)
	return nil
}

func (ss *sessions) Delete(id string) error {
	s := (*Store)(ss)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	s.deleteSession(sh, id)
	return nil
}

func (ss *sessions) Range(fn func(id string, rec *store.SessionRecord) bool) error {
	s := (*Store)(ss)
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.o.Clock()
	type entry struct {
		id  string
		rec *store.SessionRecord
	}
	for i := range s.shards {
		// Copied out so that fn runs without the lock and may call the store.
		var batch []entry
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, rec := range sh.sessions {
			if !rule.Session(s.o.TTL, rec, now) {
				batch = append(batch, entry{id, cloneRecord(rec)})
			}
		}
		sh.mu.Unlock()
		for _, e := range batch {
			if !fn(e.id, e.rec) {
				return nil
			}
		}
	}
	return nil
}

func cloneRecord(r *store.SessionRecord) *store.SessionRecord {
	c := *r
	c.Subs = slices.Clone(r.Subs)
	return &c
}

type queues Store

func (qs *queues) Append(id string, m *store.Message) (uint64, int, error) {
	s := (*Store)(qs)
	sh, err := s.lock(id, true)
	if err != nil {
		return 0, 0, err
	}
	defer sh.mu.Unlock()
	q := sh.queues[id]
	if q == nil {
		q = &queue{}
		sh.queues[id] = q
	}
	now := s.o.Clock()
	size := m.Size()
	if s.full(q, size) {
		s.purge(q, now)
	}
	if (s.o.MaxBytes > 0 && int64(size) > s.o.MaxBytes) || (s.full(q, size) && s.o.Policy == store.RefuseNewest) {
		s.dropped.Add(1)
		return 0, 1, store.ErrQueueFull
	}
	dropped := 0
	for s.full(q, size) {
		s.dropFront(q, 1)
		dropped++
	}
	s.dropped.Add(int64(dropped))
	q.last++
	q.items = append(q.items, item{seq: q.last, at: now.Unix(), size: size, m: m})
	q.bytes += int64(size)
	s.queued.Add(1)
	s.queuedBytes.Add(int64(size))
	return q.last, dropped, nil
}

func (s *Store) full(q *queue, size int) bool {
	return (s.o.MaxCount > 0 && len(q.items) >= s.o.MaxCount) ||
		(s.o.MaxBytes > 0 && q.bytes+int64(size) > s.o.MaxBytes)
}

// dropFront removes q's first n messages. Callers hold the shard's lock.
func (s *Store) dropFront(q *queue, n int) {
	var b int64
	for _, it := range q.items[:n] {
		b += int64(it.size)
	}
	clear(q.items[:n])
	q.items = q.items[n:]
	q.bytes -= b
	s.queued.Add(-int64(n))
	s.queuedBytes.Add(-b)
}

func (qs *queues) Read(id string, after uint64, limit int) ([]store.Queued, error) {
	s := (*Store)(qs)
	sh, err := s.lock(id, false)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	q := sh.queues[id]
	if q == nil {
		return nil, nil
	}
	now := s.o.Clock()
	i := sort.Search(len(q.items), func(i int) bool { return q.items[i].seq > after })
	var out []store.Queued
	for ; i < len(q.items) && (limit <= 0 || len(out) < limit); i++ {
		it := q.items[i]
		if !rule.Queued(s.o.TTL, it.m, it.at, now) {
			out = append(out, store.Queued{Seq: it.seq, Msg: it.m})
		}
	}
	return out, nil
}

func (qs *queues) Remove(id string, seq uint64) error {
	s := (*Store)(qs)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	s.remove(sh, id, seq)
	return nil
}

// remove deletes id's queue up to seq. Callers hold sh.mu.
func (s *Store) remove(sh *shard, id string, seq uint64) {
	if q := sh.queues[id]; q != nil {
		s.dropFront(q, sort.Search(len(q.items), func(i int) bool { return q.items[i].seq > seq }))
	}
}

func (qs *queues) Len(id string) (int, int64, error) {
	s := (*Store)(qs)
	sh, err := s.lock(id, false)
	if err != nil {
		return 0, 0, err
	}
	defer sh.mu.Unlock()
	if q := sh.queues[id]; q != nil {
		return len(q.items), q.bytes, nil
	}
	return 0, 0, nil
}

func (qs *queues) Drop(id string) error {
	s := (*Store)(qs)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if q := sh.queues[id]; q != nil {
		s.dropFront(q, len(q.items))
		delete(sh.queues, id)
	}
	return nil
}

func (qs *queues) IDs(prefix string) ([]string, error) {
	s := (*Store)(qs)
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	var ids []string
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, q := range sh.queues {
			if len(q.items) > 0 && strings.HasPrefix(id, prefix) {
				ids = append(ids, id)
			}
		}
		sh.mu.Unlock()
	}
	slices.Sort(ids)
	return ids, nil
}

type inflight Store

func (is *inflight) Put(id string, pid uint16, m *store.Message) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	s.put(sh, id, pid, m, false)
	return nil
}

func (is *inflight) Move(id string, seq uint64, pid uint16, m *store.Message) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	s.remove(sh, id, seq)
	s.put(sh, id, pid, m, false)
	return nil
}

// put records pid at the end of the send order. Callers hold sh.mu.
func (s *Store) put(sh *shard, id string, pid uint16, m *store.Message, released bool) {
	o := sh.out[id]
	if o == nil {
		o = &outbound{entries: map[uint16]outEntry{}}
		sh.out[id] = o
	}
	o.last++
	o.entries[pid] = outEntry{ord: o.last, m: m, released: released}
}

func (is *inflight) Release(id string, pid uint16) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if o := sh.out[id]; o != nil {
		if e, ok := o.entries[pid]; ok {
			o.entries[pid] = outEntry{ord: e.ord, released: true}
			return nil
		}
	}
	s.put(sh, id, pid, nil, true)
	return nil
}

func (is *inflight) Delete(id string, pid uint16) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if o := sh.out[id]; o != nil {
		delete(o.entries, pid)
	}
	return nil
}

func (is *inflight) Range(id string, fn func(pid uint16, m *store.Message, released bool) bool) error {
	s := (*Store)(is)
	sh, err := s.lock(id, false)
	if err != nil {
		return err
	}
	type entry struct {
		pid uint16
		outEntry
	}
	var list []entry
	if o := sh.out[id]; o != nil {
		for pid, e := range o.entries {
			list = append(list, entry{pid, e})
		}
	}
	sh.mu.Unlock()
	slices.SortFunc(list, func(a, b entry) int { return cmp.Compare(a.ord, b.ord) })
	for _, e := range list {
		if !fn(e.pid, e.m, e.released) {
			break
		}
	}
	return nil
}

func (is *inflight) PutInbound(id string, pid uint16) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	marks := sh.in[id]
	if marks == nil {
		marks = map[uint16]int64{}
		sh.in[id] = marks
	}
	marks[pid] = s.o.Clock().Unix()
	return nil
}

func (is *inflight) DeleteInbound(id string, pid uint16) error {
	s := (*Store)(is)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if marks := sh.in[id]; marks != nil {
		delete(marks, pid)
		if len(marks) == 0 {
			delete(sh.in, id)
		}
	}
	return nil
}

func (is *inflight) RangeInbound(id string, fn func(pid uint16) bool) error {
	s := (*Store)(is)
	sh, err := s.lock(id, false)
	if err != nil {
		return err
	}
	now := s.o.Clock()
	var pids []uint16
	for pid, at := range sh.in[id] {
		if !rule.Mark(s.o.TTL, at, now) {
			pids = append(pids, pid)
		}
	}
	sh.mu.Unlock()
	slices.Sort(pids)
	for _, pid := range pids {
		if !fn(pid) {
			break
		}
	}
	return nil
}

type retained Store

func (rs *retained) Set(topic string, m *store.Message) error {
	s := (*Store)(rs)
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.writes.Add(1)
	s.rmu.Lock()
	s.retained[topic] = retainedMsg{m: m, at: s.o.Clock().Unix()}
	s.rmu.Unlock()
	return nil
}

func (rs *retained) Delete(topic string) error {
	s := (*Store)(rs)
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.writes.Add(1)
	s.rmu.Lock()
	delete(s.retained, topic)
	s.rmu.Unlock()
	return nil
}

func (rs *retained) Range(fn func(topic string, m *store.Message) bool) error {
	s := (*Store)(rs)
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.o.Clock()
	type entry struct {
		topic string
		m     *store.Message
	}
	s.rmu.Lock()
	list := make([]entry, 0, len(s.retained))
	for topic, r := range s.retained {
		if !rule.Retained(s.o.TTL, r.m, r.at, now) {
			list = append(list, entry{topic, r.m})
		}
	}
	s.rmu.Unlock()
	for _, e := range list {
		if !fn(e.topic, e.m) {
			break
		}
	}
	return nil
}

type wills Store

func (ws *wills) Put(id string, m *store.Message, fireAt time.Time) error {
	s := (*Store)(ws)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	sh.wills[id] = will{m: m, fireAt: fireAt}
	return nil
}

func (ws *wills) Delete(id string) error {
	s := (*Store)(ws)
	sh, err := s.lock(id, true)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	delete(sh.wills, id)
	return nil
}

func (ws *wills) Range(fn func(id string, m *store.Message, fireAt time.Time) bool) error {
	s := (*Store)(ws)
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.o.Clock()
	type entry struct {
		id string
		will
	}
	for i := range s.shards {
		var list []entry
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, w := range sh.wills {
			if !rule.Will(s.o.TTL, w.m, w.fireAt, now) {
				list = append(list, entry{id, w})
			}
		}
		sh.mu.Unlock()
		for _, e := range list {
			if !fn(e.id, e.m, e.fireAt) {
				return nil
			}
		}
	}
	return nil
}
