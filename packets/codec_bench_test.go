package packets

import "testing"

// benchPackets are shaped like broker traffic rather than like the test
// table: realistic topic and payload sizes, and the properties v5 clients
// commonly send.
var benchPackets = func() []struct {
	name    string
	version byte
	p       Packet
} {
	topic := b("sensors/building-1/floor-3/room-42/temperature")
	payload := make([]byte, 64)
	user := []UserProperty{{Key: b("trace-id"), Value: b("4bf92f3577b34da6")}}
	return []struct {
		name    string
		version byte
		p       Packet
	}{
		{"connect/v311", V311, Packet{Type: Connect, Connect: ConnectFields{
			CleanStart: true, KeepAlive: 60, ClientID: b("cp7bench-000042"),
			WillFlag: true, WillQoS: 1, WillTopic: b("clients/cp7bench-000042/status"), WillPayload: b("offline"),
			UsernameFlag: true, Username: b("device"), PasswordFlag: true, Password: b("secret-token")}}},
		{"connect/v5", V5, Packet{Type: Connect,
			Connect: ConnectFields{CleanStart: true, KeepAlive: 60, ClientID: b("cp7bench-000042"),
				UsernameFlag: true, Username: b("device"), PasswordFlag: true, Password: b("secret-token")},
			Props: Properties{
				Present:       present(PropSessionExpiry, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumPacketSize),
				SessionExpiry: 3600, ReceiveMaximum: 100, TopicAliasMaximum: 16, MaximumPacketSize: 1 << 20}}},
		{"connack/v311", V311, Packet{Type: Connack}},
		{"connack/v5", V5, Packet{Type: Connack, Props: Properties{
			Present:           present(PropAssignedClientID, PropTopicAliasMaximum, PropReceiveMaximum),
			AssignedClientID:  b("auto-4bf92f3577b34da6"),
			TopicAliasMaximum: 16, ReceiveMaximum: 1024}}},
		{"publish-qos0/v311", V311, Packet{Type: Publish, Topic: topic, Payload: payload}},
		{"publish-qos1/v311", V311, Packet{Type: Publish, QoS: 1, PacketID: 42, Topic: topic, Payload: payload}},
		{"publish-qos0/v5", V5, Packet{Type: Publish, Topic: topic, Payload: payload}},
		{"publish-qos1-props/v5", V5, Packet{Type: Publish, QoS: 1, PacketID: 42, Topic: topic, Payload: payload,
			Props: Properties{
				Present:       present(PropPayloadFormat, PropMessageExpiry, PropContentType, PropTopicAlias, PropUser),
				PayloadFormat: 1, MessageExpiry: 300, ContentType: b("application/json"), TopicAlias: 3, User: user}}},
		{"puback/v311", V311, Packet{Type: Puback, PacketID: 42}},
		{"puback/v5", V5, Packet{Type: Puback, PacketID: 42}},
		{"puback-reason/v5", V5, Packet{Type: Puback, PacketID: 42, ReasonCode: NoMatchingSubscribers}},
		{"pubrel/v311", V311, Packet{Type: Pubrel, PacketID: 42}},
		{"subscribe/v311", V311, Packet{Type: Subscribe, PacketID: 7, Filters: []Subscription{
			{Filter: b("sensors/+/floor-3/#"), QoS: 1}, {Filter: b("commands/cp7bench-000042"), QoS: 2}}}},
		{"subscribe/v5", V5, Packet{Type: Subscribe, PacketID: 7,
			Filters: []Subscription{
				{Filter: b("sensors/+/floor-3/#"), QoS: 1, NoLocal: true, RetainHandling: 1},
				{Filter: b("commands/cp7bench-000042"), QoS: 2, RetainAsPublished: true}},
			Props: Properties{Present: present(PropSubscriptionID, PropUser), SubscriptionIDs: []uint32{9}, User: user}}},
		{"suback/v311", V311, Packet{Type: Suback, PacketID: 7, ReasonCodes: []byte{1, 2}}},
		{"suback/v5", V5, Packet{Type: Suback, PacketID: 7, ReasonCodes: []byte{1, 2}}},
		{"unsubscribe/v311", V311, Packet{Type: Unsubscribe, PacketID: 8, Filters: []Subscription{{Filter: b("sensors/+/floor-3/#")}}}},
		{"pingreq/v311", V311, Packet{Type: Pingreq}},
		{"disconnect/v311", V311, Packet{Type: Disconnect}},
		{"disconnect/v5", V5, Packet{Type: Disconnect}},
		{"disconnect-props/v5", V5, Packet{Type: Disconnect, ReasonCode: ServerShuttingDown, Props: Properties{
			Present: present(PropReasonString, PropServerReference), ReasonString: b("maintenance"),
			ServerReference: b("mqtt2.example.com:1883")}}},
	}
}()

func BenchmarkDecode(b *testing.B) {
	for _, bp := range benchPackets {
		b.Run(bp.name, func(b *testing.B) {
			raw := Encode(nil, &bp.p, bp.version)
			var p Packet
			// One decode outside the loop grows the reused slices and
			// proves the input valid.
			if err := decodeAll(&p, raw, bp.version); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				fh, n, err := ReadFixedHeader(raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := Decode(&p, fh, raw[n:], bp.version); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bp := range benchPackets {
		b.Run(bp.name, func(b *testing.B) {
			buf := make([]byte, 0, Size(&bp.p, bp.version))
			b.ReportAllocs()
			b.SetBytes(int64(cap(buf)))
			for b.Loop() {
				buf = Encode(buf[:0], &bp.p, bp.version)
			}
		})
	}
}

func BenchmarkSize(b *testing.B) {
	p := benchPackets[7].p // publish-qos1-props/v5: the size check on every delivery
	b.ReportAllocs()
	for b.Loop() {
		Size(&p, V5)
	}
}

func BenchmarkValidUTF8(b *testing.B) {
	for _, s := range []struct{ name, in string }{
		{"ascii", "sensors/building-1/floor-3/room-42/temperature"},
		{"multibyte", "capteurs/bâtiment-1/étage-3/salle-42/température"},
	} {
		b.Run(s.name, func(b *testing.B) {
			in := []byte(s.in)
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				ValidUTF8(in)
			}
		})
	}
}
