package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/internal/rule"
)

// sweepState is where the sweeper is between ticks. It walks the whole key
// space in order, SweepBudget records a tick, so a large store is swept a
// slice at a time and no tick holds anything long.
type sweepState struct {
	cursor []byte // the next key to visit; nil for the start
	// A queue whose sweep spans ticks: its prefix, its epoch (a queue
	// dropped and recreated meanwhile is started afresh), whether every
	// message is checked or only the expired head, and the earliest v5
	// expiry seen among its live messages so far.
	queue   []byte
	epoch   uint64
	full    bool
	liveMin uint64
	// freed is the bytes of messages expired in this pass.
	freed int64
}

// flushAfter is how much a pass must free before it flushes the memtable:
// the deletions reach the tables only then, and only then can compaction
// drop what they cover, which on a quiet broker could otherwise wait for a
// memtable that never fills. A pass that freed a quarter of the store also
// compacts the queues: each queue's deletion covers one session while every
// table spans many, so the engine's own delete-only compactions rarely
// apply and its size-driven ones wait for growth that a store shrinking by
// expiry never has. The quarter bounds the rewriting to a third of what was
// freed.
const flushAfter = 1 << 20

// chunk bounds the messages one queue lock hold visits, so that the
// sweeper delays a writer to the same session by a millisecond or so.
const chunk = 1024

func (s *Store) sweeper() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.enter() != nil {
			return
		}
		s.sweepMu.Lock()
		_, err := s.tick(s.o.SweepBudget)
		s.sweepMu.Unlock()
		s.leave()
		if err != nil && !errors.Is(err, store.ErrClosed) {
			s.o.Logger.Error("store sweep failed", "err", err)
		}
	}
}

func (s *Store) Sweep(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	s.sweep = sweepState{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wrapped, err := s.tick(s.o.SweepBudget)
		if err != nil || wrapped {
			return err
		}
	}
}

// tick visits up to budget records from the cursor and deletes what has
// expired. It reports whether it reached the end of the key space.
func (s *Store) tick(budget int) (wrapped bool, err error) {
	now := s.o.Clock()
	st := &s.sweep
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: st.cursor})
	if err != nil {
		return false, s.wrap(err)
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = s.wrap(cerr)
		}
	}()
	ok := it.First()
	for ok && budget > 0 {
		k := it.Key()
		switch k[0] {
		case kindQueue:
			pre, rest, valid := parsePrefix(k)
			if !valid {
				return false, s.wrap(errCorrupt)
			}
			pre = bytes.Clone(pre)
			var from uint64 // 0: start at the head, if there is work
			switch {
			case len(rest) == 0:
				budget--
			case bytes.Equal(st.queue, pre):
				from = binary.BigEndian.Uint64(rest)
			default:
				ok = it.SeekGE(end(pre))
				continue
			}
			done := true
			for budget > 0 {
				var n int
				var err error
				n, done, from, err = s.sweepQueue(pre, from, min(budget, chunk), now)
				if err != nil {
					return false, err
				}
				budget -= n
				if done {
					break
				}
			}
			if !done {
				st.cursor = queueKey(pre, from)
				return false, nil
			}
			ok = it.SeekGE(end(pre))
		case kindSession:
			budget--
			rec, err := decodeSession(it.Value())
			if err != nil {
				return false, s.wrap(err)
			}
			if rule.Session(s.o.TTL, rec, now) {
				if err := s.expireSession(string(k[1:]), now); err != nil {
					return false, err
				}
			}
			ok = it.Next()
		case kindInbound:
			budget--
			pre, _, valid := parsePrefix(k)
			if !valid {
				return false, s.wrap(errCorrupt)
			}
			if err := s.expire(idOf(pre), k, it.Value(), func(v []byte) bool {
				r := reader{b: v}
				at := int64(r.uvarint())
				return r.err == nil && rule.Mark(s.o.TTL, at, now)
			}); err != nil {
				return false, err
			}
			ok = it.Next()
		case kindRetained:
			budget--
			if err := s.expire(string(k[1:]), k, it.Value(), func(v []byte) bool {
				r := reader{b: v}
				at := int64(r.uvarint())
				exp, err := expiresOf(r.b)
				return r.err == nil && err == nil && rule.Retained(s.o.TTL, &store.Message{Expires: exp}, at, now)
			}); err != nil {
				return false, err
			}
			ok = it.Next()
		case kindWill:
			budget--
			if err := s.expire(string(k[1:]), k, it.Value(), func(v []byte) bool {
				r := reader{b: v}
				fireAt := r.time()
				exp, err := expiresOf(r.b)
				return r.err == nil && err == nil && rule.Will(s.o.TTL, &store.Message{Expires: exp}, fireAt, now)
			}); err != nil {
				return false, err
			}
			ok = it.Next()
		default:
			// Counters, the layout record, inflight messages: nothing here
			// expires (inflight messages go with their session).
			ok = it.SeekGE([]byte{k[0] + 1})
		}
	}
	if !ok {
		st.cursor = nil
		freed := st.freed + s.ended.Swap(0)
		st.freed = 0
		switch {
		case freed >= flushAfter && uint64(freed) >= s.db.Metrics().DiskSpaceUsage()/4:
			err = s.db.Compact(s.ctx, []byte{kindQueue}, []byte{kindQueue + 1}, false)
			if s.ctx.Err() != nil {
				err = nil // closing
			}
		case freed >= flushAfter:
			_, err = s.db.AsyncFlush()
		}
		return true, s.wrap(err)
	}
	st.cursor = bytes.Clone(it.Key())
	return false, nil
}

// sweepQueue sweeps one chunk of the queue at pre from seq from (0: a new
// pass from the head) and reports the messages visited, whether the pass
// is done, and where to go on.
func (s *Store) sweepQueue(pre []byte, from uint64, budget int, now time.Time) (visited int, done bool, next uint64, err error) {
	mu := s.lock(idOf(pre))
	defer mu.Unlock()
	meta, ok, err := s.queueMeta(pre)
	if err != nil || !ok {
		return 0, true, 0, err
	}
	st := &s.sweep
	if from == 0 || !bytes.Equal(st.queue, pre) || st.epoch != meta.epoch {
		full := meta.minExp != 0 && meta.minExp <= uint64(now.Unix())
		if !full && s.o.TTL.Messages == 0 {
			st.queue = nil
			return 0, true, 0, nil
		}
		st.queue, st.epoch, st.full, st.liveMin = pre, meta.epoch, full, 0
		from = meta.head
	}
	from = max(from, meta.head)
	b := s.db.NewBatch()
	var d delta
	head, minExp := meta.head, meta.minExp
	visited, done, next, liveMin, err := s.purgeQueue(s.db, b, pre, &meta, &d, now, from, budget, st.full)
	if err != nil {
		_ = b.Close()
		return 0, false, 0, err
	}
	if liveMin != 0 && (st.liveMin == 0 || liveMin < st.liveMin) {
		st.liveMin = liveMin
	}
	if done {
		if st.full {
			// Every live message was seen: messages appended meanwhile
			// went to the tail, which this pass reached last.
			meta.minExp = st.liveMin
		}
		st.queue = nil
	}
	if d.queued == 0 && meta.head == head && meta.minExp == minExp {
		_ = b.Close()
		return visited, done, next, nil
	}
	_ = b.Set(pre, meta.append(nil), nil)
	d.write(b)
	if err := s.apply(b); err != nil {
		return 0, false, 0, err
	}
	s.count(&d)
	st.freed -= d.bytes
	return visited, done, next, nil
}

// expireSession ends id's session if it is still expired under its lock: the
// client may have come back since the sweeper read the record.
func (s *Store) expireSession(id string, now time.Time) error {
	return s.write(id, func(b *pdb.Batch, d *delta) error {
		var expired bool
		if _, err := s.read(simpleKey(kindSession, id), func(v []byte) error {
			rec, err := decodeSession(v)
			expired = err == nil && rule.Session(s.o.TTL, rec, now)
			return err
		}); err != nil || !expired {
			return err
		}
		d.expired++
		if err := s.deleteSession(b, id, d); err != nil {
			return err
		}
		s.sweep.freed -= d.bytes
		return nil
	})
}

// expire deletes key if its value v is expired and still there, unchanged,
// under the lock of name.
func (s *Store) expire(name string, key, v []byte, expired func(v []byte) bool) error {
	if !expired(v) {
		return nil
	}
	v = bytes.Clone(v)
	key = bytes.Clone(key)
	return s.write(name, func(b *pdb.Batch, d *delta) error {
		var same bool
		if _, err := s.read(key, func(cur []byte) error {
			same = bytes.Equal(cur, v)
			return nil
		}); err != nil || !same {
			return err
		}
		d.expired++
		return b.Delete(key, nil)
	})
}
