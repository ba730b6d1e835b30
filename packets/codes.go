package packets

// Reason codes (MQTT 5.0 §2.4). The v3 CONNACK return codes are listed
// separately because they share numbers with different meanings.
const (
	Success                             byte = 0x00
	NormalDisconnection                 byte = 0x00
	GrantedQoS0                         byte = 0x00
	GrantedQoS1                         byte = 0x01
	GrantedQoS2                         byte = 0x02
	DisconnectWithWill                  byte = 0x04
	NoMatchingSubscribers               byte = 0x10
	NoSubscriptionExisted               byte = 0x11
	ContinueAuthentication              byte = 0x18
	ReAuthenticate                      byte = 0x19
	UnspecifiedError                    byte = 0x80
	MalformedPacket                     byte = 0x81
	ProtocolError                       byte = 0x82
	ImplementationSpecificError         byte = 0x83
	UnsupportedProtocolVersion          byte = 0x84
	ClientIdentifierNotValid            byte = 0x85
	BadUsernameOrPassword               byte = 0x86
	NotAuthorized                       byte = 0x87
	ServerUnavailable                   byte = 0x88
	ServerBusy                          byte = 0x89
	Banned                              byte = 0x8A
	ServerShuttingDown                  byte = 0x8B
	BadAuthenticationMethod             byte = 0x8C
	KeepAliveTimeout                    byte = 0x8D
	SessionTakenOver                    byte = 0x8E
	TopicFilterInvalid                  byte = 0x8F
	TopicNameInvalid                    byte = 0x90
	PacketIdentifierInUse               byte = 0x91
	PacketIdentifierNotFound            byte = 0x92
	ReceiveMaximumExceeded              byte = 0x93
	TopicAliasInvalid                   byte = 0x94
	PacketTooLarge                      byte = 0x95
	MessageRateTooHigh                  byte = 0x96
	QuotaExceeded                       byte = 0x97
	AdministrativeAction                byte = 0x98
	PayloadFormatInvalid                byte = 0x99
	RetainNotSupported                  byte = 0x9A
	QoSNotSupported                     byte = 0x9B
	UseAnotherServer                    byte = 0x9C
	ServerMoved                         byte = 0x9D
	SharedSubscriptionsNotSupported     byte = 0x9E
	ConnectionRateExceeded              byte = 0x9F
	MaximumConnectTime                  byte = 0xA0
	SubscriptionIdentifiersNotSupported byte = 0xA1
	WildcardSubscriptionsNotSupported   byte = 0xA2
)

// MQTT 3.1 and 3.1.1 CONNACK return codes and the SUBACK failure code.
const (
	V3Accepted              byte = 0x00
	V3UnacceptableProtocol  byte = 0x01
	V3IdentifierRejected    byte = 0x02
	V3ServerUnavailable     byte = 0x03
	V3BadUsernameOrPassword byte = 0x04
	V3NotAuthorized         byte = 0x05
	V3SubackFailure         byte = 0x80
)

// Error is a decoding or protocol failure. Code is the v5 reason code a
// server sends in CONNACK or DISCONNECT before closing (v3 connections are
// simply closed). Errors are package-level values so returning one does not
// allocate.
type Error struct {
	Code byte
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// codeSet is a set of reason codes, a bit per code.
type codeSet [4]uint64

func newCodeSet(codes ...byte) (s codeSet) {
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

// The reason codes each packet may carry (MQTT 5.0 §3), for either
// direction: DISCONNECT's set is the union of the client's and the server's.
// Anything else is refused as a Protocol Error rather than passed on, so
// the broker and client never have to act on a code the spec gives no
// meaning in that packet.
var (
	connackV3Codes = newCodeSet(V3Accepted, V3UnacceptableProtocol, V3IdentifierRejected,
		V3ServerUnavailable, V3BadUsernameOrPassword, V3NotAuthorized)
	subackV3Codes = newCodeSet(GrantedQoS0, GrantedQoS1, GrantedQoS2, V3SubackFailure)

	connackCodes = newCodeSet(Success, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecificError, UnsupportedProtocolVersion, ClientIdentifierNotValid,
		BadUsernameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned,
		BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
		ServerMoved, ConnectionRateExceeded)
	pubackCodes = newCodeSet(Success, NoMatchingSubscribers, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicNameInvalid, PacketIdentifierInUse,
		QuotaExceeded, PayloadFormatInvalid)
	pubrelCodes = newCodeSet(Success, PacketIdentifierNotFound)
	subackCodes = newCodeSet(GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse,
		QuotaExceeded, SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported)
	unsubackCodes = newCodeSet(Success, NoSubscriptionExisted, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse)
	disconnectCodes = newCodeSet(NormalDisconnection, DisconnectWithWill, UnspecifiedError,
		MalformedPacket, ProtocolError, ImplementationSpecificError, NotAuthorized, ServerBusy,
		ServerShuttingDown, KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid,
		TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge,
		MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid,
		RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved,
		SharedSubscriptionsNotSupported, ConnectionRateExceeded, MaximumConnectTime,
		SubscriptionIdentifiersNotSupported, WildcardSubscriptionsNotSupported)
	authCodes = newCodeSet(Success, ContinueAuthentication, ReAuthenticate)
)

func checkCode(allowed *codeSet, c byte) error {
	if allowed[c>>6]&(1<<(c&63)) == 0 {
		return ErrReasonCode
	}
	return nil
}
