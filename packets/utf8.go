package packets

import (
	"bytes"
	"unicode/utf8"
)

// ValidUTF8 reports whether b is an MQTT UTF-8 Encoded String (MQTT 5.0
// §1.5.4): well-formed UTF-8 with no surrogate code points and no U+0000.
// Control characters and non-characters pass; the spec lets a receiver
// reject them but does not require it, and clients do send them.
func ValidUTF8(b []byte) bool {
	// Two library passes rather than one hand-written loop: utf8.Valid
	// checks 8 ASCII bytes at a time and IndexByte is vectorised.
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// checkTopicName validates a PUBLISH or will topic in one pass: ErrUTF8 when
// it is not an MQTT string, ErrTopicNameInvalid when it holds a wildcard
// ([MQTT-3.3.2-2]). The spec names no code for a wildcard; 0x90 is the code
// it gives for a topic name that is well formed but not accepted. Wildcards
// are ASCII and cannot occur inside a multi-byte sequence, so skipping over
// those sequences loses nothing.
func checkTopicName(b []byte) error {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '+' || c == '#':
			return ErrTopicNameInvalid
		case c == 0:
			return ErrUTF8
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return ErrUTF8
			}
			i += size - 1
		}
	}
	return nil
}
