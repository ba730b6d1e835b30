// Package rule holds the expiry rules every store applies alike, so that the
// conformance suite can hold the implementations to one behaviour.
//
// Store times ("at") are Unix seconds, which is all a TTL in whole seconds
// needs and what the disk store writes. A TTL runs out only once a whole
// TTL has certainly passed: at most a second late, never early.
package rule

import (
	"time"

	"github.com/coolpy7/coolpy7/store"
)

func ttlPassed(at int64, ttl uint32, now time.Time) bool {
	return ttl > 0 && now.Unix() > at+int64(ttl)
}

// Queued reports whether m, queued at at, has expired.
func Queued(t store.TTL, m *store.Message, at int64, now time.Time) bool {
	return ttlPassed(at, t.Messages, now) || m.Expired(now)
}

// SessionEnd is when rec's session ends: zero while its client is connected
// or when it never expires.
func SessionEnd(t store.TTL, rec *store.SessionRecord) time.Time {
	if rec.Disconnected.IsZero() {
		return time.Time{}
	}
	e := rec.Expiry
	if t.Sessions > 0 && t.Sessions < e {
		e = t.Sessions
	}
	if e == store.NeverExpire {
		return time.Time{}
	}
	return rec.Disconnected.Add(time.Duration(e) * time.Second)
}

// Session reports whether rec's session has ended.
func Session(t store.TTL, rec *store.SessionRecord, now time.Time) bool {
	end := SessionEnd(t, rec)
	return !end.IsZero() && !now.Before(end)
}

// Retained reports whether m, retained at at, has expired.
func Retained(t store.TTL, m *store.Message, at int64, now time.Time) bool {
	return ttlPassed(at, t.Retained, now) || m.Expired(now)
}

// Will reports whether a will due at fireAt is too late to publish.
func Will(t store.TTL, m *store.Message, fireAt time.Time, now time.Time) bool {
	return ttlPassed(fireAt.Unix(), t.Wills, now) || m.Expired(now)
}

// Mark reports whether an inbound QoS 2 packet ID recorded at at expired.
func Mark(t store.TTL, at int64, now time.Time) bool {
	return ttlPassed(at, t.PacketIDs, now)
}
