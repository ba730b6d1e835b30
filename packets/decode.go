package packets

// Decode decodes one packet body (exactly fh.Remaining bytes, after the fixed
// header) into p for protocol level version. For CONNECT the level is read
// from the packet itself and version is ignored; any other version than V5
// decodes the 3.1/3.1.1 forms. Packets of either direction decode, so the
// same code serves broker and client. It validates everything the spec
// requires of any receiver and returns one of the package's *Error values
// whose Code is the reason code to report. Rules that depend on who sent
// the packet are the caller's: a client may not send Subscription
// Identifiers in PUBLISH nor a server Session Expiry in DISCONNECT, and
// whether a topic filter is well formed is for the topic layer to say.
//
// p is Reset first. Its byte slices point into body, and its Filters,
// ReasonCodes, Props.User and Props.SubscriptionIDs reuse their capacity, so
// decoding into a long-lived Packet does not allocate.
//
// When a CONNECT fails after its protocol name and level were read,
// p.Connect.ProtocolName and p.Connect.Level are set, so the caller can
// answer with a CONNACK of the right version.
func Decode(p *Packet, fh FixedHeader, body []byte, version byte) error {
	p.Reset()
	if len(body) != fh.Remaining {
		return ErrMalformed
	}
	if err := checkFlags(fh.Type, fh.Flags); err != nil {
		return err
	}
	p.Type = fh.Type
	r := reader{b: body}
	v5 := version == V5
	var err error
	switch fh.Type {
	case Connect:
		err = decodeConnect(p, &r)
	case Connack:
		err = decodeConnack(p, &r, v5)
	case Publish:
		err = decodePublish(p, &r, fh.Flags, v5)
	case Puback, Pubrec, Pubrel, Pubcomp:
		err = decodeAck(p, &r, v5)
	case Subscribe:
		err = decodeSubscribe(p, &r, v5)
	case Suback:
		err = decodeSuback(p, &r, v5)
	case Unsubscribe:
		err = decodeUnsubscribe(p, &r, v5)
	case Unsuback:
		err = decodeUnsuback(p, &r, v5)
	case Pingreq, Pingresp:
		// No variable header or payload: any body is trailing bytes.
	case Disconnect:
		if v5 {
			err = decodeDisconnect(p, &r)
		}
	case Auth:
		if !v5 {
			return ErrReservedType // type 15 is reserved before v5
		}
		err = decodeAuth(p, &r)
	default:
		return ErrReservedType
	}
	if err != nil {
		return err
	}
	if r.more() {
		return ErrTrailing
	}
	return nil
}

func decodeConnect(p *Packet, r *reader) error {
	c := &p.Connect
	// The name is compared, not validated: anything but the two known
	// names is refused as unsupported whatever its encoding.
	name, err := r.binary()
	if err != nil {
		return err
	}
	level, err := r.u8()
	if err != nil {
		return err
	}
	c.ProtocolName, c.Level = name, level
	switch {
	case level == V31 && string(name) == "MQIsdp":
	case (level == V311 || level == V5) && string(name) == "MQTT":
	default:
		return ErrUnsupportedProtocol
	}
	flags, err := r.u8()
	if err != nil {
		return err
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.WillQoS = flags >> 3 & 3
	c.WillRetain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	switch {
	case flags&0x01 != 0: // [MQTT-3.1.2-3]
		return ErrConnectFlags
	case !c.WillFlag && (c.WillQoS != 0 || c.WillRetain): // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
		return ErrConnectFlags
	case c.WillQoS == 3: // [MQTT-3.1.2-12]
		return ErrConnectFlags
	case level < V5 && c.PasswordFlag && !c.UsernameFlag: // 3.1.1 [MQTT-3.1.2-22]; v5 allows it
		return ErrConnectFlags
	}
	if c.KeepAlive, err = r.u16(); err != nil {
		return err
	}
	v5 := level == V5
	if v5 {
		if err := r.properties(&p.Props, Connect); err != nil {
			return err
		}
	}
	// No length limit on the client ID: 3.1 says 23 bytes, but whether to
	// refuse a longer one is the broker's call.
	if c.ClientID, err = r.str(); err != nil {
		return err
	}
	if c.WillFlag {
		if v5 {
			if err := r.properties(&c.WillProps, willProperties); err != nil {
				return err
			}
		}
		if c.WillTopic, err = r.binary(); err != nil {
			return err
		}
		if err := checkTopicName(c.WillTopic); err != nil {
			return err
		}
		// A will topic is a topic name, which must not be empty
		// ([MQTT-4.7.3-1]); CONNACK's code for a bad one is 0x90.
		if len(c.WillTopic) == 0 {
			return ErrTopicNameInvalid
		}
		if c.WillPayload, err = r.binary(); err != nil {
			return err
		}
	}
	if c.UsernameFlag {
		if c.Username, err = r.str(); err != nil {
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.binary(); err != nil {
			return err
		}
	}
	return nil
}

func decodeConnack(p *Packet, r *reader, v5 bool) error {
	flags, err := r.u8()
	if err != nil {
		return err
	}
	if flags&^0x01 != 0 { // bits 7-1 are reserved
		return ErrMalformed
	}
	p.SessionPresent = flags != 0
	if p.ReasonCode, err = r.u8(); err != nil {
		return err
	}
	if !v5 {
		return checkCode(&connackV3Codes, p.ReasonCode)
	}
	if err := checkCode(&connackCodes, p.ReasonCode); err != nil {
		return err
	}
	return r.properties(&p.Props, Connack)
}

func decodePublish(p *Packet, r *reader, flags byte, v5 bool) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 3
	p.Retain = flags&0x01 != 0
	var err error
	if p.Topic, err = r.binary(); err != nil {
		return err
	}
	if err := checkTopicName(p.Topic); err != nil {
		return err
	}
	if p.QoS > 0 {
		if p.PacketID, err = r.packetID(); err != nil {
			return err
		}
	}
	if v5 {
		if err := r.properties(&p.Props, Publish); err != nil {
			return err
		}
	}
	// §3.3.2.1: an empty topic is only allowed when an alias stands in.
	if len(p.Topic) == 0 && p.Props.Present&(1<<PropTopicAlias) == 0 {
		return ErrTopicEmpty
	}
	p.Payload = r.rest()
	return nil
}

// decodeAck decodes PUBACK, PUBREC, PUBREL and PUBCOMP. In v5 the reason
// code may be omitted (Success) and so may the property length when there
// are no properties (§3.4.2.1, §3.4.2.2.1).
func decodeAck(p *Packet, r *reader, v5 bool) error {
	var err error
	if p.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if !v5 || !r.more() {
		return nil
	}
	p.ReasonCode, _ = r.u8()
	codes := &pubackCodes
	if p.Type == Pubrel || p.Type == Pubcomp {
		codes = &pubrelCodes
	}
	if err := checkCode(codes, p.ReasonCode); err != nil {
		return err
	}
	if !r.more() {
		return nil
	}
	return r.properties(&p.Props, p.Type)
}

func decodeSubscribe(p *Packet, r *reader, v5 bool) error {
	var err error
	if p.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v5 {
		if err := r.properties(&p.Props, Subscribe); err != nil {
			return err
		}
	}
	// Filter syntax (wildcard placement, $share) is left to the broker,
	// which answers a bad filter with a per-filter SUBACK code.
	for r.more() {
		f, err := r.str()
		if err != nil {
			return err
		}
		o, err := r.u8()
		if err != nil {
			return err
		}
		s := Subscription{Filter: f, QoS: o & 0x03}
		if v5 {
			if o&0xC0 != 0 { // [MQTT-3.8.3-5]
				return ErrSubscribeReserved
			}
			s.NoLocal = o&0x04 != 0
			s.RetainAsPublished = o&0x08 != 0
			s.RetainHandling = o >> 4 & 0x03
			if s.RetainHandling == 3 {
				return ErrSubscribeOption
			}
		} else if o&0xFC != 0 { // 3.1.1 [MQTT-3-8.3-4]
			return ErrSubscribeReserved
		}
		// v5 §3.8.3.1 makes QoS 3 a Protocol Error; 3.1.1 calls it
		// malformed, but a v3 connection is closed without a code.
		if s.QoS == 3 {
			return ErrSubscribeOption
		}
		p.Filters = append(p.Filters, s)
	}
	if len(p.Filters) == 0 { // [MQTT-3.8.3-2]
		return ErrNoPayload
	}
	return nil
}

func decodeSuback(p *Packet, r *reader, v5 bool) error {
	var err error
	if p.PacketID, err = r.packetID(); err != nil {
		return err
	}
	codes := &subackV3Codes
	if v5 {
		if err := r.properties(&p.Props, Suback); err != nil {
			return err
		}
		codes = &subackCodes
	}
	return decodeCodes(p, r, codes)
}

func decodeUnsubscribe(p *Packet, r *reader, v5 bool) error {
	var err error
	if p.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v5 {
		if err := r.properties(&p.Props, Unsubscribe); err != nil {
			return err
		}
	}
	for r.more() {
		f, err := r.str()
		if err != nil {
			return err
		}
		p.Filters = append(p.Filters, Subscription{Filter: f})
	}
	if len(p.Filters) == 0 { // [MQTT-3.10.3-2]
		return ErrNoPayload
	}
	return nil
}

// decodeUnsuback decodes UNSUBACK, which before v5 is a packet ID alone.
func decodeUnsuback(p *Packet, r *reader, v5 bool) error {
	var err error
	if p.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if !v5 {
		return nil
	}
	if err := r.properties(&p.Props, Unsuback); err != nil {
		return err
	}
	return decodeCodes(p, r, &unsubackCodes)
}

// decodeCodes reads the reason code list that makes up the rest of a SUBACK
// or v5 UNSUBACK: one per filter of the request, so never none.
func decodeCodes(p *Packet, r *reader, allowed *codeSet) error {
	codes := r.rest()
	if len(codes) == 0 {
		return ErrNoPayload
	}
	for _, c := range codes {
		if err := checkCode(allowed, c); err != nil {
			return err
		}
	}
	// Copied rather than aliased: a caller reusing p to build its own
	// SUBACK appends to ReasonCodes and must not write into the read buffer.
	p.ReasonCodes = append(p.ReasonCodes, codes...)
	return nil
}

// decodeDisconnect decodes a v5 DISCONNECT, whose reason code may be omitted
// (Normal disconnection) and whose property length may be omitted when the
// remaining length is 1 (§3.14.2.2.1).
func decodeDisconnect(p *Packet, r *reader) error {
	if !r.more() {
		return nil
	}
	p.ReasonCode, _ = r.u8()
	if err := checkCode(&disconnectCodes, p.ReasonCode); err != nil {
		return err
	}
	if !r.more() {
		return nil
	}
	return r.properties(&p.Props, Disconnect)
}

// decodeAuth decodes AUTH. Only the empty form may omit the property length
// (§3.15.2.1); a reason code alone is truncated.
func decodeAuth(p *Packet, r *reader) error {
	if !r.more() {
		return nil
	}
	p.ReasonCode, _ = r.u8()
	if err := checkCode(&authCodes, p.ReasonCode); err != nil {
		return err
	}
	return r.properties(&p.Props, Auth)
}
