package packets

// reader walks a packet body. It lives on the decoder's stack; every slice it
// returns points into the body, capped at its own end so that appending to a
// decoded field can never overwrite the bytes after it.
type reader struct {
	b []byte
	i int
}

func (r *reader) more() bool { return r.i < len(r.b) }

func (r *reader) u8() (byte, error) {
	if r.i >= len(r.b) {
		return 0, ErrTruncated
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) u16() (uint16, error) {
	if len(r.b)-r.i < 2 {
		return 0, ErrTruncated
	}
	v := uint16(r.b[r.i])<<8 | uint16(r.b[r.i+1])
	r.i += 2
	return v, nil
}

func (r *reader) u32() (uint32, error) {
	if len(r.b)-r.i < 4 {
		return 0, ErrTruncated
	}
	b := r.b[r.i : r.i+4]
	r.i += 4
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

func (r *reader) varint() (int, error) {
	v, n := readVarint(r.b[r.i:])
	switch {
	case n == 0:
		return 0, ErrTruncated
	case n < 0:
		return 0, ErrVarint
	}
	r.i += n
	return v, nil
}

// binary reads Binary Data: a two-byte length and that many bytes.
func (r *reader) binary() ([]byte, error) {
	n, err := r.u16()
	if err != nil {
		return nil, err
	}
	end := r.i + int(n)
	if end > len(r.b) {
		return nil, ErrTruncated
	}
	s := r.b[r.i:end:end]
	r.i = end
	return s, nil
}

// str reads a UTF-8 Encoded String; ill-formed ones are Malformed (§1.5.4).
func (r *reader) str() ([]byte, error) {
	s, err := r.binary()
	if err == nil && !ValidUTF8(s) {
		err = ErrUTF8
	}
	return s, err
}

// rest returns everything left, for payloads that run to the packet's end.
func (r *reader) rest() []byte {
	s := r.b[r.i:len(r.b):len(r.b)]
	r.i = len(r.b)
	return s
}

// packetID reads a Packet Identifier, which every packet carrying one must
// set to non-zero ([MQTT-2.2.1-3]; the PUBACK..UNSUBACK replies echo it).
func (r *reader) packetID() (uint16, error) {
	id, err := r.u16()
	if err == nil && id == 0 {
		err = ErrPacketID
	}
	return id, err
}
