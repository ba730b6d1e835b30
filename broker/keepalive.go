package broker

import (
	"sync"
)

// wheel closes connections that stay silent: no CONNECT within the connect
// timeout, or nothing within one and a half keepalives. Each connection sits
// in the bucket of the tick (a tenth of a second) it may expire at; a packet only stores the
// coarse clock in the client, and the check at that tick either closes the
// connection or moves it to its new deadline. So the per-packet cost is one
// atomic store and the per-connection cost one slot in a bucket, instead of
// a runtime timer reset per packet.
type wheel struct {
	mu      sync.Mutex
	buckets map[int64][]*client
	srv     *Server
}

func newWheel(s *Server) *wheel {
	return &wheel{buckets: make(map[int64][]*client), srv: s}
}

// add schedules c to be checked at tick at.
func (w *wheel) add(c *client, at int64) {
	w.mu.Lock()
	w.buckets[at] = append(w.buckets[at], c)
	w.mu.Unlock()
}

// tick checks every bucket due at or before now.
func (w *wheel) tick(from, now int64) {
	for t := from; t <= now; t++ {
		w.mu.Lock()
		due := w.buckets[t]
		delete(w.buckets, t)
		w.mu.Unlock()
		for _, c := range due {
			w.check(c, now)
		}
	}
}

func (w *wheel) check(c *client, now int64) {
	if c.closing.Load() {
		return
	}
	if !c.connected.Load() {
		w.srv.stats.connectTimeouts.Add(1)
		c.fail(errConnectTimeout)
		return
	}
	if c.keepAlive == 0 {
		return
	}
	deadline := c.lastSeen.Load() + keepAliveTicks(c.keepAlive)
	if deadline > now {
		w.add(c, deadline)
		return
	}
	w.srv.stats.keepaliveTimeouts.Add(1)
	c.fail(errKeepAlive)
}

// ticksPerSecond is the resolution of the broker's coarse clock.
const ticksPerSecond = 10

// keepAliveTicks is how long a connection may stay silent: one and a half
// keepalives (MQTT 3.1.1 §3.1.2.10), plus a tick for the clock's coarseness.
func keepAliveTicks(ka uint16) int64 { return int64(ka)*ticksPerSecond*3/2 + 1 }
