package transport

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/lesismal/llib/std/crypto/tls"
)

// handshakeField is a field of llib's tls.Conn that releaseHandshake
// clears. Fields are found by name, so that an llib upgrade which renames
// one fails loudly at start-up (and in the tests) instead of leaking
// quietly.
type handshakeField struct {
	offset uintptr
	typ    reflect.Type
}

var handshakeFields, handBuf, handOff = findHandshakeFields()

func findHandshakeFields() (drop []handshakeField, hand, off handshakeField) {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, kind reflect.Kind) handshakeField {
		f, ok := t.FieldByName(name)
		if !ok || f.Type.Kind() != kind {
			panic(fmt.Sprintf("transport: llib's tls.Conn has no %s field %q; review releaseHandshake for this llib version", kind, name))
		}
		return handshakeField{f.Offset, f.Type}
	}
	for _, name := range []string{"clientHello", "serverHello", "hs", "hs13", "certMsg"} {
		drop = append(drop, field(name, reflect.Pointer))
	}
	drop = append(drop, field("certMsgVerified", reflect.Slice))
	return drop, field("hand", reflect.Pointer), field("handOff", reflect.Int)
}

func (f handshakeField) in(c *tls.Conn) reflect.Value {
	return reflect.NewAt(f.typ, unsafe.Add(unsafe.Pointer(c), f.offset)).Elem()
}

// releaseHandshake drops what c keeps of its finished handshake.
//
// llib keeps a connection's whole handshake for the connection's life:
// the parsed ClientHello and ServerHello, the handshake state with its
// secrets and transcript, the client's Certificate message, and the
// buffer the handshake messages were read into. crypto/tls drops all of
// that when the handshake ends; in llib it is about 7 KB of an idle TLS
// connection's 9 KB, and the handshake secrets stay in memory. llib has no
// call to drop it, hence this. Once the handshake is complete those fields
// are only read by code that runs during a handshake (a server never
// renegotiates) and by the ClientHello/ServerHello getters, which are not
// called here. The handshake-message buffer goes only when nothing is left
// in it (a post-handshake message cut in two by the network keeps it).
func releaseHandshake(c *tls.Conn) {
	for _, f := range handshakeFields {
		f.in(c).SetZero()
	}
	hand, off := handBuf.in(c), handOff.in(c)
	if !hand.IsNil() && hand.Elem().Len() == int(off.Int()) {
		hand.SetZero()
		off.SetInt(0)
	}
}
