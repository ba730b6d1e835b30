package packets

// AppendVarint appends v as an MQTT variable byte integer (MQTT 5.0 §1.5.5)
// using the fewest bytes, as the spec requires of senders. v must be in
// [0, MaxRemainingLength]; larger values would need a fifth byte no receiver
// accepts.
func AppendVarint(dst []byte, v int) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// varintLen is the length AppendVarint gives v.
func varintLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	}
	return 4
}

// readVarint decodes the variable byte integer at the start of b and returns
// it with the number of bytes it took. n is 0 when b ends inside the integer
// and -1 when a fourth byte still has its continuation bit set. Non-minimal
// encodings are accepted: the minimum-length rule binds senders only.
func readVarint(b []byte) (v, n int) {
	for i := 0; i < 4; i++ {
		if i == len(b) {
			return 0, 0
		}
		c := b[i]
		v |= int(c&0x7F) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}
