package packets

// tpacket is one packet of the test table: its exact wire bytes, the version
// it is read and written at, and either the Packet it decodes to or the error
// it must be refused with.
type tpacket struct {
	Name    string
	Version byte
	Bytes   []byte
	Packet  Packet // the decoded packet, for valid entries
	Err     *Error // the decode failure, for invalid entries
	// Encoded is what Encode writes back when Bytes is valid but not the
	// canonical form (a long form the spec lets senders shorten, or a
	// non-minimal length); nil means Bytes itself.
	Encoded []byte
}

func b(s string) []byte { return []byte(s) }

func present(ids ...byte) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

var validPackets = []tpacket{
	// CONNECT
	{
		Name: "connect v311 clean session", Version: V311,
		Bytes: []byte{0x10, 16,
			0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
			0, 4, 'z', 'e', 'n', '3'},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQTT"), Level: V311, CleanStart: true, KeepAlive: 60, ClientID: b("zen3")}},
	},
	{
		Name: "connect v311 clean session with will, username and password", Version: V311,
		Bytes: []byte{0x10, 42,
			0, 4, 'M', 'Q', 'T', 'T', 4, 0xEE, 0, 30, // user, pass, will retain, will QoS 1, will, clean
			0, 3, 'c', 'i', 'd',
			0, 3, 'l', 'w', 't',
			0, 8, 'n', 'o', 't', 'a', 'g', 'a', 'i', 'n',
			0, 4, 'u', 's', 'e', 'r',
			0, 4, 'p', 'a', 's', 's'},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQTT"), Level: V311, CleanStart: true, KeepAlive: 30, ClientID: b("cid"),
			WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: b("lwt"), WillPayload: b("notagain"),
			UsernameFlag: true, Username: b("user"), PasswordFlag: true, Password: b("pass")}},
	},
	{
		Name: "connect v311 empty client id", Version: V311,
		Bytes: []byte{0x10, 12,
			0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0,
			0, 0},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQTT"), Level: V311, CleanStart: true, ClientID: []byte{}}},
	},
	{
		Name: "connect v31 client id over 23 bytes", Version: V31,
		Bytes: append([]byte{0x10, 38,
			0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x00, 0, 10,
			0, 24}, "abcdefghijklmnopqrstuvwx"...),
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQIsdp"), Level: V31, KeepAlive: 10, ClientID: b("abcdefghijklmnopqrstuvwx")}},
	},
	{
		Name: "connect v31 with username and password", Version: V31,
		Bytes: []byte{0x10, 24,
			0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0xC2, 0, 10,
			0, 2, 'i', 'd',
			0, 2, 'u', 'n',
			0, 2, 'p', 'w'},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQIsdp"), Level: V31, CleanStart: true, KeepAlive: 10, ClientID: b("id"),
			UsernameFlag: true, Username: b("un"), PasswordFlag: true, Password: b("pw")}},
	},
	{
		Name: "connect v5 minimal", Version: V5,
		Bytes: []byte{0x10, 17,
			0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60,
			0, // properties
			0, 4, 'z', 'e', 'n', '3'},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQTT"), Level: V5, CleanStart: true, KeepAlive: 60, ClientID: b("zen3")}},
	},
	{
		Name: "connect v5 every property, will properties, username and password", Version: V5,
		Bytes: []byte{0x10, 107,
			0, 4, 'M', 'Q', 'T', 'T', 5, 0xF6, 0, 60, // user, pass, will retain, will QoS 2, will, clean
			37,                 // properties
			0x11, 0, 0, 0, 120, // session expiry
			0x15, 0, 2, 'a', 'm', // auth method
			0x16, 0, 2, 1, 2, // auth data
			0x17, 1, // request problem info
			0x19, 1, // request response info
			0x21, 0, 20, // receive maximum
			0x22, 0, 10, // topic alias maximum
			0x26, 0, 1, 'k', 0, 1, 'v', // user
			0x27, 0, 0, 0x10, 0, // maximum packet size
			0, 3, 'c', 'i', 'd',
			32,      // will properties
			0x01, 1, // payload format
			0x02, 0, 0, 0, 60, // message expiry
			0x03, 0, 1, 't', // content type
			0x08, 0, 1, 'r', // response topic
			0x09, 0, 2, 0x0A, 0x0B, // correlation data
			0x18, 0, 0, 0, 5, // will delay
			0x26, 0, 1, 'a', 0, 1, 'b', // user
			0, 3, 'l', 'w', 't',
			0, 2, 'b', 'y',
			0, 4, 'u', 's', 'e', 'r',
			0, 4, 'p', 'a', 's', 's'},
		Packet: Packet{Type: Connect,
			Connect: ConnectFields{
				ProtocolName: b("MQTT"), Level: V5, CleanStart: true, KeepAlive: 60, ClientID: b("cid"),
				WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: b("lwt"), WillPayload: b("by"),
				WillProps: Properties{
					Present: present(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
						PropCorrelationData, PropWillDelay, PropUser),
					PayloadFormat: 1, MessageExpiry: 60, ContentType: b("t"), ResponseTopic: b("r"),
					CorrelationData: []byte{0x0A, 0x0B}, WillDelay: 5,
					User: []UserProperty{{Key: b("a"), Value: b("b")}}},
				UsernameFlag: true, Username: b("user"), PasswordFlag: true, Password: b("pass")},
			Props: Properties{
				Present: present(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
					PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropUser,
					PropMaximumPacketSize),
				SessionExpiry: 120, AuthMethod: b("am"), AuthData: []byte{1, 2}, RequestProblemInfo: 1,
				RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10,
				User: []UserProperty{{Key: b("k"), Value: b("v")}}, MaximumPacketSize: 4096}},
	},
	{
		Name: "connect v5 password without username", Version: V5,
		Bytes: []byte{0x10, 20,
			0, 4, 'M', 'Q', 'T', 'T', 5, 0x42, 0, 0,
			0,
			0, 3, 'c', 'i', 'd',
			0, 2, 'p', 'w'},
		Packet: Packet{Type: Connect, Connect: ConnectFields{
			ProtocolName: b("MQTT"), Level: V5, CleanStart: true, ClientID: b("cid"),
			PasswordFlag: true, Password: b("pw")}},
	},

	// CONNACK
	{
		Name: "connack v311 accepted with session present", Version: V311,
		Bytes:  []byte{0x20, 2, 0x01, 0x00},
		Packet: Packet{Type: Connack, SessionPresent: true},
	},
	{
		Name: "connack v311 bad username or password", Version: V311,
		Bytes:  []byte{0x20, 2, 0x00, 0x04},
		Packet: Packet{Type: Connack, ReasonCode: V3BadUsernameOrPassword},
	},
	{
		Name: "connack v31 unacceptable protocol", Version: V31,
		Bytes:  []byte{0x20, 2, 0x00, 0x01},
		Packet: Packet{Type: Connack, ReasonCode: V3UnacceptableProtocol},
	},
	{
		Name: "connack v5 not authorized", Version: V5,
		Bytes:  []byte{0x20, 3, 0x00, 0x87, 0},
		Packet: Packet{Type: Connack, ReasonCode: NotAuthorized},
	},
	{
		Name: "connack v5 every property", Version: V5,
		Bytes: []byte{0x20, 68, 0x01, 0x00,
			65,
			0x11, 0, 0, 0, 60, // session expiry
			0x12, 0, 3, 'c', 'i', 'd', // assigned client id
			0x13, 0, 30, // server keep alive
			0x15, 0, 2, 'a', 'm', // auth method
			0x16, 0, 2, 1, 2, // auth data
			0x1A, 0, 1, 'i', // response info
			0x1C, 0, 1, 's', // server reference
			0x1F, 0, 2, 'o', 'k', // reason string
			0x21, 0, 50, // receive maximum
			0x22, 0, 5, // topic alias maximum
			0x24, 1, // maximum QoS
			0x25, 0, // retain available
			0x26, 0, 1, 'k', 0, 1, 'v', // user
			0x27, 0, 1, 0, 0, // maximum packet size
			0x28, 1, // wildcard subscription available
			0x29, 0, // subscription identifiers available
			0x2A, 1}, // shared subscription available
		Packet: Packet{Type: Connack, SessionPresent: true, Props: Properties{
			Present: present(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
				PropAuthData, PropResponseInfo, PropServerReference, PropReasonString, PropReceiveMaximum,
				PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable, PropUser, PropMaximumPacketSize,
				PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable),
			SessionExpiry: 60, AssignedClientID: b("cid"), ServerKeepAlive: 30, AuthMethod: b("am"),
			AuthData: []byte{1, 2}, ResponseInfo: b("i"), ServerReference: b("s"), ReasonString: b("ok"),
			ReceiveMaximum: 50, TopicAliasMaximum: 5, MaximumQoS: 1, RetainAvailable: 0,
			User: []UserProperty{{Key: b("k"), Value: b("v")}}, MaximumPacketSize: 65536,
			WildcardSubAvailable: 1, SubIDAvailable: 0, SharedSubAvailable: 1}},
	},

	// PUBLISH
	{
		Name: "publish v311 qos 0", Version: V311,
		Bytes:  []byte{0x30, 10, 0, 3, 'a', '/', 'b', 'h', 'e', 'l', 'l', 'o'},
		Packet: Packet{Type: Publish, Topic: b("a/b"), Payload: b("hello")},
	},
	{
		Name: "publish v311 qos 1 dup retain", Version: V311,
		Bytes:  []byte{0x3B, 9, 0, 3, 'a', '/', 'b', 0, 7, 'h', 'i'},
		Packet: Packet{Type: Publish, Dup: true, QoS: 1, Retain: true, PacketID: 7, Topic: b("a/b"), Payload: b("hi")},
	},
	{
		Name: "publish v311 qos 2 empty payload", Version: V311,
		Bytes:  []byte{0x34, 7, 0, 3, 'a', '/', 'b', 0, 8},
		Packet: Packet{Type: Publish, QoS: 2, PacketID: 8, Topic: b("a/b"), Payload: []byte{}},
	},
	{
		Name: "publish v311 multi-byte UTF-8 topic", Version: V311,
		Bytes:  []byte{0x30, 10, 0, 7, 'a', '/', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 'p'},
		Packet: Packet{Type: Publish, Topic: b("a/é€"), Payload: b("p")},
	},
	{
		Name: "publish v31 qos 1", Version: V31,
		Bytes:  []byte{0x32, 8, 0, 1, 't', 0, 1, 'x', 'y', 'z'},
		Packet: Packet{Type: Publish, QoS: 1, PacketID: 1, Topic: b("t"), Payload: b("xyz")},
	},
	{
		Name: "publish v5 qos 0 no properties", Version: V5,
		Bytes:  []byte{0x30, 8, 0, 3, 'a', '/', 'b', 0, 'h', 'i'},
		Packet: Packet{Type: Publish, Topic: b("a/b"), Payload: b("hi")},
	},
	{
		Name: "publish v5 qos 1 every property", Version: V5,
		Bytes: []byte{0x32, 57, 0, 3, 'a', '/', 'b', 0, 1,
			47,
			0x01, 1, // payload format
			0x02, 0, 0, 0, 60, // message expiry
			0x03, 0, 4, 'j', 's', 'o', 'n', // content type
			0x08, 0, 3, 'r', '/', '1', // response topic
			0x09, 0, 2, 0x0A, 0x0B, // correlation data
			0x0B, 5, // subscription identifier
			0x0B, 0x80, 0x01, // subscription identifier 128
			0x23, 0, 1, // topic alias
			0x26, 0, 1, 'k', 0, 1, 'v', // user
			0x26, 0, 1, 'k', 0, 1, 'w', // user, same key again
			'h', 'i'},
		Packet: Packet{Type: Publish, QoS: 1, PacketID: 1, Topic: b("a/b"), Payload: b("hi"), Props: Properties{
			Present: present(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
				PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUser),
			PayloadFormat: 1, MessageExpiry: 60, ContentType: b("json"), ResponseTopic: b("r/1"),
			CorrelationData: []byte{0x0A, 0x0B}, SubscriptionIDs: []uint32{5, 128}, TopicAlias: 1,
			User: []UserProperty{{Key: b("k"), Value: b("v")}, {Key: b("k"), Value: b("w")}}}},
	},
	{
		Name: "publish v5 empty topic with topic alias", Version: V5,
		Bytes: []byte{0x30, 7, 0, 0, 3, 0x23, 0, 2, 'x'},
		Packet: Packet{Type: Publish, Topic: []byte{}, Payload: b("x"), Props: Properties{
			Present: present(PropTopicAlias), TopicAlias: 2}},
	},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{
		Name: "puback v311", Version: V311,
		Bytes:  []byte{0x40, 2, 0, 7},
		Packet: Packet{Type: Puback, PacketID: 7},
	},
	{
		Name: "pubrec v311", Version: V311,
		Bytes:  []byte{0x50, 2, 0, 7},
		Packet: Packet{Type: Pubrec, PacketID: 7},
	},
	{
		Name: "pubrel v311", Version: V311,
		Bytes:  []byte{0x62, 2, 0, 7},
		Packet: Packet{Type: Pubrel, PacketID: 7},
	},
	{
		Name: "pubcomp v311", Version: V311,
		Bytes:  []byte{0x70, 2, 0xFF, 0xFF},
		Packet: Packet{Type: Pubcomp, PacketID: 0xFFFF},
	},
	{
		Name: "puback v5 success short form", Version: V5,
		Bytes:  []byte{0x40, 2, 0, 1},
		Packet: Packet{Type: Puback, PacketID: 1},
	},
	{
		Name: "puback v5 reason code without properties", Version: V5,
		Bytes:  []byte{0x40, 3, 0, 1, 0x10},
		Packet: Packet{Type: Puback, PacketID: 1, ReasonCode: NoMatchingSubscribers},
	},
	{
		Name: "puback v5 reason string and user property", Version: V5,
		Bytes: []byte{0x40, 17, 0, 1, 0x80,
			13,
			0x1F, 0, 3, 'b', 'a', 'd',
			0x26, 0, 1, 'k', 0, 1, 'v'},
		Packet: Packet{Type: Puback, PacketID: 1, ReasonCode: UnspecifiedError, Props: Properties{
			Present: present(PropReasonString, PropUser), ReasonString: b("bad"),
			User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},
	{
		Name: "puback v5 success long form", Version: V5,
		Bytes:   []byte{0x40, 4, 0, 1, 0x00, 0},
		Packet:  Packet{Type: Puback, PacketID: 1},
		Encoded: []byte{0x40, 2, 0, 1},
	},
	{
		Name: "pubrec v5 packet identifier in use with reason string", Version: V5,
		Bytes: []byte{0x50, 8, 0, 2, 0x91, 4, 0x1F, 0, 1, 'x'},
		Packet: Packet{Type: Pubrec, PacketID: 2, ReasonCode: PacketIdentifierInUse, Props: Properties{
			Present: present(PropReasonString), ReasonString: b("x")}},
	},
	{
		Name: "pubrel v5 packet identifier not found", Version: V5,
		Bytes:  []byte{0x62, 3, 0, 3, 0x92},
		Packet: Packet{Type: Pubrel, PacketID: 3, ReasonCode: PacketIdentifierNotFound},
	},
	{
		Name: "pubcomp v5 success with properties", Version: V5,
		Bytes:  []byte{0x70, 8, 0, 4, 0x00, 4, 0x1F, 0, 1, 'x'},
		Packet: Packet{Type: Pubcomp, PacketID: 4, Props: Properties{Present: present(PropReasonString), ReasonString: b("x")}},
	},

	// SUBSCRIBE, SUBACK
	{
		Name: "subscribe v311 two filters", Version: V311,
		Bytes: []byte{0x82, 14, 0, 10,
			0, 3, 'a', '/', 'b', 1,
			0, 3, 'c', '/', '#', 2},
		Packet: Packet{Type: Subscribe, PacketID: 10, Filters: []Subscription{
			{Filter: b("a/b"), QoS: 1}, {Filter: b("c/#"), QoS: 2}}},
	},
	{
		Name: "subscribe v31", Version: V31,
		Bytes:  []byte{0x82, 6, 0, 1, 0, 1, '#', 0},
		Packet: Packet{Type: Subscribe, PacketID: 1, Filters: []Subscription{{Filter: b("#")}}},
	},
	{
		Name: "subscribe v5 every option, subscription identifier and user property", Version: V5,
		Bytes: []byte{0x82, 24, 0, 10,
			9,
			0x0B, 7,
			0x26, 0, 1, 'k', 0, 1, 'v',
			0, 3, 'a', '/', 'b', 0x2E, // QoS 2, no local, retain as published, retain handling 2
			0, 3, 'c', '/', 'd', 0x11}, // QoS 1, retain handling 1
		Packet: Packet{Type: Subscribe, PacketID: 10,
			Filters: []Subscription{
				{Filter: b("a/b"), QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				{Filter: b("c/d"), QoS: 1, RetainHandling: 1}},
			Props: Properties{Present: present(PropSubscriptionID, PropUser), SubscriptionIDs: []uint32{7},
				User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},
	{
		Name: "suback v311", Version: V311,
		Bytes:  []byte{0x90, 5, 0, 10, 0x01, 0x02, 0x80},
		Packet: Packet{Type: Suback, PacketID: 10, ReasonCodes: []byte{1, 2, 0x80}},
	},
	{
		Name: "suback v5 with properties", Version: V5,
		Bytes: []byte{0x90, 17, 0, 10,
			11,
			0x1F, 0, 1, 'x',
			0x26, 0, 1, 'k', 0, 1, 'v',
			0x02, 0x8F, 0xA2},
		Packet: Packet{Type: Suback, PacketID: 10, ReasonCodes: []byte{GrantedQoS2, TopicFilterInvalid, WildcardSubscriptionsNotSupported},
			Props: Properties{Present: present(PropReasonString, PropUser), ReasonString: b("x"),
				User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},

	// UNSUBSCRIBE, UNSUBACK
	{
		Name: "unsubscribe v311", Version: V311,
		Bytes:  []byte{0xA2, 10, 0, 11, 0, 3, 'a', '/', 'b', 0, 1, '#'},
		Packet: Packet{Type: Unsubscribe, PacketID: 11, Filters: []Subscription{{Filter: b("a/b")}, {Filter: b("#")}}},
	},
	{
		Name: "unsubscribe v5 with user property", Version: V5,
		Bytes: []byte{0xA2, 18, 0, 11,
			7, 0x26, 0, 1, 'k', 0, 1, 'v',
			0, 3, 'a', '/', 'b', 0, 1, '#'},
		Packet: Packet{Type: Unsubscribe, PacketID: 11, Filters: []Subscription{{Filter: b("a/b")}, {Filter: b("#")}},
			Props: Properties{Present: present(PropUser), User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},
	{
		Name: "unsuback v311", Version: V311,
		Bytes:  []byte{0xB0, 2, 0, 11},
		Packet: Packet{Type: Unsuback, PacketID: 11},
	},
	{
		Name: "unsuback v5 no properties", Version: V5,
		Bytes:  []byte{0xB0, 4, 0, 11, 0, 0x00},
		Packet: Packet{Type: Unsuback, PacketID: 11, ReasonCodes: []byte{Success}},
	},
	{
		Name: "unsuback v5 with reason string", Version: V5,
		Bytes: []byte{0xB0, 9, 0, 11, 4, 0x1F, 0, 1, 'x', 0x00, 0x11},
		Packet: Packet{Type: Unsuback, PacketID: 11, ReasonCodes: []byte{Success, NoSubscriptionExisted},
			Props: Properties{Present: present(PropReasonString), ReasonString: b("x")}},
	},

	// PINGREQ, PINGRESP, DISCONNECT, AUTH
	{Name: "pingreq v311", Version: V311, Bytes: []byte{0xC0, 0}, Packet: Packet{Type: Pingreq}},
	{Name: "pingresp v311", Version: V311, Bytes: []byte{0xD0, 0}, Packet: Packet{Type: Pingresp}},
	{Name: "disconnect v311", Version: V311, Bytes: []byte{0xE0, 0}, Packet: Packet{Type: Disconnect}},
	{Name: "pingreq v5", Version: V5, Bytes: []byte{0xC0, 0}, Packet: Packet{Type: Pingreq}},
	{Name: "pingresp v5", Version: V5, Bytes: []byte{0xD0, 0}, Packet: Packet{Type: Pingresp}},
	{
		Name: "pingreq v311 non-minimal remaining length", Version: V311,
		Bytes:   []byte{0xC0, 0x80, 0x00},
		Packet:  Packet{Type: Pingreq},
		Encoded: []byte{0xC0, 0},
	},
	{Name: "disconnect v5 normal short form", Version: V5, Bytes: []byte{0xE0, 0}, Packet: Packet{Type: Disconnect}},
	{
		Name: "disconnect v5 with will, reason code only", Version: V5,
		Bytes:  []byte{0xE0, 1, 0x04},
		Packet: Packet{Type: Disconnect, ReasonCode: DisconnectWithWill},
	},
	{
		Name: "disconnect v5 normal long form", Version: V5,
		Bytes:   []byte{0xE0, 2, 0x00, 0},
		Packet:  Packet{Type: Disconnect},
		Encoded: []byte{0xE0, 0},
	},
	{
		Name: "disconnect v5 every property", Version: V5,
		Bytes: []byte{0xE0, 22, 0x8E,
			20,
			0x11, 0, 0, 0, 0, // session expiry
			0x1C, 0, 1, 's', // server reference
			0x1F, 0, 1, 'x', // reason string
			0x26, 0, 1, 'k', 0, 1, 'v'},
		Packet: Packet{Type: Disconnect, ReasonCode: SessionTakenOver, Props: Properties{
			Present:       present(PropSessionExpiry, PropServerReference, PropReasonString, PropUser),
			SessionExpiry: 0, ServerReference: b("s"), ReasonString: b("x"),
			User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},
	{Name: "auth v5 success short form", Version: V5, Bytes: []byte{0xF0, 0}, Packet: Packet{Type: Auth}},
	{
		Name: "auth v5 continue with every property", Version: V5,
		Bytes: []byte{0xF0, 23, 0x18,
			21,
			0x15, 0, 2, 'a', 'm',
			0x16, 0, 2, 1, 2,
			0x1F, 0, 1, 'x',
			0x26, 0, 1, 'k', 0, 1, 'v'},
		Packet: Packet{Type: Auth, ReasonCode: ContinueAuthentication, Props: Properties{
			Present:    present(PropAuthMethod, PropAuthData, PropReasonString, PropUser),
			AuthMethod: b("am"), AuthData: []byte{1, 2}, ReasonString: b("x"),
			User: []UserProperty{{Key: b("k"), Value: b("v")}}}},
	},
	{
		Name: "auth v5 re-authenticate without properties", Version: V5,
		Bytes:  []byte{0xF0, 2, 0x19, 0},
		Packet: Packet{Type: Auth, ReasonCode: ReAuthenticate},
	},
}

// invalidPackets are whole packets (fixed header and body) that
// ReadFixedHeader or Decode must refuse with Err.
var invalidPackets = []tpacket{
	// Fixed header.
	{Name: "reserved type 0", Version: V311, Bytes: []byte{0x00, 0}, Err: ErrReservedType},
	{Name: "auth before v5", Version: V311, Bytes: []byte{0xF0, 0}, Err: ErrReservedType},
	{Name: "remaining length over 4 bytes", Version: V311, Bytes: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, Err: ErrVarint},
	{Name: "pingreq reserved flag", Version: V311, Bytes: []byte{0xC1, 0}, Err: ErrFixedHeaderFlags},
	{Name: "connect reserved flag", Version: V5, Bytes: []byte{0x18, 0}, Err: ErrFixedHeaderFlags},
	{Name: "puback reserved flag", Version: V5, Bytes: []byte{0x42, 2, 0, 1}, Err: ErrFixedHeaderFlags},
	{Name: "pubrel flags 0", Version: V311, Bytes: []byte{0x60, 2, 0, 1}, Err: ErrFixedHeaderFlags},
	{Name: "subscribe flags 0", Version: V311, Bytes: []byte{0x80, 6, 0, 1, 0, 1, '#', 0}, Err: ErrFixedHeaderFlags},
	{Name: "unsubscribe flags 3", Version: V5, Bytes: []byte{0xA3, 6, 0, 1, 0, 0, 1, '#'}, Err: ErrFixedHeaderFlags},
	{Name: "publish qos 3", Version: V311, Bytes: []byte{0x36, 7, 0, 1, 't', 0, 1, 'x', 'y'}, Err: ErrPublishQoS},
	{Name: "publish dup with qos 0", Version: V5, Bytes: []byte{0x38, 4, 0, 1, 't', 0}, Err: ErrFixedHeaderFlags},

	// Truncated and overlong bodies.
	{Name: "connect truncated in protocol name", Version: V311, Bytes: []byte{0x10, 3, 0, 4, 'M'}, Err: ErrTruncated},
	{Name: "connect truncated before keep alive", Version: V311, Bytes: []byte{0x10, 8, 0, 4, 'M', 'Q', 'T', 'T', 4, 2}, Err: ErrTruncated},
	{Name: "connect truncated client id", Version: V311, Bytes: []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 5, 'a'}, Err: ErrTruncated},
	{Name: "connect v311 trailing byte", Version: V311, Bytes: []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 0, 'x'}, Err: ErrTrailing},
	{Name: "connack truncated", Version: V311, Bytes: []byte{0x20, 1, 0}, Err: ErrTruncated},
	{Name: "connack v5 without property length", Version: V5, Bytes: []byte{0x20, 2, 0, 0}, Err: ErrTruncated},
	{Name: "publish topic past end", Version: V311, Bytes: []byte{0x30, 3, 0, 5, 'a'}, Err: ErrTruncated},
	{Name: "publish qos 1 without packet id", Version: V311, Bytes: []byte{0x32, 5, 0, 3, 'a', '/', 'b'}, Err: ErrTruncated},
	{Name: "publish v5 without property length", Version: V5, Bytes: []byte{0x30, 3, 0, 1, 't'}, Err: ErrTruncated},
	{Name: "puback truncated", Version: V311, Bytes: []byte{0x40, 1, 0}, Err: ErrTruncated},
	{Name: "puback v311 with reason code", Version: V311, Bytes: []byte{0x40, 3, 0, 1, 0}, Err: ErrTrailing},
	{Name: "subscribe without options byte", Version: V311, Bytes: []byte{0x82, 7, 0, 1, 0, 3, 'a', '/', 'b'}, Err: ErrTruncated},
	{Name: "unsuback v311 with reason codes", Version: V311, Bytes: []byte{0xB0, 3, 0, 1, 0}, Err: ErrTrailing},
	{Name: "pingreq with body", Version: V311, Bytes: []byte{0xC0, 1, 0}, Err: ErrTrailing},
	{Name: "disconnect v311 with reason code", Version: V311, Bytes: []byte{0xE0, 1, 0}, Err: ErrTrailing},
	{Name: "auth v5 reason code without property length", Version: V5, Bytes: []byte{0xF0, 1, 0x18}, Err: ErrTruncated},
	{Name: "property length past end of packet", Version: V5, Bytes: []byte{0x30, 6, 0, 1, 't', 10, 0x01, 1}, Err: ErrTruncated},
	{Name: "property value past end of property block", Version: V5,
		Bytes: []byte{0x30, 10, 0, 1, 't', 3, 0x02, 0, 0, 0, 1, 'x'}, Err: ErrTruncated},
	{Name: "string property past end of property block", Version: V5,
		Bytes: []byte{0x40, 9, 0, 1, 0x80, 3, 0x1F, 0, 3, 'a', 'b'}, Err: ErrTruncated},
	{Name: "property length over 4 bytes", Version: V5,
		Bytes: []byte{0x30, 8, 0, 1, 't', 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, Err: ErrVarint},
	{Name: "subscription identifier over 4 bytes", Version: V5,
		Bytes: []byte{0x82, 13, 0, 1, 6, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 1, '#', 0}, Err: ErrVarint},

	// Packet identifier 0.
	{Name: "publish qos 1 packet id 0", Version: V311, Bytes: []byte{0x32, 5, 0, 1, 't', 0, 0}, Err: ErrPacketID},
	{Name: "publish v5 qos 2 packet id 0", Version: V5, Bytes: []byte{0x34, 6, 0, 1, 't', 0, 0, 0}, Err: ErrPacketID},
	{Name: "puback packet id 0", Version: V311, Bytes: []byte{0x40, 2, 0, 0}, Err: ErrPacketID},
	{Name: "pubrec packet id 0", Version: V5, Bytes: []byte{0x50, 2, 0, 0}, Err: ErrPacketID},
	{Name: "pubrel packet id 0", Version: V311, Bytes: []byte{0x62, 2, 0, 0}, Err: ErrPacketID},
	{Name: "pubcomp packet id 0", Version: V5, Bytes: []byte{0x70, 2, 0, 0}, Err: ErrPacketID},
	{Name: "subscribe packet id 0", Version: V311, Bytes: []byte{0x82, 6, 0, 0, 0, 1, '#', 0}, Err: ErrPacketID},
	{Name: "suback packet id 0", Version: V311, Bytes: []byte{0x90, 3, 0, 0, 0}, Err: ErrPacketID},
	{Name: "unsubscribe packet id 0", Version: V5, Bytes: []byte{0xA2, 6, 0, 0, 0, 0, 1, '#'}, Err: ErrPacketID},
	{Name: "unsuback packet id 0", Version: V311, Bytes: []byte{0xB0, 2, 0, 0}, Err: ErrPacketID},

	// Strings and topics.
	{Name: "publish topic ill-formed UTF-8", Version: V311, Bytes: []byte{0x30, 4, 0, 2, 0xC3, 0x28}, Err: ErrUTF8},
	{Name: "publish topic with U+0000", Version: V5, Bytes: []byte{0x30, 6, 0, 3, 'a', 0, 'b', 0}, Err: ErrUTF8},
	{Name: "publish topic with surrogate", Version: V311, Bytes: []byte{0x30, 5, 0, 3, 0xED, 0xA0, 0x80}, Err: ErrUTF8},
	{Name: "publish topic overlong encoding", Version: V311, Bytes: []byte{0x30, 4, 0, 2, 0xC0, 0xAF}, Err: ErrUTF8},
	{Name: "publish topic with +", Version: V311, Bytes: []byte{0x30, 5, 0, 3, 'a', '/', '+'}, Err: ErrTopicNameInvalid},
	{Name: "publish topic with #", Version: V5, Bytes: []byte{0x30, 4, 0, 1, '#', 0}, Err: ErrTopicNameInvalid},
	{Name: "publish v311 empty topic", Version: V311, Bytes: []byte{0x30, 3, 0, 0, 'x'}, Err: ErrTopicEmpty},
	{Name: "publish v5 empty topic without alias", Version: V5, Bytes: []byte{0x30, 3, 0, 0, 0}, Err: ErrTopicEmpty},
	{Name: "connect client id ill-formed UTF-8", Version: V311,
		Bytes: []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 1, 0xFF}, Err: ErrUTF8},
	{Name: "connect username with U+0000", Version: V311,
		Bytes: []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 0, 0, 1, 'c', 0, 2, 'u', 0}, Err: ErrUTF8},
	{Name: "connect will topic with wildcard", Version: V311,
		Bytes: []byte{0x10, 20, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 0, 0, 1, 'c', 0, 3, 'a', '/', '#', 0, 0}, Err: ErrTopicNameInvalid},
	{Name: "connect empty will topic", Version: V311,
		Bytes: []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 0, 0, 1, 'c', 0, 0, 0, 0}, Err: ErrTopicNameInvalid},
	{Name: "subscribe filter ill-formed UTF-8", Version: V311, Bytes: []byte{0x82, 6, 0, 1, 0, 1, 0x80, 0}, Err: ErrUTF8},
	{Name: "unsubscribe filter with U+0000", Version: V311, Bytes: []byte{0xA2, 5, 0, 1, 0, 1, 0}, Err: ErrUTF8},
	{Name: "user property key ill-formed UTF-8", Version: V5,
		Bytes: []byte{0x40, 11, 0, 1, 0, 7, 0x26, 0, 1, 0xFE, 0, 1, 'v'}, Err: ErrUTF8},
	{Name: "reason string ill-formed UTF-8", Version: V5,
		Bytes: []byte{0xE0, 6, 0x80, 4, 0x1F, 0, 1, 0xC1}, Err: ErrUTF8},

	// CONNECT protocol and flags.
	{Name: "connect MQTT level 3", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect MQIsdp level 4", Version: V311,
		Bytes: []byte{0x10, 14, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 2, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect MQTT level 6", Version: V5,
		Bytes: []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect bridge level bit", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 0x84, 2, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect wrong protocol name", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect lower-case protocol name", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'm', 'q', 't', 't', 4, 2, 0, 0, 0, 0}, Err: ErrUnsupportedProtocol},
	{Name: "connect reserved flag bit", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 0, 0, 0}, Err: ErrConnectFlags},
	{Name: "connect will qos without will flag", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x0A, 0, 0, 0, 0}, Err: ErrConnectFlags},
	{Name: "connect will retain without will flag", Version: V5,
		Bytes: []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x22, 0, 0, 0, 0, 0}, Err: ErrConnectFlags},
	{Name: "connect will qos 3", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 0, 0, 0}, Err: ErrConnectFlags},
	{Name: "connect v311 password without username", Version: V311,
		Bytes: []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 0, 0, 0, 0, 2, 'p', 'w'}, Err: ErrConnectFlags},
	{Name: "connect v31 password without username", Version: V31,
		Bytes: []byte{0x10, 20, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x42, 0, 0, 0, 2, 'i', 'd', 0, 2, 'p', 'w'}, Err: ErrConnectFlags},
	{Name: "connect username flag without username", Version: V311,
		Bytes: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 0, 0, 0}, Err: ErrTruncated},

	// SUBSCRIBE, UNSUBSCRIBE and their acknowledgements.
	{Name: "subscribe v311 without filters", Version: V311, Bytes: []byte{0x82, 2, 0, 1}, Err: ErrNoPayload},
	{Name: "subscribe v5 without filters", Version: V5, Bytes: []byte{0x82, 3, 0, 1, 0}, Err: ErrNoPayload},
	{Name: "unsubscribe v311 without filters", Version: V311, Bytes: []byte{0xA2, 2, 0, 1}, Err: ErrNoPayload},
	{Name: "unsubscribe v5 without filters", Version: V5, Bytes: []byte{0xA2, 3, 0, 1, 0}, Err: ErrNoPayload},
	{Name: "suback v5 without reason codes", Version: V5, Bytes: []byte{0x90, 3, 0, 1, 0}, Err: ErrNoPayload},
	{Name: "unsuback v5 without reason codes", Version: V5, Bytes: []byte{0xB0, 3, 0, 1, 0}, Err: ErrNoPayload},
	{Name: "subscribe v311 reserved option bits", Version: V311, Bytes: []byte{0x82, 6, 0, 1, 0, 1, '#', 0x04}, Err: ErrSubscribeReserved},
	{Name: "subscribe v311 qos 3", Version: V311, Bytes: []byte{0x82, 6, 0, 1, 0, 1, '#', 0x03}, Err: ErrSubscribeOption},
	{Name: "subscribe v31 reserved option bits", Version: V31, Bytes: []byte{0x82, 6, 0, 1, 0, 1, '#', 0x80}, Err: ErrSubscribeReserved},
	{Name: "subscribe v5 reserved option bits", Version: V5, Bytes: []byte{0x82, 7, 0, 1, 0, 0, 1, '#', 0x40}, Err: ErrSubscribeReserved},
	{Name: "subscribe v5 qos 3", Version: V5, Bytes: []byte{0x82, 7, 0, 1, 0, 0, 1, '#', 0x03}, Err: ErrSubscribeOption},
	{Name: "subscribe v5 retain handling 3", Version: V5, Bytes: []byte{0x82, 7, 0, 1, 0, 0, 1, '#', 0x30}, Err: ErrSubscribeOption},

	// Reason codes.
	{Name: "connack v311 return code 6", Version: V311, Bytes: []byte{0x20, 2, 0, 6}, Err: ErrReasonCode},
	{Name: "connack v5 reason code 0x01", Version: V5, Bytes: []byte{0x20, 3, 0, 0x01, 0}, Err: ErrReasonCode},
	{Name: "connack reserved flag bits", Version: V311, Bytes: []byte{0x20, 2, 0x02, 0}, Err: ErrMalformed},
	{Name: "puback v5 reason code 0x92", Version: V5, Bytes: []byte{0x40, 3, 0, 1, 0x92}, Err: ErrReasonCode},
	{Name: "pubrel v5 reason code 0x10", Version: V5, Bytes: []byte{0x62, 3, 0, 1, 0x10}, Err: ErrReasonCode},
	{Name: "suback v311 return code 3", Version: V311, Bytes: []byte{0x90, 3, 0, 1, 3}, Err: ErrReasonCode},
	{Name: "suback v5 reason code 0x11", Version: V5, Bytes: []byte{0x90, 4, 0, 1, 0, 0x11}, Err: ErrReasonCode},
	{Name: "unsuback v5 reason code 0x01", Version: V5, Bytes: []byte{0xB0, 4, 0, 1, 0, 0x01}, Err: ErrReasonCode},
	{Name: "disconnect v5 reason code 0x05", Version: V5, Bytes: []byte{0xE0, 1, 0x05}, Err: ErrReasonCode},
	{Name: "auth v5 reason code 0x01", Version: V5, Bytes: []byte{0xF0, 2, 0x01, 0}, Err: ErrReasonCode},

	// Properties.
	{Name: "duplicate message expiry", Version: V5,
		Bytes: []byte{0x30, 14, 0, 1, 't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2}, Err: ErrDuplicateProperty},
	{Name: "duplicate session expiry in connect", Version: V5,
		Bytes: []byte{0x10, 23, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0}, Err: ErrDuplicateProperty},
	{Name: "duplicate subscription identifier in subscribe", Version: V5,
		Bytes: []byte{0x82, 11, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, '#', 0}, Err: ErrDuplicateProperty},
	{Name: "duplicate reason string in puback", Version: V5,
		Bytes: []byte{0x40, 12, 0, 1, 0x80, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'}, Err: ErrDuplicateProperty},
	{Name: "duplicate will delay", Version: V5,
		Bytes: []byte{0x10, 30, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 0, 0, 0, 1, 'c',
			10, 0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 2, 0, 1, 't', 0, 0}, Err: ErrDuplicateProperty},
	{Name: "session expiry in publish", Version: V5,
		Bytes: []byte{0x30, 9, 0, 1, 't', 5, 0x11, 0, 0, 0, 1}, Err: ErrPropertyID},
	{Name: "topic alias in puback", Version: V5,
		Bytes: []byte{0x40, 7, 0, 1, 0, 3, 0x23, 0, 1}, Err: ErrPropertyID},
	{Name: "reason string in publish", Version: V5,
		Bytes: []byte{0x30, 8, 0, 1, 't', 4, 0x1F, 0, 1, 'x'}, Err: ErrPropertyID},
	{Name: "subscription identifier in unsubscribe", Version: V5,
		Bytes: []byte{0xA2, 8, 0, 1, 2, 0x0B, 1, 0, 1, '#'}, Err: ErrPropertyID},
	{Name: "will delay in connect properties", Version: V5,
		Bytes: []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 5, 0x18, 0, 0, 0, 1, 0, 0}, Err: ErrPropertyID},
	{Name: "session expiry in will properties", Version: V5,
		Bytes: []byte{0x10, 25, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 0, 0, 0, 1, 'c',
			5, 0x11, 0, 0, 0, 1, 0, 1, 't', 0, 0}, Err: ErrPropertyID},
	{Name: "maximum qos in connect", Version: V5,
		Bytes: []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x24, 1, 0, 0}, Err: ErrPropertyID},
	{Name: "disconnect property block cut inside a value", Version: V5,
		Bytes: []byte{0xE0, 4, 0, 2, 0x11, 0}, Err: ErrTruncated},
	{Name: "unknown property 0x00", Version: V5,
		Bytes: []byte{0x30, 6, 0, 1, 't', 2, 0x00, 0}, Err: ErrPropertyID},
	{Name: "unknown property 0x7F", Version: V5,
		Bytes: []byte{0x30, 6, 0, 1, 't', 2, 0x7F, 0}, Err: ErrPropertyID},
	{Name: "property identifier with continuation bit", Version: V5,
		Bytes: []byte{0x30, 6, 0, 1, 't', 2, 0x81, 0x00}, Err: ErrPropertyID},
	{Name: "subscription identifier 0", Version: V5,
		Bytes: []byte{0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, '#', 0}, Err: ErrPropertyValue},
	{Name: "receive maximum 0", Version: V5,
		Bytes: []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 3, 0x21, 0, 0, 0, 0}, Err: ErrPropertyValue},
	{Name: "maximum packet size 0", Version: V5,
		Bytes: []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 5, 0x27, 0, 0, 0, 0, 0, 0}, Err: ErrPropertyValue},
	{Name: "request problem information 2", Version: V5,
		Bytes: []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x17, 2, 0, 0}, Err: ErrPropertyValue},
	{Name: "request response information 2", Version: V5,
		Bytes: []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x19, 2, 0, 0}, Err: ErrPropertyValue},
	{Name: "payload format 2", Version: V5,
		Bytes: []byte{0x30, 6, 0, 1, 't', 2, 0x01, 2}, Err: ErrPropertyValue},
	{Name: "maximum qos 2 in connack", Version: V5,
		Bytes: []byte{0x20, 5, 0, 0, 2, 0x24, 2}, Err: ErrPropertyValue},
	{Name: "topic alias 0", Version: V5,
		Bytes: []byte{0x30, 7, 0, 1, 't', 3, 0x23, 0, 0}, Err: ErrTopicAliasInvalid},
	{Name: "authentication data without method", Version: V5,
		Bytes: []byte{0xF0, 7, 0x18, 5, 0x16, 0, 2, 1, 2}, Err: ErrProtocol},
}
