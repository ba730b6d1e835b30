package packets

import "math/bits"

// willProperties stands for the will properties of CONNECT wherever a packet
// type selects which properties are allowed; no packet has type 0.
const willProperties = Reserved

// propKind is a property's data type (MQTT 5.0 §2.2.2.2).
type propKind uint8

const (
	propNone   propKind = iota // not a property identifier
	propByte                   // Byte; every byte property is a 0/1 flag
	propUint16                 // Two Byte Integer
	propUint32                 // Four Byte Integer
	propVarint                 // Variable Byte Integer
	propString                 // UTF-8 Encoded String
	propBinary                 // Binary Data
	propPair                   // UTF-8 String Pair
)

// propSpec says how a property is encoded and, as a bit per packet type
// (bit 0 for will properties), where it may appear.
type propSpec struct {
	kind propKind
	in   uint16
}

const (
	inWill    = 1 << willProperties
	inPublish = 1<<Publish | inWill
	inAcks    = 1<<Puback | 1<<Pubrec | 1<<Pubrel | 1<<Pubcomp
	inReason  = 1<<Connack | inAcks | 1<<Suback | 1<<Unsuback | 1<<Disconnect | 1<<Auth
	inAll     = inReason | 1<<Connect | inPublish | 1<<Subscribe | 1<<Unsubscribe
)

// propSpecs is the property table of MQTT 5.0 §2.2.2.2, indexed by ID.
// Encoding writes present properties in ascending ID order.
var propSpecs = [...]propSpec{
	PropPayloadFormat:        {propByte, inPublish},
	PropMessageExpiry:        {propUint32, inPublish},
	PropContentType:          {propString, inPublish},
	PropResponseTopic:        {propString, inPublish},
	PropCorrelationData:      {propBinary, inPublish},
	PropSubscriptionID:       {propVarint, 1<<Publish | 1<<Subscribe},
	PropSessionExpiry:        {propUint32, 1<<Connect | 1<<Connack | 1<<Disconnect},
	PropAssignedClientID:     {propString, 1 << Connack},
	PropServerKeepAlive:      {propUint16, 1 << Connack},
	PropAuthMethod:           {propString, 1<<Connect | 1<<Connack | 1<<Auth},
	PropAuthData:             {propBinary, 1<<Connect | 1<<Connack | 1<<Auth},
	PropRequestProblemInfo:   {propByte, 1 << Connect},
	PropWillDelay:            {propUint32, inWill},
	PropRequestResponseInfo:  {propByte, 1 << Connect},
	PropResponseInfo:         {propString, 1 << Connack},
	PropServerReference:      {propString, 1<<Connack | 1<<Disconnect},
	PropReasonString:         {propString, inReason},
	PropReceiveMaximum:       {propUint16, 1<<Connect | 1<<Connack},
	PropTopicAliasMaximum:    {propUint16, 1<<Connect | 1<<Connack},
	PropTopicAlias:           {propUint16, 1 << Publish},
	PropMaximumQoS:           {propByte, 1 << Connack},
	PropRetainAvailable:      {propByte, 1 << Connack},
	PropUser:                 {propPair, inAll},
	PropMaximumPacketSize:    {propUint32, 1<<Connect | 1<<Connack},
	PropWildcardSubAvailable: {propByte, 1 << Connack},
	PropSubIDAvailable:       {propByte, 1 << Connack},
	PropSharedSubAvailable:   {propByte, 1 << Connack},
}

// propMask holds, per packet type, the Present bits of the properties it may
// carry, so that encoding can skip the others in one AND.
var propMask = func() (m [16]uint64) {
	for id, s := range propSpecs {
		for t := range m {
			if s.in&(1<<t) != 0 {
				m[t] |= 1 << id
			}
		}
	}
	return m
}()

// The field accessors map a property ID to its field so that decoding,
// sizing and encoding are driven by the kind in propSpecs rather than by
// three copies of a switch over every property.

func (p *Properties) byteField(id byte) *byte {
	switch id {
	case PropPayloadFormat:
		return &p.PayloadFormat
	case PropRequestProblemInfo:
		return &p.RequestProblemInfo
	case PropRequestResponseInfo:
		return &p.RequestResponseInfo
	case PropMaximumQoS:
		return &p.MaximumQoS
	case PropRetainAvailable:
		return &p.RetainAvailable
	case PropWildcardSubAvailable:
		return &p.WildcardSubAvailable
	case PropSubIDAvailable:
		return &p.SubIDAvailable
	}
	return &p.SharedSubAvailable
}

func (p *Properties) uint16Field(id byte) *uint16 {
	switch id {
	case PropServerKeepAlive:
		return &p.ServerKeepAlive
	case PropReceiveMaximum:
		return &p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return &p.TopicAliasMaximum
	}
	return &p.TopicAlias
}

func (p *Properties) uint32Field(id byte) *uint32 {
	switch id {
	case PropMessageExpiry:
		return &p.MessageExpiry
	case PropSessionExpiry:
		return &p.SessionExpiry
	case PropWillDelay:
		return &p.WillDelay
	}
	return &p.MaximumPacketSize
}

func (p *Properties) bytesField(id byte) *[]byte {
	switch id {
	case PropContentType:
		return &p.ContentType
	case PropResponseTopic:
		return &p.ResponseTopic
	case PropCorrelationData:
		return &p.CorrelationData
	case PropAssignedClientID:
		return &p.AssignedClientID
	case PropAuthMethod:
		return &p.AuthMethod
	case PropAuthData:
		return &p.AuthData
	case PropResponseInfo:
		return &p.ResponseInfo
	case PropServerReference:
		return &p.ServerReference
	}
	return &p.ReasonString
}

// properties reads a property block (length and properties) into pp for a
// packet of type where.
func (r *reader) properties(pp *Properties, where Type) error {
	n, err := r.varint()
	if err != nil {
		return err
	}
	if n > len(r.b)-r.i {
		return ErrTruncated
	}
	// A sub-reader ending at the block's end keeps a property from reading
	// into the fields that follow the block.
	pr := reader{b: r.b[:r.i+n], i: r.i}
	r.i += n
	for pr.more() {
		id := pr.b[pr.i]
		pr.i++
		// A wrong identifier is Malformed (§2.2.2.2). IDs are variable byte
		// integers but all fit in one byte, so a continuation byte is simply
		// unknown.
		if int(id) >= len(propSpecs) || propSpecs[id].in&(1<<where) == 0 {
			return ErrPropertyID
		}
		bit := uint64(1) << id
		if pp.Present&bit != 0 && id != PropUser && (id != PropSubscriptionID || where != Publish) {
			return ErrDuplicateProperty
		}
		pp.Present |= bit
		if err := pr.property(pp, id); err != nil {
			return err
		}
	}
	// §3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.4.
	if pp.Present&(1<<PropAuthData) != 0 && pp.Present&(1<<PropAuthMethod) == 0 {
		return ErrProtocol
	}
	return nil
}

// property reads the value of property id. The range checks are the ones the
// spec calls Protocol Errors; Topic Alias 0 has its own reason code (§3.3.4).
func (r *reader) property(pp *Properties, id byte) error {
	switch propSpecs[id].kind {
	case propByte:
		v, err := r.u8()
		if err != nil {
			return err
		}
		if v > 1 {
			return ErrPropertyValue
		}
		*pp.byteField(id) = v
	case propUint16:
		v, err := r.u16()
		if err != nil {
			return err
		}
		if v == 0 {
			switch id {
			case PropReceiveMaximum:
				return ErrPropertyValue
			case PropTopicAlias:
				return ErrTopicAliasInvalid
			}
		}
		*pp.uint16Field(id) = v
	case propUint32:
		v, err := r.u32()
		if err != nil {
			return err
		}
		if v == 0 && id == PropMaximumPacketSize {
			return ErrPropertyValue
		}
		*pp.uint32Field(id) = v
	case propVarint:
		v, err := r.varint()
		if err != nil {
			return err
		}
		if v == 0 {
			return ErrPropertyValue
		}
		pp.SubscriptionIDs = append(pp.SubscriptionIDs, uint32(v))
	case propString:
		s, err := r.str()
		if err != nil {
			return err
		}
		*pp.bytesField(id) = s
	case propBinary:
		b, err := r.binary()
		if err != nil {
			return err
		}
		*pp.bytesField(id) = b
	case propPair:
		k, err := r.str()
		if err != nil {
			return err
		}
		v, err := r.str()
		if err != nil {
			return err
		}
		pp.User = append(pp.User, UserProperty{Key: k, Value: v})
	}
	return nil
}

// propsSize is the encoded length of pp's properties allowed in where,
// without the length prefix.
func propsSize(pp *Properties, where Type) int {
	n := 0
	for m := pp.Present & propMask[where]; m != 0; m &= m - 1 {
		id := byte(bits.TrailingZeros64(m))
		switch propSpecs[id].kind {
		case propByte:
			n += 2
		case propUint16:
			n += 3
		case propUint32:
			n += 5
		case propVarint:
			for _, v := range pp.SubscriptionIDs {
				n += 1 + varintLen(int(v))
			}
		case propString, propBinary:
			n += 3 + len(*pp.bytesField(id))
		case propPair:
			for _, u := range pp.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

// appendProps writes a property block whose body propsSize measured as size.
func appendProps(dst []byte, pp *Properties, where Type, size int) []byte {
	dst = AppendVarint(dst, size)
	for m := pp.Present & propMask[where]; m != 0; m &= m - 1 {
		id := byte(bits.TrailingZeros64(m))
		switch propSpecs[id].kind {
		case propByte:
			dst = append(dst, id, *pp.byteField(id))
		case propUint16:
			dst = appendUint16(append(dst, id), *pp.uint16Field(id))
		case propUint32:
			v := *pp.uint32Field(id)
			dst = append(dst, id, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		case propVarint:
			for _, v := range pp.SubscriptionIDs {
				dst = AppendVarint(append(dst, id), int(v))
			}
		case propString, propBinary:
			dst = appendBytes(append(dst, id), *pp.bytesField(id))
		case propPair:
			for _, u := range pp.User {
				dst = appendBytes(appendBytes(append(dst, id), u.Key), u.Value)
			}
		}
	}
	return dst
}
