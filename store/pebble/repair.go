package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/coolpy7/coolpy7/store"
)

// Report is what Repair did.
type Report struct {
	// Copied is how many records were salvaged.
	Copied int
	// Lost lists the key ranges that could not be read and were skipped,
	// with the error each gave.
	Lost []string
	// Damaged is where the original directory was moved, kept for
	// forensics or a better tool; empty when nothing was wrong.
	Damaged string
}

// Repair salvages the store in dir, which must not be open. Pebble has no
// repair: unlike LevelDB's RepairDB it cannot rebuild a lost or damaged
// MANIFEST from the tables. What this does instead:
//
//   - Pebble already treats a torn tail of the write-ahead log (the usual
//     damage of a power cut) as its end, so a store damaged only there
//     opens normally and Repair finds nothing to do.
//   - Otherwise it opens the store read-only and copies every record it
//     can read, in key order, into a new store. Where a read fails (a
//     damaged table), it skips past the table it was reading and records
//     the skipped key range in Report.Lost: the whole range, from every
//     level, so that an older version of a record is never resurrected in
//     place of a newer one that was lost.
//   - It recomputes what is derived (each queue's count, bytes and bounds,
//     each session's send order, the counters) from the records it kept,
//     moves the damaged directory aside (Report.Damaged) and puts the new
//     store in its place.
//   - If the store cannot be opened even read-only (MANIFEST or CURRENT
//     damaged), it changes nothing and says so: restore from a backup.
func Repair(dir string, o store.Options) (Report, error) {
	o = o.Defaults()
	var r Report
	// Read-only, so that nothing is written to a damaged store.
	eo := engineOptions(o.Logger)
	eo.ReadOnly = true
	old, err := pdb.Open(dir, eo)
	if err != nil {
		return r, fmt.Errorf("store: %s cannot be opened even read-only: %w; its MANIFEST or CURRENT is damaged, which pebble cannot rebuild: restore the directory from a backup", dir, err)
	}
	tmp := dir + ".repair"
	err = salvageInto(old, dir, tmp, &r)
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil || r.Copied == 0 && r.Lost == nil {
		return r, err
	}
	r.Damaged = fmt.Sprintf("%s.damaged-%d", dir, time.Now().Unix())
	if err := os.Rename(dir, r.Damaged); err != nil {
		return r, err
	}
	return r, os.Rename(tmp, dir)
}

// salvageInto checks old, the store in dir, and if it is damaged copies
// what it can read into a new store in tmp.
func salvageInto(old *pdb.DB, dir, tmp string, r *Report) error {
	v, c, err := old.Get([]byte{kindVersion})
	if err == nil {
		v = bytes.Clone(v)
		_ = c.Close()
	}
	if string(v) != layout {
		return fmt.Errorf("store: %s has no readable layout record (%v), so it is not repaired as a Coolpy7 store", dir, err)
	}
	if verify(old) == nil {
		return nil
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	fresh, err := pdb.Open(tmp, engineOptions(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fmt.Errorf("store: repair of %s: %w", dir, err)
	}
	err = salvage(old, fresh, r)
	if err == nil {
		err = rebuild(old, fresh)
	}
	if cerr := fresh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: repair of %s: %w", dir, err)
	}
	return nil
}

// verify reads every record, so that Repair can tell a healthy store.
func verify(db *pdb.DB) error {
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if _, err := it.ValueAndErr(); err != nil {
			break
		}
	}
	return it.Close()
}

// salvage copies what old can read into fresh.
func salvage(old, fresh *pdb.DB, r *Report) error {
	var lo, last []byte
	b := fresh.NewBatch()
	for {
		it, err := old.NewIter(&pdb.IterOptions{LowerBound: lo})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				break
			}
			if err := b.Set(it.Key(), v, nil); err != nil {
				return err
			}
			last = append(last[:0], it.Key()...)
			r.Copied++
			if b.Len() > 4<<20 {
				if err := b.Commit(pdb.NoSync); err != nil {
					return err
				}
				b = fresh.NewBatch()
			}
		}
		readErr := it.Close()
		if readErr == nil {
			break
		}
		from := lo
		if last != nil {
			from = append(bytes.Clone(last), 0)
		}
		next, err := skipPast(old, from)
		if err != nil {
			return err
		}
		r.Lost = append(r.Lost, fmt.Sprintf("[%q, %q): %v", from, next, readErr))
		if next == nil {
			break
		}
		lo = next
	}
	return b.Commit(pdb.Sync)
}

// skipPast returns the first key after the table that a read from key was
// in: of the tables at key or after it on every level, the one that ends
// first. nil means there is nothing after.
func skipPast(db *pdb.DB, key []byte) ([]byte, error) {
	levels, err := db.SSTables()
	if err != nil {
		return nil, err
	}
	var next []byte
	for _, level := range levels {
		for _, t := range level {
			if bytes.Compare(t.Largest.UserKey, key) < 0 {
				continue
			}
			if next == nil || bytes.Compare(t.Largest.UserKey, next) < 0 {
				next = t.Largest.UserKey
			}
		}
	}
	if next == nil {
		return nil, nil
	}
	return append(bytes.Clone(next), 0), nil
}

// rebuild recomputes fresh's derived records from the records it holds:
// queue metas, send-order counters and the counters.
func rebuild(old, fresh *pdb.DB) error {
	var total delta
	if v, c, err := old.Get([]byte{kindCounters}); err == nil {
		_ = total.decode(v) // a lost drop count is not worth failing for
		_ = c.Close()
		total.queued, total.bytes = 0, 0
	}
	b := fresh.NewBatch()
	var pre []byte
	var meta queueMeta
	var ord uint64
	flush := func() {
		switch {
		case pre == nil:
		case pre[0] == kindQueue:
			if meta.count == 0 {
				meta.head = meta.last + 1
			}
			if meta.epoch == 0 {
				meta.epoch = uint64(time.Now().UnixNano())
			}
			_ = b.Set(pre, meta.append(nil), nil)
			total.queued += int64(meta.count)
			total.bytes += int64(meta.bytes)
		case pre[0] == kindOutbound:
			_ = b.Set(pre, binary.AppendUvarint(nil, ord), nil)
		}
		pre, meta, ord = nil, queueMeta{}, 0
	}
	for _, kind := range []byte{kindOutbound, kindQueue} {
		it, err := fresh.NewIter(&pdb.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			p, rest, valid := parsePrefix(it.Key())
			if !valid {
				continue
			}
			if !bytes.Equal(p, pre) {
				flush()
				pre = bytes.Clone(p)
			}
			v := it.Value()
			switch {
			case kind == kindQueue && len(rest) == 0:
				if m, err := decodeQueueMeta(v); err == nil {
					meta.last, meta.epoch = m.last, m.epoch
				}
			case kind == kindQueue && len(rest) == 8:
				seq := binary.BigEndian.Uint64(rest)
				_, size, msg, err := queuedHeader(v)
				if err != nil {
					continue
				}
				if meta.count == 0 {
					meta.head = seq
				}
				meta.count++
				meta.bytes += size
				meta.last = max(meta.last, seq)
				if exp, err := expiresOf(msg); err == nil {
					if e := expSeconds(exp); e != 0 && (meta.minExp == 0 || e < meta.minExp) {
						meta.minExp = e
					}
				}
			case kind == kindOutbound && len(rest) == 2:
				r := reader{b: v}
				ord = max(ord, r.uvarint())
			}
		}
		flush()
		if err := it.Close(); err != nil {
			return err
		}
	}
	_ = b.Set([]byte{kindCounters}, total.encode(), nil)
	_ = b.Set([]byte{kindVersion}, []byte(layout), nil)
	return b.Commit(pdb.Sync)
}
