package packets

// Encode appends the wire form of p, for protocol level version, to dst. Any
// version other than V5 writes the 3.1/3.1.1 forms; AUTH, which only v5 has,
// is always written in its v5 form. CONNECT is written for version too: the
// protocol name and level come from it, not from p.Connect.
//
// Encode trusts p: it writes what it is given and does not check it the way
// Decode does. Only v5 properties that p.Props.Present marks and the packet
// type may carry are written, in ascending ID order; strings longer than
// 65535 bytes and packets longer than MaxRemainingLength cannot be encoded.
// v5 PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH take the shortest
// form the spec allows. Encode does not allocate when dst has room.
func Encode(dst []byte, p *Packet, version byte) []byte {
	s := measure(p, version)
	dst = append(dst, byte(p.Type)<<4|headerFlags(p))
	dst = AppendVarint(dst, s.body)
	v5 := version == V5
	switch p.Type {
	case Connect:
		dst = appendConnect(dst, p, version, s)
	case Connack:
		var flags byte
		if p.SessionPresent {
			flags = 0x01
		}
		dst = append(dst, flags, p.ReasonCode)
		if v5 {
			dst = appendProps(dst, &p.Props, Connack, s.props)
		}
	case Publish:
		dst = appendBytes(dst, p.Topic)
		if p.QoS > 0 {
			dst = appendUint16(dst, p.PacketID)
		}
		if v5 {
			dst = appendProps(dst, &p.Props, Publish, s.props)
		}
		dst = append(dst, p.Payload...)
	case Puback, Pubrec, Pubrel, Pubcomp:
		dst = appendUint16(dst, p.PacketID)
		if v5 {
			dst = appendReason(dst, p, s)
		}
	case Subscribe:
		dst = appendUint16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, Subscribe, s.props)
		}
		for i := range p.Filters {
			f := &p.Filters[i]
			o := f.QoS & 0x03
			if v5 {
				o |= f.RetainHandling & 0x03 << 4
				if f.NoLocal {
					o |= 0x04
				}
				if f.RetainAsPublished {
					o |= 0x08
				}
			}
			dst = append(appendBytes(dst, f.Filter), o)
		}
	case Suback, Unsuback:
		dst = appendUint16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, p.Type, s.props)
			dst = append(dst, p.ReasonCodes...)
		} else if p.Type == Suback {
			dst = append(dst, p.ReasonCodes...)
		}
	case Unsubscribe:
		dst = appendUint16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, Unsubscribe, s.props)
		}
		for i := range p.Filters {
			dst = appendBytes(dst, p.Filters[i].Filter)
		}
	case Disconnect:
		if v5 {
			dst = appendReason(dst, p, s)
		}
	case Auth:
		dst = appendReason(dst, p, s)
	}
	return dst
}

// Size returns the length Encode would produce, fixed header included.
func Size(p *Packet, version byte) int {
	n := measure(p, version).body
	return 1 + varintLen(n) + n
}

// sizes are the lengths Encode needs before it writes: the remaining length
// goes first, and each property block is prefixed by its own length.
type sizes struct {
	body      int
	props     int // the packet's property block, without its length
	willProps int // CONNECT's will property block, without its length
}

// block is the length of a property block of n bytes with its length prefix.
func block(n int) int { return varintLen(n) + n }

func measure(p *Packet, version byte) (s sizes) {
	v5 := version == V5
	if v5 || p.Type == Auth {
		s.props = propsSize(&p.Props, p.Type)
	}
	switch p.Type {
	case Connect:
		c := &p.Connect
		s.body = 2 + len(protocolName(version)) + 4 + 2 + len(c.ClientID)
		if v5 {
			s.body += block(s.props)
		}
		if c.WillFlag {
			s.body += 4 + len(c.WillTopic) + len(c.WillPayload)
			if v5 {
				s.willProps = propsSize(&c.WillProps, willProperties)
				s.body += block(s.willProps)
			}
		}
		if c.UsernameFlag {
			s.body += 2 + len(c.Username)
		}
		if c.PasswordFlag {
			s.body += 2 + len(c.Password)
		}
	case Connack:
		s.body = 2
		if v5 {
			s.body += block(s.props)
		}
	case Publish:
		s.body = 2 + len(p.Topic) + len(p.Payload)
		if p.QoS > 0 {
			s.body += 2
		}
		if v5 {
			s.body += block(s.props)
		}
	case Puback, Pubrec, Pubrel, Pubcomp:
		s.body = 2
		if v5 {
			s.body += reasonSize(p, s.props)
		}
	case Subscribe, Unsubscribe:
		s.body = 2
		if v5 {
			s.body += block(s.props)
		}
		per := 2 // filter length
		if p.Type == Subscribe {
			per++ // options byte
		}
		for i := range p.Filters {
			s.body += per + len(p.Filters[i].Filter)
		}
	case Suback, Unsuback:
		s.body = 2
		if v5 {
			s.body += block(s.props) + len(p.ReasonCodes)
		} else if p.Type == Suback {
			s.body += len(p.ReasonCodes)
		}
	case Disconnect:
		if v5 {
			s.body = reasonSize(p, s.props)
		}
	case Auth:
		s.body = reasonSize(p, s.props)
	}
	return s
}

// reasonSize is the length of the optional reason code and property block
// that end v5 PUBACK..PUBCOMP, DISCONNECT and AUTH: nothing for Success
// without properties, else the code, then the block if there are properties.
// AUTH may not drop the block alone (§3.15.2.1).
func reasonSize(p *Packet, props int) int {
	switch {
	case props > 0 || p.Type == Auth && p.ReasonCode != Success:
		return 1 + block(props)
	case p.ReasonCode != Success:
		return 1
	}
	return 0
}

// appendReason writes what reasonSize measured.
func appendReason(dst []byte, p *Packet, s sizes) []byte {
	switch n := reasonSize(p, s.props); {
	case n > 1:
		return appendProps(append(dst, p.ReasonCode), &p.Props, p.Type, s.props)
	case n == 1:
		return append(dst, p.ReasonCode)
	}
	return dst
}

func appendConnect(dst []byte, p *Packet, version byte, s sizes) []byte {
	c := &p.Connect
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	// Will QoS and retain only go with a will: Decode refuses them alone.
	if c.WillFlag {
		flags |= 0x04 | c.WillQoS&0x03<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if c.PasswordFlag {
		flags |= 0x40
	}
	if c.UsernameFlag {
		flags |= 0x80
	}
	dst = appendString(dst, protocolName(version))
	dst = append(dst, version, flags, byte(c.KeepAlive>>8), byte(c.KeepAlive))
	v5 := version == V5
	if v5 {
		dst = appendProps(dst, &p.Props, Connect, s.props)
	}
	dst = appendBytes(dst, c.ClientID)
	if c.WillFlag {
		if v5 {
			dst = appendProps(dst, &c.WillProps, willProperties, s.willProps)
		}
		dst = appendBytes(dst, c.WillTopic)
		dst = appendBytes(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendBytes(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBytes(dst, c.Password)
	}
	return dst
}

func protocolName(version byte) string {
	if version == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// headerFlags is the low nibble of the first byte (§2.1.3).
func headerFlags(p *Packet) byte {
	switch p.Type {
	case Publish:
		f := p.QoS & 0x03 << 1
		if p.Dup {
			f |= 0x08
		}
		if p.Retain {
			f |= 0x01
		}
		return f
	case Pubrel, Subscribe, Unsubscribe:
		return 0x02
	}
	return 0
}

func appendUint16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}

// appendBytes writes a UTF-8 string or binary data field: length, then bytes.
func appendBytes(dst, b []byte) []byte {
	return append(appendUint16(dst, uint16(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(appendUint16(dst, uint16(len(s))), s...)
}
