package packets

// ReadFixedHeader parses the fixed header at the start of b and returns it
// with the number of bytes it took. It does not check that the body is there:
// the caller waits until len(b) >= n+fh.Remaining.
//
// It returns ErrIncomplete when b is too short to tell, ErrVarint when the
// remaining length runs past 4 bytes, ErrReservedType for type 0, and
// ErrFixedHeaderFlags or ErrPublishQoS for flags the type forbids. The first
// byte alone decides the last two, so a bad header is refused before its
// length is read. AUTH (type 15) is accepted here because the level is not
// known; Decode rejects it below v5.
func ReadFixedHeader(b []byte) (FixedHeader, int, error) {
	if len(b) == 0 {
		return FixedHeader{}, 0, ErrIncomplete
	}
	t, flags := Type(b[0]>>4), b[0]&0x0F
	if err := checkFlags(t, flags); err != nil {
		return FixedHeader{}, 0, err
	}
	v, n := readVarint(b[1:])
	switch {
	case n == 0:
		return FixedHeader{}, 0, ErrIncomplete
	case n < 0:
		return FixedHeader{}, 0, ErrVarint
	}
	return FixedHeader{Type: t, Flags: flags, Remaining: v}, 1 + n, nil
}

// checkFlags validates the low nibble of the first byte (MQTT 5.0 §2.1.3:
// invalid flags make a Malformed Packet).
func checkFlags(t Type, flags byte) error {
	switch t {
	case Reserved:
		return ErrReservedType
	case Publish:
		qos := flags >> 1 & 3
		if qos == 3 {
			return ErrPublishQoS // [MQTT-3.3.1-4]
		}
		// [MQTT-3.3.1-2] names no consequence; the flag combination is
		// invalid, which §2.1.3 makes Malformed.
		if qos == 0 && flags&0x08 != 0 {
			return ErrFixedHeaderFlags
		}
	case Pubrel, Subscribe, Unsubscribe:
		if flags != 0x02 {
			return ErrFixedHeaderFlags
		}
	default:
		if flags != 0 {
			return ErrFixedHeaderFlags
		}
	}
	return nil
}
