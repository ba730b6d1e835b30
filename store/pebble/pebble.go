// Package pebble is the on-disk store, on the Pebble LSM engine (the storage
// engine of CockroachDB): a write-ahead log for durability, sorted keys so
// that a session's queue is one contiguous range, and range deletions so
// that dropping a queue costs one record however long it is.
//
// # Key layout
//
// Every key begins with a byte for its kind; keys of one client continue
// with the client ID, length-prefixed (uvarint), so that all of one
// session's queue, or of its inflight messages, is one contiguous range
// that no other ID can interleave:
//
//	c                  counters: queued messages and bytes, dropped (merge operands, summed)
//	i | id | pid16     inbound QoS 2 packet ID → when recorded
//	o | id             outbound inflight: last send-order number given out
//	o | id | pid16     outbound inflight message → send order, released, message
//	q | id             queue meta → head, last seq, count, bytes, earliest expiry, epoch
//	q | id | seq64     queued message → when queued, size, message
//	r | topic          retained message → when set, message
//	s | id             session record → expiry, disconnected at, subscriptions
//	v                  layout name and version
//	w | id             will → fire time, message
//
// Numbers in keys are big-endian, so a queue iterates in sequence order and
// Read is one seek. A queue's meta sorts just before its messages, so Drop
// is one range deletion; Remove is one range deletion from the head; the
// meta's head keeps Read and Remove from ever iterating over the deleted
// part that compaction has not reclaimed yet.
//
// # Durability
//
// Writes are applied without waiting for the disk (visible at once); a
// single committer goroutine makes them durable by committing an empty
// synced WAL record, which fsyncs the log up to and including everything
// applied before it. Under Durable, Commit joins the group the committer
// will sync next, so every writer waiting at that moment shares one fsync;
// under Interval the committer syncs on a timer. No lock is held across an
// fsync: writers and readers go on while the committer waits for the disk.
//
// # Damage
//
// Pebble checksums the write-ahead log, the manifest and every block, and
// reads a torn log tail after a power cut as the end of the log. Anything
// else it finds damaged is an error, never an empty result: Open fails
// naming the directory, and a read that meets a damaged block fails naming
// it too. Repair salvages what can still be read into a new store.
package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coolpy7/coolpy7/store"
)

// Store is the on-disk store.Store.
type Store struct {
	dir string
	o   store.Options
	db  *pdb.DB

	// active counts calls in progress; Close waits for it to drain after
	// setting closing, so the engine is never used after it is closed. It
	// is a counter and not an RWMutex so that a Range callback may call
	// the store while Close is waiting.
	active  atomic.Int64
	closing atomic.Bool

	// locks serialise the read-modify-write of one client's records (queue
	// meta, send order) and of the sweeper's re-check before a delete. They
	// are never held across an fsync.
	seed  maphash.Seed
	locks [256]sync.Mutex

	cmu     sync.Mutex
	waiting *store.Group // the group the next sync completes
	kick    chan struct{}
	writes  atomic.Int64 // write batches applied
	synced  atomic.Int64 // writes known durable
	syncs   atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
	// ctx ends when Close starts, to cut a compaction short.
	ctx    context.Context
	cancel context.CancelFunc

	queued, queuedBytes, dropped, expired atomic.Int64
	// ended is the bytes of queues dropped by Sessions.Delete (the broker
	// ends sessions on its own timers) since the sweeper last looked, so
	// that they count towards its flush and compaction like its own.
	ended atomic.Int64

	sweepMu sync.Mutex
	sweep   sweepState
}

// Open opens the store in dir, creating it if it does not exist. A
// directory that is not a store of this layout, or that is damaged, is an
// error naming it; nothing is created or changed then.
func Open(dir string, o store.Options) (*Store, error) {
	return open(dir, o, nil)
}

// open is Open on a given file system; tests pass one that can lose what
// was not synced, as a power cut does. nil is the disk.
func open(dir string, o store.Options, fs vfs.FS) (*Store, error) {
	o = o.Defaults()
	eo := engineOptions(o.Logger)
	if fs != nil {
		eo.FS = fs
	}
	db, err := pdb.Open(dir, eo)
	if err != nil {
		return nil, openError(dir, err)
	}
	s := &Store{dir: dir, o: o, db: db, seed: maphash.MakeSeed(), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.init(); err != nil {
		s.cancel()
		_ = db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.committer()
	if o.SweepInterval > 0 {
		s.wg.Add(1)
		go s.sweeper()
	}
	return s, nil
}

func engineOptions(l *slog.Logger) *pdb.Options {
	return &pdb.Options{
		Merger: counterMerger,
		Logger: engineLogger{l},
		// The engine's default treats damage found by a read as fatal; the
		// read's error reaches the caller anyway, who can stop cleanly.
		EventListener: &pdb.EventListener{DataCorruption: func(info pdb.DataCorruptionInfo) {
			l.Error("store damaged", "err", info.String())
		}},
		FormatMajorVersion: pdb.FormatNewest,
		// A bigger memtable than the 4 MB default flushes less often
		// under a stream of small messages; 32 MB of block cache holds
		// the queue heads being read back.
		MemTableSize: 16 << 20,
		CacheSize:    32 << 20,
	}
}

func openError(dir string, err error) error {
	if pdb.IsCorruptionError(err) {
		return fmt.Errorf("store: %s is damaged: %w; keep a copy of the directory and run the repair (pebble.Repair)", dir, err)
	}
	return fmt.Errorf("store: cannot open %s: %w", dir, err)
}

// init checks the layout, marking a new store with it, and loads the
// counters.
func (s *Store) init() error {
	v, ok, err := s.get([]byte{kindVersion})
	switch {
	case err != nil:
		return err
	case ok && string(v) != layout:
		return fmt.Errorf("store: %s holds %q, not %q", s.dir, v, layout)
	case !ok:
		it, err := s.db.NewIter(nil)
		if err != nil {
			return s.wrap(err)
		}
		empty := !it.First()
		err = it.Close()
		if err != nil {
			return s.wrap(err)
		}
		if !empty {
			return fmt.Errorf("store: %s is not a Coolpy7 store (no layout record)", s.dir)
		}
		if err := s.db.Set([]byte{kindVersion}, []byte(layout), pdb.Sync); err != nil {
			return s.wrap(err)
		}
	}
	c, ok, err := s.get([]byte{kindCounters})
	if err != nil || !ok {
		return err
	}
	var d delta
	if err := d.decode(c); err != nil {
		return fmt.Errorf("store: %s: counters: %w", s.dir, err)
	}
	s.queued.Store(d.queued)
	s.queuedBytes.Store(d.bytes)
	s.dropped.Store(d.dropped)
	return nil
}

// wrap names the store in an engine error, once, and says what to do when
// it is damage.
func (s *Store) wrap(err error) error {
	var se *storeError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &storeError{dir: s.dir, err: err, damaged: pdb.IsCorruptionError(err) || errors.Is(err, errCorrupt)}
}

type storeError struct {
	dir     string
	err     error
	damaged bool
}

func (e *storeError) Error() string {
	if e.damaged {
		return fmt.Sprintf("store %s: damaged: %v; stop the broker, keep a copy of the directory and run the repair (pebble.Repair)", e.dir, e.err)
	}
	return fmt.Sprintf("store %s: %v", e.dir, e.err)
}

func (e *storeError) Unwrap() error { return e.err }

func (s *Store) enter() error {
	s.active.Add(1)
	if s.closing.Load() {
		s.active.Add(-1)
		return store.ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.active.Add(-1) }

func (s *Store) lock(id string) *sync.Mutex {
	mu := &s.locks[maphash.String(s.seed, id)%uint64(len(s.locks))]
	mu.Lock()
	return mu
}

// get returns a copy of key's value.
func (s *Store) get(key []byte) ([]byte, bool, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.wrap(err)
	}
	v = append([]byte(nil), v...)
	return v, true, c.Close()
}

// apply writes b without waiting for the disk and counts it for the
// committer. It closes b.
func (s *Store) apply(b *pdb.Batch) error {
	err := s.db.Apply(b, pdb.NoSync)
	_ = b.Close()
	if err != nil {
		return s.wrap(err)
	}
	s.writes.Add(1)
	return nil
}

func (s *Store) Sessions() store.Sessions { return (*sessions)(s) }
func (s *Store) Queues() store.Queues     { return (*queues)(s) }
func (s *Store) Inflight() store.Inflight { return (*inflight)(s) }
func (s *Store) Retained() store.Retained { return (*retained)(s) }
func (s *Store) Wills() store.Wills       { return (*wills)(s) }

// Commit returns at once under Interval, and when nothing was written since
// the last sync; otherwise it joins the group the committer syncs next.
func (s *Store) Commit() store.Pending {
	if err := s.enter(); err != nil {
		return failed(err)
	}
	defer s.leave()
	if s.o.Durability.Every() > 0 || s.writes.Load() == s.synced.Load() {
		return store.Pending{}
	}
	return s.request()
}

func failed(err error) store.Pending {
	g := store.NewGroup()
	g.Finish(err)
	return g.Pending()
}

// request joins the next sync and wakes the committer.
func (s *Store) request() store.Pending {
	s.cmu.Lock()
	if s.waiting == nil {
		s.waiting = store.NewGroup()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	g := s.waiting
	s.cmu.Unlock()
	return g.Pending()
}

func (s *Store) Sync(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	p := s.request()
	s.leave()
	return p.Wait(ctx)
}

// committer syncs on request and, under Interval, on its timer. While it
// waits for the disk, new requests gather in the next group: that is the
// group commit.
func (s *Store) committer() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if d := s.o.Durability.Every(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.kick:
		case <-tick:
		case <-s.stop:
			s.syncNow()
			return
		}
		s.syncNow()
	}
}

func (s *Store) syncNow() {
	s.cmu.Lock()
	g := s.waiting
	s.waiting = nil
	s.cmu.Unlock()
	w := s.writes.Load()
	if g == nil && w == s.synced.Load() {
		return
	}
	// A synced record fsyncs the log through every record before it, and
	// every write counted in w was applied before this one.
	err := s.db.LogData(nil, pdb.Sync)
	s.syncs.Add(1)
	if err != nil {
		err = s.wrap(err)
		s.o.Logger.Error("store sync failed", "err", err)
	} else {
		s.synced.Store(w)
	}
	if g != nil {
		g.Finish(err)
	}
}

func (s *Store) Stats() store.Stats {
	st := store.Stats{
		Queued:      s.queued.Load(),
		QueuedBytes: s.queuedBytes.Load(),
		Dropped:     s.dropped.Load(),
		Expired:     s.expired.Load(),
		Writes:      s.writes.Load(),
		Syncs:       s.syncs.Load(),
	}
	if s.enter() == nil {
		st.DiskBytes = s.db.Metrics().DiskSpaceUsage()
		s.leave()
	}
	return st
}

// Close waits for calls in progress, syncs and closes the engine.
func (s *Store) Close() error {
	if s.closing.Swap(true) {
		return store.ErrClosed
	}
	s.cancel()
	for s.active.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	close(s.stop)
	s.wg.Wait()
	return s.wrap(s.db.Close())
}

// delta is a change to the counters, written as a merge operand in the same
// batch as the change it counts, so the counters survive a crash exactly.
type delta struct {
	queued, bytes, dropped int64
	expired                int64 // since open only, not written
}

const deltaSize = 24

func (d *delta) encode() []byte {
	b := make([]byte, 0, deltaSize)
	for _, v := range [...]int64{d.queued, d.bytes, d.dropped} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func (d *delta) decode(b []byte) error {
	if len(b) != deltaSize {
		return errCorrupt
	}
	d.queued += int64(binary.LittleEndian.Uint64(b))
	d.bytes += int64(binary.LittleEndian.Uint64(b[8:]))
	d.dropped += int64(binary.LittleEndian.Uint64(b[16:]))
	return nil
}

// write adds d to b, for apply.
func (d *delta) write(b *pdb.Batch) {
	if d.queued != 0 || d.bytes != 0 || d.dropped != 0 {
		_ = b.Merge([]byte{kindCounters}, d.encode(), nil)
	}
}

// count adds d to the live counters once its batch is applied.
func (s *Store) count(d *delta) {
	s.queued.Add(d.queued)
	s.queuedBytes.Add(d.bytes)
	s.dropped.Add(d.dropped)
	s.expired.Add(d.expired)
}

// counterMerger sums counter operands, so that concurrent writers update
// the counters without reading them.
var counterMerger = &pdb.Merger{
	Name: "coolpy7.counters",
	Merge: func(_, value []byte) (pdb.ValueMerger, error) {
		a := &adder{}
		return a, a.d.decode(value)
	},
}

type adder struct{ d delta }

func (a *adder) MergeNewer(v []byte) error { return a.d.decode(v) }
func (a *adder) MergeOlder(v []byte) error { return a.d.decode(v) }
func (a *adder) Finish(bool) ([]byte, io.Closer, error) {
	return a.d.encode(), nil, nil
}

// engineLogger sends the engine's messages to the broker's log. The engine
// calls Fatalf when it cannot go on (a failed log write leaves its commit
// pipeline unusable); it must not return, so it panics.
type engineLogger struct{ l *slog.Logger }

func (e engineLogger) Infof(format string, args ...any) {
	if e.l.Enabled(context.Background(), slog.LevelDebug) {
		e.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (e engineLogger) Errorf(format string, args ...any) {
	e.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (e engineLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.l.Error(msg, "component", "pebble")
	panic(msg)
}
