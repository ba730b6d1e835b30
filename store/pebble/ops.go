package pebble

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/internal/rule"
)

// read calls fn with key's value, which is valid only during the call.
func (s *Store) read(key []byte, fn func(v []byte) error) (bool, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pdb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap(err)
	}
	err = fn(v)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return true, s.wrap(err)
}

func (s *Store) queueMeta(pre []byte) (q queueMeta, ok bool, err error) {
	ok, err = s.read(pre, func(v []byte) (err error) {
		q, err = decodeQueueMeta(v)
		return err
	})
	if err != nil {
		return q, false, fmt.Errorf("queue of %q: %w", idOf(pre), err)
	}
	return q, ok, nil
}

// iterate calls fn for every key in [lo, hi) of r until fn returns false
// or an error; k and v are valid only during the call.
func (s *Store) iterate(r pdb.Reader, lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return s.wrap(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // Close reports it
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			err = fmt.Errorf("key %q: %w", it.Key(), err)
			_ = it.Close()
			return s.wrap(err)
		}
		if !more {
			break
		}
	}
	return s.wrap(it.Close())
}

// write applies one batch built by fn under the lock of name, and counts d
// once it is applied.
func (s *Store) write(name string, fn func(b *pdb.Batch, d *delta) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	mu := s.lock(name)
	defer mu.Unlock()
	b := s.db.NewBatch()
	var d delta
	if err := fn(b, &d); err != nil {
		_ = b.Close()
		return err
	}
	d.write(b)
	if err := s.apply(b); err != nil {
		return err
	}
	s.count(&d)
	return nil
}

type sessions Store

func (ss *sessions) Save(id string, rec *store.SessionRecord) error {
	s := (*Store)(ss)
	v := appendSession(nil, rec)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Set(simpleKey(kindSession, id), v, nil)
	})
}

func (ss *sessions) Delete(id string) error {
	s := (*Store)(ss)
	return s.write(id, func(b *pdb.Batch, d *delta) error {
		if err := s.deleteSession(b, id, d); err != nil {
			return err
		}
		s.ended.Add(-d.bytes)
		return nil
	})
}

// deleteSession adds the end of id's session to b. Callers hold id's lock.
func (s *Store) deleteSession(b *pdb.Batch, id string, d *delta) error {
	_ = b.Delete(simpleKey(kindSession, id), nil)
	for _, k := range [...]byte{kindOutbound, kindInbound} {
		p := prefix(k, id)
		_ = b.DeleteRange(p, end(p), nil)
	}
	return s.dropQueue(b, prefix(kindQueue, id), d)
}

func (s *Store) dropQueue(b *pdb.Batch, pre []byte, d *delta) error {
	meta, ok, err := s.queueMeta(pre)
	if err != nil || !ok {
		return err
	}
	d.queued -= int64(meta.count)
	d.bytes -= int64(meta.bytes)
	return b.DeleteRange(pre, end(pre), nil)
}

func (ss *sessions) Range(fn func(id string, rec *store.SessionRecord) bool) error {
	s := (*Store)(ss)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	now := s.o.Clock()
	return s.iterate(s.db, []byte{kindSession}, []byte{kindSession + 1}, func(k, v []byte) (bool, error) {
		rec, err := decodeSession(v)
		if err != nil {
			return false, err
		}
		if rule.Session(s.o.TTL, rec, now) {
			return true, nil
		}
		return fn(string(k[1:]), rec), nil
	})
}

type queues Store

func (s *Store) full(q *queueMeta, size int) bool {
	return (s.o.MaxCount > 0 && q.count >= uint64(s.o.MaxCount)) ||
		(s.o.MaxBytes > 0 && int64(q.bytes)+int64(size) > s.o.MaxBytes)
}

func (qs *queues) Append(id string, m *store.Message) (seq uint64, dropped int, err error) {
	s := (*Store)(qs)
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.leave()
	now := s.o.Clock()
	size := m.Size()
	pre := prefix(kindQueue, id)
	val := appendQueued(nil, now.Unix(), size, m)

	mu := s.lock(id)
	defer mu.Unlock()
	meta, exists, err := s.queueMeta(pre)
	if err != nil {
		return 0, 0, err
	}
	if !exists {
		meta = queueMeta{head: 1, epoch: uint64(now.UnixNano())}
	}
	var b *pdb.Batch
	var d delta
	if s.full(&meta, size) {
		// Making room reads what this batch has already deleted.
		b = s.db.NewIndexedBatch()
		if err := s.purge(b, pre, &meta, &d, now); err != nil {
			_ = b.Close()
			return 0, 0, err
		}
	} else {
		b = s.db.NewBatch()
	}
	if (s.o.MaxBytes > 0 && int64(size) > s.o.MaxBytes) || (s.full(&meta, size) && s.o.Policy == store.RefuseNewest) {
		d.dropped++
		if exists {
			_ = b.Set(pre, meta.append(nil), nil)
		}
		d.write(b)
		if err := s.apply(b); err != nil {
			return 0, 0, err
		}
		s.count(&d)
		return 0, 1, store.ErrQueueFull
	}
	if s.full(&meta, size) {
		if dropped, err = s.dropOldest(b, pre, &meta, &d, size); err != nil {
			_ = b.Close()
			return 0, 0, err
		}
	}
	meta.last++
	seq = meta.last
	_ = b.Set(queueKey(pre, seq), val, nil)
	meta.count++
	meta.bytes += uint64(size)
	if e := expSeconds(m.Expires); e != 0 && (meta.minExp == 0 || e < meta.minExp) {
		meta.minExp = e
	}
	_ = b.Set(pre, meta.append(nil), nil)
	d.queued++
	d.bytes += int64(size)
	d.write(b)
	if err := s.apply(b); err != nil {
		return 0, 0, err
	}
	s.count(&d)
	return seq, dropped, nil
}

// purge deletes a queue's expired messages before anything is dropped for
// room: all of them when a v5 expiry may have passed, else the expired
// head under TTL.Messages. Callers hold the queue's lock.
func (s *Store) purge(b *pdb.Batch, pre []byte, meta *queueMeta, d *delta, now time.Time) error {
	full := meta.minExp != 0 && meta.minExp <= uint64(now.Unix())
	if !full && s.o.TTL.Messages == 0 {
		return nil
	}
	_, _, _, liveMin, err := s.purgeQueue(b, b, pre, meta, d, now, meta.head, math.MaxInt, full)
	if err == nil && full {
		meta.minExp = liveMin
	}
	return err
}

// purgeQueue deletes expired messages of the queue at pre from seq from on,
// reading through r and writing to b, visiting at most budget messages. A
// run of expired messages at the head goes as one range deletion. Unless
// full, it stops at the first live message: with a constant TTL the
// expired messages are a prefix, and v5 expiries are found through minExp.
// It returns whether it reached the end, the next seq to visit if not, and
// the earliest v5 expiry among the live messages it saw.
func (s *Store) purgeQueue(r pdb.Reader, b *pdb.Batch, pre []byte, meta *queueMeta, d *delta, now time.Time,
	from uint64, budget int, full bool) (visited int, done bool, next, liveMin uint64, err error) {
	atHead := from <= meta.head
	var runEnd uint64
	done = true
	err = s.iterate(r, queueKey(pre, from), end(pre), func(k, v []byte) (bool, error) {
		seq := binary.BigEndian.Uint64(k[len(pre):])
		if visited == budget {
			done, next = false, seq
			return false, nil
		}
		visited++
		at, size, msg, err := queuedHeader(v)
		if err != nil {
			return false, err
		}
		exp, err := expiresOf(msg)
		if err != nil {
			return false, err
		}
		if rule.Queued(s.o.TTL, &store.Message{Expires: exp}, at, now) {
			meta.count--
			meta.bytes -= size
			d.queued--
			d.bytes -= int64(size)
			d.expired++
			if atHead {
				runEnd = seq
				return true, nil
			}
			return true, b.Delete(k, nil)
		}
		atHead = false
		if e := expSeconds(exp); e != 0 && (liveMin == 0 || e < liveMin) {
			liveMin = e
		}
		return full, nil
	})
	if err != nil {
		return 0, false, 0, 0, err
	}
	if runEnd != 0 {
		if err := b.DeleteRange(queueKey(pre, meta.head), queueKey(pre, runEnd+1), nil); err != nil {
			return 0, false, 0, 0, err
		}
		meta.head = runEnd + 1
	}
	return visited, done, next, liveMin, nil
}

// dropOldest drops messages from the head until one of size fits.
func (s *Store) dropOldest(b *pdb.Batch, pre []byte, meta *queueMeta, d *delta, size int) (int, error) {
	n, last := 0, uint64(0)
	err := s.iterate(b, queueKey(pre, meta.head), end(pre), func(k, v []byte) (bool, error) {
		_, sz, _, err := queuedHeader(v)
		if err != nil {
			return false, err
		}
		n++
		last = binary.BigEndian.Uint64(k[len(pre):])
		meta.count--
		meta.bytes -= sz
		d.queued--
		d.bytes -= int64(sz)
		return s.full(meta, size), nil
	})
	if err != nil || n == 0 {
		return 0, err
	}
	d.dropped += int64(n)
	err = b.DeleteRange(queueKey(pre, meta.head), queueKey(pre, last+1), nil)
	meta.head = last + 1
	return n, err
}

func (qs *queues) Read(id string, after uint64, limit int) ([]store.Queued, error) {
	s := (*Store)(qs)
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	pre := prefix(kindQueue, id)
	meta, ok, err := s.queueMeta(pre)
	if err != nil || !ok {
		return nil, err
	}
	now := s.o.Clock()
	var out []store.Queued
	// Starting at the head skips what was removed but not yet compacted.
	err = s.iterate(s.db, queueKey(pre, max(after+1, meta.head)), end(pre), func(k, v []byte) (bool, error) {
		at, _, msg, err := queuedHeader(v)
		if err != nil {
			return false, err
		}
		m, err := decodeMessage(msg)
		if err != nil {
			return false, err
		}
		if !rule.Queued(s.o.TTL, m, at, now) {
			out = append(out, store.Queued{Seq: binary.BigEndian.Uint64(k[len(pre):]), Msg: m})
		}
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

func (qs *queues) Remove(id string, seq uint64) error {
	s := (*Store)(qs)
	return s.write(id, func(b *pdb.Batch, d *delta) error {
		return s.removeUpTo(b, prefix(kindQueue, id), seq, d)
	})
}

// removeUpTo adds the removal of a queue's messages up to seq to b.
// Callers hold the queue's lock.
func (s *Store) removeUpTo(b *pdb.Batch, pre []byte, seq uint64, d *delta) error {
	meta, ok, err := s.queueMeta(pre)
	if err != nil || !ok || seq < meta.head {
		return err
	}
	seq = min(seq, meta.last)
	if seq < meta.head {
		return nil
	}
	err = s.iterate(s.db, queueKey(pre, meta.head), queueKey(pre, seq+1), func(_, v []byte) (bool, error) {
		_, size, _, err := queuedHeader(v)
		meta.count--
		meta.bytes -= size
		d.queued--
		d.bytes -= int64(size)
		return true, err
	})
	if err != nil {
		return err
	}
	if err := b.DeleteRange(queueKey(pre, meta.head), queueKey(pre, seq+1), nil); err != nil {
		return err
	}
	meta.head = seq + 1
	return b.Set(pre, meta.append(nil), nil)
}

func (qs *queues) Len(id string) (int, int64, error) {
	s := (*Store)(qs)
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.leave()
	meta, _, err := s.queueMeta(prefix(kindQueue, id))
	return int(meta.count), int64(meta.bytes), err
}

// IDs skips from one queue's meta key to the next: IDs sharing a prefix
// are not adjacent in the key order (their length comes first), so every
// queue is visited, one seek each.
func (qs *queues) IDs(prefix string) (ids []string, err error) {
	s := (*Store)(qs)
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{kindQueue}, UpperBound: []byte{kindQueue + 1}})
	if err != nil {
		return nil, s.wrap(err)
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = s.wrap(cerr)
		}
	}()
	for ok := it.First(); ok; {
		pre, rest, valid := parsePrefix(it.Key())
		if !valid {
			return nil, s.wrap(fmt.Errorf("key %q: %w", it.Key(), errCorrupt))
		}
		if id := idOf(pre); len(rest) == 0 && strings.HasPrefix(id, prefix) {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, s.wrap(err)
			}
			meta, err := decodeQueueMeta(v)
			if err != nil {
				return nil, s.wrap(fmt.Errorf("queue of %q: %w", id, err))
			}
			if meta.count > 0 {
				ids = append(ids, id)
			}
		}
		ok = it.SeekGE(end(pre))
	}
	slices.Sort(ids)
	return ids, nil
}

func (qs *queues) Drop(id string) error {
	s := (*Store)(qs)
	return s.write(id, func(b *pdb.Batch, d *delta) error {
		return s.dropQueue(b, prefix(kindQueue, id), d)
	})
}

type inflight Store

func (is *inflight) Put(id string, pid uint16, m *store.Message) error {
	s := (*Store)(is)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return s.putOutbound(b, prefix(kindOutbound, id), pid, 0, m)
	})
}

func (is *inflight) Move(id string, seq uint64, pid uint16, m *store.Message) error {
	s := (*Store)(is)
	return s.write(id, func(b *pdb.Batch, d *delta) error {
		if err := s.removeUpTo(b, prefix(kindQueue, id), seq, d); err != nil {
			return err
		}
		return s.putOutbound(b, prefix(kindOutbound, id), pid, 0, m)
	})
}

// putOutbound writes pid with send order ord, or the next one when ord is
// 0; a nil m is a released message. Callers hold the session's lock.
func (s *Store) putOutbound(b *pdb.Batch, pre []byte, pid uint16, ord uint64, m *store.Message) error {
	if ord == 0 {
		var last uint64
		if _, err := s.read(pre, func(v []byte) error {
			r := reader{b: v}
			last = r.uvarint()
			return r.err
		}); err != nil {
			return err
		}
		ord = last + 1
		if err := b.Set(pre, binary.AppendUvarint(nil, ord), nil); err != nil {
			return err
		}
	}
	return b.Set(pidKey(pre, pid), appendOutbound(nil, ord, m), nil)
}

func (is *inflight) Release(id string, pid uint16) error {
	s := (*Store)(is)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		pre := prefix(kindOutbound, id)
		var ord uint64
		if _, err := s.read(pidKey(pre, pid), func(v []byte) error {
			r := reader{b: v}
			ord = r.uvarint()
			return r.err
		}); err != nil {
			return err
		}
		return s.putOutbound(b, pre, pid, ord, nil)
	})
}

func (is *inflight) Delete(id string, pid uint16) error {
	s := (*Store)(is)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Delete(pidKey(prefix(kindOutbound, id), pid), nil)
	})
}

func (is *inflight) Range(id string, fn func(pid uint16, m *store.Message, released bool) bool) error {
	s := (*Store)(is)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	type entry struct {
		pid      uint16
		ord      uint64
		m        *store.Message
		released bool
	}
	var list []entry
	pre := prefix(kindOutbound, id)
	// The window is small: read it whole, then order it.
	err := s.iterate(s.db, pidKey(pre, 0), end(pre), func(k, v []byte) (bool, error) {
		ord, m, released, err := decodeOutbound(v)
		list = append(list, entry{binary.BigEndian.Uint16(k[len(pre):]), ord, m, released})
		return true, err
	})
	if err != nil {
		return err
	}
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
	at := binary.AppendUvarint(nil, uint64(s.o.Clock().Unix()))
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Set(pidKey(prefix(kindInbound, id), pid), at, nil)
	})
}

func (is *inflight) DeleteInbound(id string, pid uint16) error {
	s := (*Store)(is)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Delete(pidKey(prefix(kindInbound, id), pid), nil)
	})
}

func (is *inflight) RangeInbound(id string, fn func(pid uint16) bool) error {
	s := (*Store)(is)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	now := s.o.Clock()
	pre := prefix(kindInbound, id)
	return s.iterate(s.db, pre, end(pre), func(k, v []byte) (bool, error) {
		r := reader{b: v}
		at := int64(r.uvarint())
		if r.err != nil || rule.Mark(s.o.TTL, at, now) {
			return true, r.err
		}
		return fn(binary.BigEndian.Uint16(k[len(pre):])), nil
	})
}

type retained Store

func (rs *retained) Set(topic string, m *store.Message) error {
	s := (*Store)(rs)
	v := appendMessage(binary.AppendUvarint(nil, uint64(s.o.Clock().Unix())), m)
	return s.write(topic, func(b *pdb.Batch, _ *delta) error {
		return b.Set(simpleKey(kindRetained, topic), v, nil)
	})
}

func (rs *retained) Delete(topic string) error {
	s := (*Store)(rs)
	return s.write(topic, func(b *pdb.Batch, _ *delta) error {
		return b.Delete(simpleKey(kindRetained, topic), nil)
	})
}

func (rs *retained) Range(fn func(topic string, m *store.Message) bool) error {
	s := (*Store)(rs)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	now := s.o.Clock()
	return s.iterate(s.db, []byte{kindRetained}, []byte{kindRetained + 1}, func(k, v []byte) (bool, error) {
		r := reader{b: v}
		at := int64(r.uvarint())
		if r.err != nil {
			return false, r.err
		}
		m, err := decodeMessage(r.b)
		if err != nil || rule.Retained(s.o.TTL, m, at, now) {
			return err == nil, err
		}
		return fn(string(k[1:]), m), nil
	})
}

type wills Store

func (ws *wills) Put(id string, m *store.Message, fireAt time.Time) error {
	s := (*Store)(ws)
	v := appendMessage(appendTime(nil, fireAt), m)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Set(simpleKey(kindWill, id), v, nil)
	})
}

func (ws *wills) Delete(id string) error {
	s := (*Store)(ws)
	return s.write(id, func(b *pdb.Batch, _ *delta) error {
		return b.Delete(simpleKey(kindWill, id), nil)
	})
}

func (ws *wills) Range(fn func(id string, m *store.Message, fireAt time.Time) bool) error {
	s := (*Store)(ws)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	now := s.o.Clock()
	return s.iterate(s.db, []byte{kindWill}, []byte{kindWill + 1}, func(k, v []byte) (bool, error) {
		r := reader{b: v}
		fireAt := r.time()
		if r.err != nil {
			return false, r.err
		}
		m, err := decodeMessage(r.b)
		if err != nil || rule.Will(s.o.TTL, m, fireAt, now) {
			return err == nil, err
		}
		return fn(string(k[1:]), m, fireAt), nil
	})
}
