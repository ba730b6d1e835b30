package limit

import "time"

// Interval is a minimum spacing between a connection's events of one kind,
// with room for a burst: the generic cell rate algorithm, whose whole
// state is one int64 per connection. The zero Interval allows everything.
type Interval struct {
	min   int64 // ns between events in the long run
	slack int64 // how far ahead of schedule a burst may run
}

// Every allows one event per d in the long run and burst events back to
// back (burst 1 or less: never two closer than d).
func Every(d time.Duration, burst int) Interval {
	return Interval{min: int64(d), slack: int64(max(burst, 1)-1) * int64(d)}
}

// allow counts an event at now against the schedule in *tat (the
// theoretical arrival time of the next event); an event that breaks the
// interval is not counted.
func (iv Interval) allow(tat *int64, now int64) bool {
	if iv.min <= 0 {
		return true
	}
	t := max(*tat, now)
	if t-now > iv.slack {
		return false
	}
	*tat = t + iv.min
	return true
}

// Flood is the original Coolpy7's flood rules: -pl, the minimum interval
// between a client's PINGREQs, and -psl, between its PUBLISHes.
type Flood struct {
	MinPing    Interval
	MinPublish Interval
}

// FloodState is what Flood keeps per connection: 16 bytes the broker
// embeds in its client. Its zero value is a connection that has sent
// nothing yet.
type FloodState struct {
	ping, pub int64
}

// Violation is a broken flood rule; NoViolation is none. The broker
// closes the connection, after a v5 DISCONNECT with reason
// packets.MessageRateTooHigh.
type Violation uint8

const (
	NoViolation Violation = iota
	PingFlood
	PublishFlood
)

// Ping counts a PINGREQ at now, a monotonic time in nanoseconds, not
// negative, from any fixed origin (the broker's clock, not time.Now per
// packet).
func (f *Flood) Ping(s *FloodState, now int64) Violation {
	if f.MinPing.allow(&s.ping, now) {
		return NoViolation
	}
	return PingFlood
}

// Publish counts a PUBLISH at now, as Ping does.
func (f *Flood) Publish(s *FloodState, now int64) Violation {
	if f.MinPublish.allow(&s.pub, now) {
		return NoViolation
	}
	return PublishFlood
}
