package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coolpy7/coolpy7/packets"
)

// Client roles; the letter also goes into the client ID.
const (
	roleConn byte = 'c' // connects and idles
	roleSub  byte = 's'
	rolePub  byte = 'p'
)

// Client states. A client moves forward only; stReady and everything before
// it are "live", and the first transition out of a pre-ready state resolves
// the client in its connect phase exactly once.
const (
	stIdle uint32 = iota
	stDialing
	stConnecting  // CONNECT written, waiting for CONNACK
	stSubscribing // SUBSCRIBE written, waiting for SUBACK
	stReady
	stFailed // gave up or lost; counted in the failures
	stClosed // closed by us at the end of the run
)

// wire is a client's byte stream to the broker: an nbio connection on the
// epoll engine for plain TCP, or a blocking TLS or WebSocket connection
// with a reader goroutine. Write must not keep b.
type wire interface {
	Write(b []byte) (int, error)
	Close() error
}

// client is one MQTT connection. It is kept small because a run holds tens
// of thousands: the read buffer is shared by an event loop, rbuf exists only
// while a packet is split across reads and wbuf only once the client writes
// more than its CONNECT.
type client struct {
	w     *Worker
	peer  *client // p2p: the other end of the pair
	role  byte
	idx   int // 1-based within the role, for %i and client IDs
	num   int // across all roles, for the source address
	state atomic.Uint32
	// dialAt is when the dial started (unix ns), for connect latency and the
	// connect timeout.
	dialAt atomic.Int64
	shard  *shard
	phase  *connectPhase

	mu      sync.Mutex // serializes writes; guards the fields below
	conn    wire
	wbuf    []byte
	nextID  uint16
	topic   []byte // publishers only
	payload []byte // publishers only; starts with the send timestamp
	// sentTotal counts this publisher's messages, for the p2p end-to-end
	// window against its peer's recvTotal.
	sentTotal int64
	recvTotal atomic.Int64
	inflight  atomic.Int32
	// pending is what nbio holds unwritten for this connection; a flat-out
	// QoS 0 publisher waits while it is high instead of queueing without
	// bound.
	pending atomic.Int64

	rbuf []byte // owned by the goroutine delivering reads
}

// writeLocked sends c.wbuf and empties it; c.mu must be held.
func (c *client) writeLocked() error {
	if len(c.wbuf) == 0 || c.conn == nil {
		return nil
	}
	if c.w.evented {
		c.pending.Add(int64(len(c.wbuf)))
	}
	_, err := c.conn.Write(c.wbuf)
	// A batch of publishes can grow the buffer a lot; an idle connection
	// should not keep that around.
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

// send encodes p and writes it at once.
func (c *client) send(p *packets.Packet) error {
	c.mu.Lock()
	c.wbuf = packets.Encode(c.wbuf, p, c.w.version)
	err := c.writeLocked()
	c.mu.Unlock()
	return err
}

// publish sends up to k PUBLISH packets in one write, fewer when the QoS
// 1/2 window fills, and reports how many went out. All of a batch carry
// the same timestamp: they leave in the same write.
func (c *client) publish(k int) int {
	if k <= 0 || c.state.Load() != stReady {
		return 0
	}
	c.mu.Lock()
	n := c.appendPublishes(k)
	err := c.writeLocked()
	c.mu.Unlock()
	c.countSent(n)
	if err != nil {
		c.onClose(err)
	}
	return n
}

// appendPublishes encodes up to k publishes into c.wbuf; c.mu must be held.
func (c *client) appendPublishes(k int) int {
	w := c.w
	var p packets.Packet
	p.Type = packets.Publish
	p.QoS = w.opts.QoS
	p.Retain = w.opts.Retain
	p.Topic = c.topic
	binary.LittleEndian.PutUint64(c.payload, uint64(time.Now().UnixNano()))
	p.Payload = c.payload
	n := 0
	for ; n < k; n++ {
		if p.QoS > 0 {
			if int(c.inflight.Load()) >= w.opts.Inflight {
				break
			}
			c.inflight.Add(1)
			c.nextID++
			if c.nextID == 0 {
				c.nextID = 1
			}
			p.PacketID = c.nextID
		}
		c.wbuf = packets.Encode(c.wbuf, &p, w.version)
	}
	c.sentTotal += int64(n)
	return n
}

// topUp refills a p2p publisher's end-to-end window: messages sent and not
// yet received by its peer stay within --inflight. It waits until an
// eighth of the window is free so that writes carry several messages.
func (c *client) topUp() {
	w := c.w
	if !w.refill.Load() || c.state.Load() != stReady {
		return
	}
	c.mu.Lock()
	room := w.opts.Inflight - int(c.sentTotal-c.peer.recvTotal.Load())
	if room < max(1, w.opts.Inflight/8) {
		c.mu.Unlock()
		return
	}
	n := c.appendPublishes(room)
	err := c.writeLocked()
	c.mu.Unlock()
	c.countSent(n)
	if err != nil {
		c.onClose(err)
	}
}

func (c *client) countSent(n int) {
	if n > 0 {
		c.shard.sent.Add(int64(n))
		c.shard.sentBytes.Add(int64(n * c.w.opts.Size))
	}
}

// onData frames and handles what the broker sent. Reads of one connection
// never overlap: nbio delivers them on the connection's event loop, the
// stream wires on their reader goroutine.
func (c *client) onData(data []byte) {
	// Loading the state orders this goroutine after the dialer's setup of
	// the client, which the race detector cannot see through epoll.
	if st := c.state.Load(); st == stFailed || st == stClosed {
		return
	}
	w := c.w
	if len(c.rbuf) > 0 {
		c.rbuf = append(c.rbuf, data...)
		data = c.rbuf
	}
	var (
		p       packets.Packet
		now     int64 // read once per batch: every packet in it arrived together
		recv    int64
		strays  int64
		bytes   int64
		acked   int
		locked  bool // c.mu is held because replies are being batched in wbuf
		failure string
	)
	reply := func(t packets.Type, id uint16) {
		if !locked {
			c.mu.Lock()
			locked = true
		}
		var r packets.Packet
		r.Type, r.PacketID = t, id
		c.wbuf = packets.Encode(c.wbuf, &r, w.version)
	}
	for len(data) > 0 && failure == "" {
		fh, n, err := packets.ReadFixedHeader(data)
		if err == packets.ErrIncomplete {
			break
		}
		if err != nil {
			failure = "malformed packet from broker: " + err.Error()
			break
		}
		if len(data) < n+fh.Remaining {
			break
		}
		body := data[n : n+fh.Remaining]
		data = data[n+fh.Remaining:]
		if err := packets.Decode(&p, fh, body, w.version); err != nil {
			failure = "malformed packet from broker: " + err.Error()
			break
		}
		switch p.Type {
		case packets.Publish:
			switch {
			case w.tagged && len(p.Payload) >= 16 && binary.LittleEndian.Uint64(p.Payload[8:]) != w.opts.RunTag:
				strays++
			case len(p.Payload) >= 8:
				if now == 0 {
					now = time.Now().UnixNano()
				}
				c.shard.lat.Record(now - int64(binary.LittleEndian.Uint64(p.Payload)))
				fallthrough
			default:
				recv++
				bytes += int64(len(p.Payload))
			}
			switch p.QoS {
			case 1:
				reply(packets.Puback, p.PacketID)
			case 2:
				reply(packets.Pubrec, p.PacketID)
			}
		case packets.Pubrel:
			reply(packets.Pubcomp, p.PacketID)
		case packets.Puback, packets.Pubcomp:
			acked++
		case packets.Pubrec:
			reply(packets.Pubrel, p.PacketID)
		case packets.Connack:
			failure = c.onConnack(&p)
		case packets.Suback:
			failure = c.onSuback(&p)
		case packets.Disconnect:
			failure = fmt.Sprintf("DISCONNECT from broker: %s", reasonName(p.ReasonCode))
		}
	}
	if acked > 0 {
		c.inflight.Add(-int32(acked))
		c.shard.acked.Add(int64(acked))
	}
	// A flat-out QoS 1/2 publisher refills its window as acks come back,
	// in the same write as any replies.
	sent := 0
	if acked > 0 && c.role == rolePub && !w.closedLoop && w.refill.Load() && failure == "" {
		if !locked {
			c.mu.Lock()
			locked = true
		}
		sent = c.appendPublishes(acked)
	}
	var werr error
	if locked {
		werr = c.writeLocked()
		c.mu.Unlock()
	}
	c.countSent(sent)
	if recv > 0 {
		if now == 0 {
			now = time.Now().UnixNano()
		}
		c.shard.recv.Add(recv)
		c.shard.recvBytes.Add(bytes)
		storeMax(&c.shard.lastRecv, now)
	}
	if strays > 0 {
		c.shard.strays.Add(strays)
	}
	if w.closedLoop && failure == "" {
		switch {
		case recv > 0 && c.peer != nil:
			c.recvTotal.Add(recv)
			c.peer.topUp()
		case acked > 0:
			c.topUp()
		}
	}
	if len(data) > 0 && failure == "" {
		c.rbuf = append(c.rbuf[:0], data...)
	} else if cap(c.rbuf) > 4<<10 {
		c.rbuf = nil
	} else {
		c.rbuf = c.rbuf[:0]
	}
	switch {
	case failure != "":
		c.drop(failure)
	case werr != nil:
		c.onClose(werr)
	}
}

// onConnack handles CONNACK, returning a failure reason or "".
func (c *client) onConnack(p *packets.Packet) string {
	if c.state.Load() != stConnecting {
		return "unexpected CONNACK"
	}
	if p.ReasonCode != 0 {
		return "CONNACK refused: " + connackName(c.w.version, p.ReasonCode)
	}
	now := time.Now().UnixNano()
	c.shard.connected.Add(1)
	c.shard.connLat.Record(now - c.dialAt.Load())
	storeMax(&c.shard.lastConnack, now)
	if c.role != roleSub {
		c.becomeReady(stConnecting)
		return ""
	}
	id := c.w.opts.clientID(c.role, c.idx)
	var s packets.Packet
	s.Type = packets.Subscribe
	s.PacketID = 1
	s.Filters = []packets.Subscription{{Filter: []byte(c.w.opts.subFilter(c.idx, id)), QoS: c.w.opts.QoS}}
	if !c.state.CompareAndSwap(stConnecting, stSubscribing) {
		return ""
	}
	c.mu.Lock()
	c.wbuf = packets.Encode(c.wbuf, &s, c.w.version)
	err := c.writeLocked()
	c.mu.Unlock()
	if err != nil {
		return "SUBSCRIBE: " + errReason(err)
	}
	return ""
}

// onSuback handles SUBACK, returning a failure reason or "".
func (c *client) onSuback(p *packets.Packet) string {
	if c.state.Load() != stSubscribing {
		return "unexpected SUBACK"
	}
	for _, rc := range p.ReasonCodes {
		if rc >= 0x80 {
			return fmt.Sprintf("SUBACK refused: %s", reasonName(rc))
		}
	}
	c.shard.subscribed.Add(1)
	c.becomeReady(stSubscribing)
	return ""
}

// becomeReady moves a client that finished connecting (and subscribing) to
// ready and resolves it in its connect phase.
func (c *client) becomeReady(from uint32) {
	if c.state.CompareAndSwap(from, stReady) {
		c.phase.resolve()
	}
}

// onClose handles the connection ending underneath us.
func (c *client) onClose(err error) {
	reason := "connection closed"
	if err != nil {
		reason = "connection lost: " + errReason(err)
	}
	c.drop(reason)
}

// drop ends a client that failed or was lost: it counts once under reason
// and closes the connection. A client the run is closing is left alone.
func (c *client) drop(reason string) {
	for {
		st := c.state.Load()
		if st == stFailed || st == stClosed || st == stIdle {
			return
		}
		if !c.state.CompareAndSwap(st, stFailed) {
			continue
		}
		// The reason is in before the counts and the phase move on, so
		// whoever sees the counts sees it too.
		c.w.fail(reason)
		if st == stReady {
			c.shard.dropped.Add(1)
		} else {
			c.shard.connFailed.Add(1)
			c.phase.resolve()
		}
		break
	}
	c.closeConn()
}

// closeConn closes the connection if there is one yet.
func (c *client) closeConn() {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// errReason reduces an error to a short reason without addresses and
// ports, so that failures group by cause.
func errReason(err error) string {
	var errno syscall.Errno
	var nerr net.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	}
	return err.Error()
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for m := a.Load(); v > m; m = a.Load() {
		if a.CompareAndSwap(m, v) {
			return
		}
	}
}

// connackName names a CONNACK code in the protocol's own terms: v3 return
// codes and v5 reason codes share numbers with different meanings.
func connackName(version, code byte) string {
	if version < packets.V5 {
		switch code {
		case packets.V3UnacceptableProtocol:
			return "unacceptable protocol version (1)"
		case packets.V3IdentifierRejected:
			return "identifier rejected (2)"
		case packets.V3ServerUnavailable:
			return "server unavailable (3)"
		case packets.V3BadUsernameOrPassword:
			return "bad user name or password (4)"
		case packets.V3NotAuthorized:
			return "not authorized (5)"
		}
		return fmt.Sprintf("return code %d", code)
	}
	return reasonName(code)
}

// reasonNames are the v5 reason codes a benchmark is likely to meet.
var reasonNames = map[byte]string{
	packets.UnspecifiedError:            "unspecified error",
	packets.MalformedPacket:             "malformed packet",
	packets.ProtocolError:               "protocol error",
	packets.ImplementationSpecificError: "implementation specific error",
	packets.UnsupportedProtocolVersion:  "unsupported protocol version",
	packets.ClientIdentifierNotValid:    "client identifier not valid",
	packets.BadUsernameOrPassword:       "bad user name or password",
	packets.NotAuthorized:               "not authorized",
	packets.ServerUnavailable:           "server unavailable",
	packets.ServerBusy:                  "server busy",
	packets.Banned:                      "banned",
	packets.ServerShuttingDown:          "server shutting down",
	packets.KeepAliveTimeout:            "keep alive timeout",
	packets.SessionTakenOver:            "session taken over",
	packets.TopicFilterInvalid:          "topic filter invalid",
	packets.QuotaExceeded:               "quota exceeded",
	packets.ConnectionRateExceeded:      "connection rate exceeded",
	packets.ReceiveMaximumExceeded:      "receive maximum exceeded",
	packets.PacketTooLarge:              "packet too large",
	packets.MessageRateTooHigh:          "message rate too high",
	packets.QoSNotSupported:             "QoS not supported",
}

// reasonName names a v5 reason code.
func reasonName(code byte) string {
	if n, ok := reasonNames[code]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, code)
	}
	return fmt.Sprintf("0x%02X", code)
}
