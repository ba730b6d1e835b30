package pebble

import (
	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/coolpy7/coolpy7/store"
)

// kindBan keys the ban list: b|key → until (varint Unix ns, 0 for never),
// reason (uvarint length, bytes). Bans are few and not part of any session,
// so the sweeper leaves them alone and Range skips the lapsed ones.
const kindBan = 'b'

type bans Store

// Bans implements store.BanStore.
func (s *Store) Bans() store.Bans { return (*bans)(s) }

func (bs *bans) Put(key string, b store.Ban) error {
	s := (*Store)(bs)
	v := appendBytes(appendTime(nil, b.Until), []byte(b.Reason))
	return s.write(key, func(batch *pdb.Batch, _ *delta) error {
		return batch.Set(simpleKey(kindBan, key), v, nil)
	})
}

func (bs *bans) Delete(key string) error {
	s := (*Store)(bs)
	return s.write(key, func(batch *pdb.Batch, _ *delta) error {
		return batch.Delete(simpleKey(kindBan, key), nil)
	})
}

func (bs *bans) Range(fn func(key string, b store.Ban) bool) error {
	s := (*Store)(bs)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	now := s.o.Clock()
	return s.iterate(s.db, []byte{kindBan}, []byte{kindBan + 1}, func(k, v []byte) (bool, error) {
		r := reader{b: v}
		until := r.time()
		reason := r.bytes()
		if r.err != nil {
			return false, r.err
		}
		if !until.IsZero() && !now.Before(until) {
			return true, nil
		}
		return fn(string(k[1:]), store.Ban{Until: until, Reason: string(reason)}), nil
	})
}
