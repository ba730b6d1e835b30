package broker

import (
	"sync"

	"github.com/coolpy7/coolpy7/transport"
)

// A pass is one read of a connection being handled (Server.Data). The
// PUBLISH packets it delivers are staged in the subscribers' connections,
// and the publisher's PUBACK, PUBREC and PUBCOMP in its own, and each
// connection is flushed once when the read is done: a subscriber that gets
// several messages from one read, or a publisher that sent several, costs
// one write(2), not one each. Writes from anywhere else (the store's committer, timers,
// hook workers, another loop's pass) stay direct; the transport puts them
// behind staged bytes, so the wire keeps the order of the calls.
type pass struct {
	staged []stagedConn
}

type stagedConn struct {
	c *client
	b transport.Batcher
}

var passPool = sync.Pool{New: func() any { return new(pass) }}

// send writes one whole packet, staging it when a pass is under way and the
// connection can stage (plain TCP).
func (c *client) send(ps *pass, b []byte) {
	bt, ok := c.conn.(transport.Batcher)
	if ps == nil || !ok {
		c.write(b)
		return
	}
	n := int64(len(b))
	// Staged bytes are pending like any the kernel has not taken, so the
	// slow-consumer budget counts them.
	c.pending.Add(n)
	c.srv.stats.bytesOut.Add(n)
	first, err := bt.WriteLater(b)
	if err != nil {
		c.pending.Add(-n)
		return
	}
	if first {
		ps.staged = append(ps.staged, stagedConn{c, bt})
	}
	if c.pending.Load() > int64(c.srv.cfg.MaxWriteBuffer) {
		// Send now, so that the next QoS 0 message is dropped only if the
		// socket refused these bytes, as without staging.
		bt.Flush()
		c.stalling()
	}
}

// flush sends what the pass staged, one write per connection.
func (ps *pass) flush() {
	for i := range ps.staged {
		s := &ps.staged[i]
		s.b.Flush()
		s.c.stalling()
		*s = stagedConn{} // a pooled pass must not keep clients alive
	}
	ps.staged = ps.staged[:0]
}
