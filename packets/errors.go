package packets

// Errors returned by ReadFixedHeader and Decode. Each is a package-level
// *Error, so returning one never allocates: compare with == or errors.Is and
// read the reason code from Code. Where the spec names the failure the code
// follows it; a MUST without a named consequence is a Protocol Error when the
// packet parses (MQTT 5.0 §4.13) and Malformed when it does not.
//
//	ErrIncomplete          0x81  fewer bytes than the fixed header needs; read more
//	ErrVarint              0x81  variable byte integer longer than 4 bytes
//	ErrReservedType        0x81  packet type 0, or 15 (AUTH) before v5
//	ErrFixedHeaderFlags    0x81  wrong reserved flags, or DUP on a QoS 0 PUBLISH
//	ErrPublishQoS          0x81  PUBLISH with QoS 3
//	ErrMalformed           0x81  body length differs from the remaining length;
//	                             reserved CONNACK flag bits set
//	ErrTruncated           0x81  a field runs past the end of the packet, or a
//	                             property past the end of its property block
//	ErrTrailing            0x81  bytes left over after the last field
//	ErrUTF8                0x81  ill-formed UTF-8, a surrogate, or U+0000
//	ErrConnectFlags        0x81  CONNECT reserved bit, will QoS/retain without
//	                             will flag, will QoS 3, v3 password without username
//	ErrPropertyID          0x81  unknown property, or one the packet may not carry
//	ErrSubscribeReserved   0x81  reserved bits set in a subscription options byte
//	ErrProtocol            0x82  authentication data without authentication method
//	ErrDuplicateProperty   0x82  a single-occurrence property repeated
//	ErrPropertyValue       0x82  out-of-range property value
//	ErrPacketID            0x82  packet identifier 0 where one is required
//	ErrNoPayload           0x82  SUBSCRIBE, UNSUBSCRIBE, v5 SUBACK or v5 UNSUBACK
//	                             without a single entry
//	ErrSubscribeOption     0x82  subscription QoS 3 or Retain Handling 3
//	ErrTopicEmpty          0x82  zero-length PUBLISH topic without a topic alias
//	ErrReasonCode          0x82  reason code not defined for the packet type
//	ErrUnsupportedProtocol 0x84  CONNECT protocol name and level not a known pair
//	ErrTopicNameInvalid    0x90  wildcard in a topic name; empty will topic
//	ErrTopicAliasInvalid   0x94  topic alias 0
//	ErrPacketTooLarge      0x95  never returned here; for the broker's size checks
var (
	ErrIncomplete          = &Error{MalformedPacket, "packets: incomplete packet"}
	ErrVarint              = &Error{MalformedPacket, "packets: variable byte integer longer than 4 bytes"}
	ErrReservedType        = &Error{MalformedPacket, "packets: reserved packet type"}
	ErrFixedHeaderFlags    = &Error{MalformedPacket, "packets: invalid fixed header flags"}
	ErrPublishQoS          = &Error{MalformedPacket, "packets: PUBLISH with QoS 3"}
	ErrMalformed           = &Error{MalformedPacket, "packets: malformed packet"}
	ErrTruncated           = &Error{MalformedPacket, "packets: field runs past the end of the packet"}
	ErrTrailing            = &Error{MalformedPacket, "packets: bytes after the last field"}
	ErrUTF8                = &Error{MalformedPacket, "packets: invalid UTF-8 string"}
	ErrConnectFlags        = &Error{MalformedPacket, "packets: invalid CONNECT flags"}
	ErrPropertyID          = &Error{MalformedPacket, "packets: property not allowed in this packet"}
	ErrSubscribeReserved   = &Error{MalformedPacket, "packets: reserved bits set in subscription options"}
	ErrProtocol            = &Error{ProtocolError, "packets: authentication data without authentication method"}
	ErrDuplicateProperty   = &Error{ProtocolError, "packets: duplicate property"}
	ErrPropertyValue       = &Error{ProtocolError, "packets: invalid property value"}
	ErrPacketID            = &Error{ProtocolError, "packets: packet identifier 0"}
	ErrNoPayload           = &Error{ProtocolError, "packets: no topic filters or reason codes"}
	ErrSubscribeOption     = &Error{ProtocolError, "packets: QoS or retain handling 3 in subscription options"}
	ErrTopicEmpty          = &Error{ProtocolError, "packets: empty topic name without topic alias"}
	ErrReasonCode          = &Error{ProtocolError, "packets: reason code not allowed in this packet"}
	ErrUnsupportedProtocol = &Error{UnsupportedProtocolVersion, "packets: unsupported protocol name or level"}
	ErrTopicNameInvalid    = &Error{TopicNameInvalid, "packets: invalid topic name"}
	ErrTopicAliasInvalid   = &Error{TopicAliasInvalid, "packets: topic alias 0"}
	ErrPacketTooLarge      = &Error{PacketTooLarge, "packets: packet too large"}
)
