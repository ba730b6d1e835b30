package broker

import (
	"time"

	"github.com/coolpy7/coolpy7/packets"
)

// Message is an application message once it has to outlive the read buffer
// it arrived in: queued, in flight at QoS 1/2, or retained. It is immutable
// after creation and shared by every session that holds it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Props are the v5 properties forwarded to subscribers (payload format,
	// content type, response topic, correlation data, user properties); nil
	// when there are none, which is every v3 message.
	Props *packets.Properties
	// Expires is when a v5 message expiry runs out, zero for never.
	Expires time.Time
	// From is the publishing session, for No Local; nil for will and $SYS.
	From *session
}

// expired reports whether m's v5 message expiry has passed at now.
func (m *Message) expired(now time.Time) bool {
	return !m.Expires.IsZero() && !now.Before(m.Expires)
}

// forwarded are the properties a server passes from PUBLISH to subscribers.
const forwarded = 1<<packets.PropPayloadFormat | 1<<packets.PropContentType |
	1<<packets.PropResponseTopic | 1<<packets.PropCorrelationData | 1<<packets.PropUser

// forwardedProps copies the properties a server forwards to subscribers
// unchanged (MQTT 5.0 §3.3.2.3); topic alias and subscription identifiers
// are per connection and set at delivery instead. It returns nil when none
// are present, so v3 and plain v5 messages carry no properties at all.
func forwardedProps(in *packets.Properties) *packets.Properties {
	if in.Present&forwarded == 0 {
		return nil
	}
	p := &packets.Properties{Present: in.Present & forwarded, PayloadFormat: in.PayloadFormat}
	p.ContentType = clone(in.ContentType)
	p.ResponseTopic = clone(in.ResponseTopic)
	p.CorrelationData = clone(in.CorrelationData)
	if len(in.User) > 0 {
		p.User = make([]packets.UserProperty, len(in.User))
		for i, u := range in.User {
			p.User[i] = packets.UserProperty{Key: clone(u.Key), Value: clone(u.Value)}
		}
	}
	return p
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
