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
	check   func(c *client, now int64)
}

func newWheel(s *Server, check func(c *client, now int64)) *wheel {
	return &wheel{buckets: make(map[int64][]*client), srv: s, check: check}
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

// checkSilent closes a connection that sent no CONNECT in time or went
// quiet for longer than its keepalive allows.
func (s *Server) checkSilent(c *client, now int64) {
	if c.has(flagClosing) {
		return
	}
	if !c.has(flagConnected) {
		if c.has(flagConnecting) {
			// The CONNECT came and is being decided (auth.go), which has
			// deadlines of its own.
			s.silent.add(c, now+int64(max(s.cfg.ConnectTimeout, 1))*ticksPerSecond)
			return
		}
		s.stats.connectTimeouts.Add(1)
		c.fail(errConnectTimeout)
		return
	}
	if c.keepAlive == 0 {
		return
	}
	deadline := since(now, c.lastSeen.Load()) + keepAliveTicks(c.keepAlive)
	if deadline > now {
		s.silent.add(c, deadline)
		return
	}
	s.stats.keepaliveTimeouts.Add(1)
	c.fail(errKeepAlive)
}

// checkStalled closes a connection whose socket has taken none of the
// bytes waiting for it for the I/O timeout (-t): a reader that stopped
// reading would otherwise hold its buffers forever.
func (s *Server) checkStalled(c *client, now int64) {
	at := c.stalled.Load()
	if c.has(flagClosing) || at == 0 {
		return
	}
	deadline := since(now, at) + int64(s.cfg.IOTimeout)*ticksPerSecond
	if deadline > now {
		s.stalls.add(c, deadline)
		return
	}
	s.stats.writeTimeouts.Add(1)
	c.fail(errWriteTimeout)
}

// since restores a tick kept to its low 32 bits, which is at most now and
// less than 2^32 ticks (13 years) before it.
func since(now int64, low uint32) int64 { return now - int64(uint32(now)-low) }

// ticksPerSecond is the resolution of the broker's coarse clock.
const ticksPerSecond = 10

// keepAliveTicks is how long a connection may stay silent: one and a half
// keepalives (MQTT 3.1.1 §3.1.2.10), plus a tick for the clock's coarseness.
func keepAliveTicks(ka uint16) int64 { return int64(ka)*ticksPerSecond*3/2 + 1 }
