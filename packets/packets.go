// Package packets is the MQTT 3.1, 3.1.1 and 5.0 wire codec.
//
// Decoding never allocates on the hot path: a decoded Packet holds slices into
// the caller's buffer, and its slice fields (Filters, ReasonCodes, User
// properties, SubscriptionIDs) are reused across Reset calls. A caller that
// keeps any part of a Packet beyond the buffer's life must copy it.
package packets

// Protocol levels as they appear in CONNECT.
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   byte = 5 // MQTT 5.0, protocol name "MQTT"
)

// Type is the MQTT control packet type (the high nibble of the first byte).
type Type byte

const (
	Reserved Type = iota
	Connect
	Connack
	Publish
	Puback
	Pubrec
	Pubrel
	Pubcomp
	Subscribe
	Suback
	Unsubscribe
	Unsuback
	Pingreq
	Pingresp
	Disconnect
	Auth
)

// MaxRemainingLength is the largest value a 4-byte variable byte integer holds.
const MaxRemainingLength = 268435455

// FixedHeader is the first 2 to 5 bytes of every packet.
type FixedHeader struct {
	Type      Type
	Flags     byte // low nibble of the first byte
	Remaining int  // remaining length
}

// Subscription is one topic filter of a SUBSCRIBE (or UNSUBSCRIBE, where only
// Filter is set) with its options.
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0, 1 or 2
}

// UserProperty is one v5 user property pair.
type UserProperty struct {
	Key, Value []byte
}

// Property identifiers (MQTT 5.0 §2.2.2.2).
const (
	PropPayloadFormat        byte = 0x01
	PropMessageExpiry        byte = 0x02
	PropContentType          byte = 0x03
	PropResponseTopic        byte = 0x08
	PropCorrelationData      byte = 0x09
	PropSubscriptionID       byte = 0x0B
	PropSessionExpiry        byte = 0x11
	PropAssignedClientID     byte = 0x12
	PropServerKeepAlive      byte = 0x13
	PropAuthMethod           byte = 0x15
	PropAuthData             byte = 0x16
	PropRequestProblemInfo   byte = 0x17
	PropWillDelay            byte = 0x18
	PropRequestResponseInfo  byte = 0x19
	PropResponseInfo         byte = 0x1A
	PropServerReference      byte = 0x1C
	PropReasonString         byte = 0x1F
	PropReceiveMaximum       byte = 0x21
	PropTopicAliasMaximum    byte = 0x22
	PropTopicAlias           byte = 0x23
	PropMaximumQoS           byte = 0x24
	PropRetainAvailable      byte = 0x25
	PropUser                 byte = 0x26
	PropMaximumPacketSize    byte = 0x27
	PropWildcardSubAvailable byte = 0x28
	PropSubIDAvailable       byte = 0x29
	PropSharedSubAvailable   byte = 0x2A
)

// Properties holds every v5 property. Present records which were present on
// the wire (decode) or are to be written (encode), as a bit per property ID,
// so that a zero value is distinguishable from an absent one. For the two
// repeatable properties, User and SubscriptionIDs, the bit covers the whole
// slice.
type Properties struct {
	Present uint64 // bit (1 << id) set for each property present

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          []byte
	ResponseTopic        []byte
	CorrelationData      []byte
	SubscriptionIDs      []uint32 // PUBLISH may carry several; SUBSCRIBE at most one
	SessionExpiry        uint32
	AssignedClientID     []byte
	ServerKeepAlive      uint16
	AuthMethod           []byte
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         []byte
	ServerReference      []byte
	ReasonString         []byte
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id byte) bool { return p.Present&(1<<id) != 0 }

// Set marks property id as present; the caller sets the field itself.
func (p *Properties) Set(id byte) { p.Present |= 1 << id }

// Reset empties p and keeps the capacity of its slices.
func (p *Properties) Reset() {
	sub, user := p.SubscriptionIDs[:0], p.User[:0]
	*p = Properties{SubscriptionIDs: sub, User: user}
}

// ConnectFields are the variable header and payload of CONNECT.
type ConnectFields struct {
	// ProtocolName and Level are what Decode read; Encode writes those of
	// the version it is given instead.
	ProtocolName []byte
	Level        byte // V31, V311 or V5
	CleanStart   bool // Clean Session in 3.1.1
	KeepAlive    uint16
	ClientID     []byte
	WillFlag     bool
	WillQoS      byte
	WillRetain   bool
	WillTopic    []byte
	WillPayload  []byte
	WillProps    Properties // v5 will properties
	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

// Packet is any MQTT control packet. One struct serves every type so that a
// connection's decoder can reuse a single value; which fields mean anything
// depends on Type.
type Packet struct {
	Type Type

	// PUBLISH fixed-header flags.
	Dup    bool
	QoS    byte
	Retain bool

	PacketID   uint16
	ReasonCode byte // CONNACK return/reason code, PUBACK..PUBCOMP, DISCONNECT, AUTH

	SessionPresent bool // CONNACK

	Topic   []byte // PUBLISH
	Payload []byte // PUBLISH

	Connect ConnectFields // CONNECT

	Filters     []Subscription // SUBSCRIBE, UNSUBSCRIBE
	ReasonCodes []byte         // SUBACK, UNSUBACK (v5), SUBACK return codes (v3)

	Props Properties // v5 properties of the packet
}

// Reset empties p for reuse, keeping the capacity of its slices.
func (p *Packet) Reset() {
	// Clearing in place and restoring the six slices is a single memclr;
	// copying the two 300-byte Properties out and back in cost more than
	// the rest of decoding a small packet.
	filters, codes := p.Filters[:0], p.ReasonCodes[:0]
	sub, user := p.Props.SubscriptionIDs[:0], p.Props.User[:0]
	willSub, willUser := p.Connect.WillProps.SubscriptionIDs[:0], p.Connect.WillProps.User[:0]
	*p = Packet{}
	p.Filters, p.ReasonCodes = filters, codes
	p.Props.SubscriptionIDs, p.Props.User = sub, user
	p.Connect.WillProps.SubscriptionIDs, p.Connect.WillProps.User = willSub, willUser
}
