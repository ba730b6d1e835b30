package broker

import (
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
)

// Message is an application message once it has to outlive the read buffer
// it arrived in: queued, in flight at QoS 1/2, or retained. It is the
// store's message (the form persistence keeps) plus the publishing session,
// and it is immutable after creation, shared by every session that holds it.
type Message struct {
	store.Message
	// From is the publishing session, for No Local; nil for will and $SYS.
	From *session
}

// forwarded are the properties a server passes from PUBLISH to subscribers:
// what the store keeps, less the per-delivery subscription identifiers.
const forwarded = store.Kept &^ (1 << packets.PropSubscriptionID)

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
