package transport

import (
	"encoding/binary"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes (RFC 6455 §7.4.1).
const (
	closeNormal      = 1000
	closeProtocol    = 1002
	closeUnsupported = 1003
	closeInvalidData = 1007
)

// wsError is a framing error; code goes into the Close frame sent before
// the connection is closed.
type wsError struct {
	code uint16
	msg  string
}

func (e *wsError) Error() string { return "websocket: " + e.msg }

var (
	errWSReserved     = &wsError{closeProtocol, "reserved bits set without an extension"}
	errWSUnmasked     = &wsError{closeProtocol, "unmasked client frame"}
	errWSText         = &wsError{closeUnsupported, "text frame; MQTT travels in binary frames"}
	errWSOpcode       = &wsError{closeProtocol, "reserved opcode"}
	errWSContinuation = &wsError{closeProtocol, "continuation frame outside a message"}
	errWSInterleaved  = &wsError{closeProtocol, "new message before the last one ended"}
	errWSControl      = &wsError{closeProtocol, "fragmented or oversized control frame"}
	errWSLength       = &wsError{closeProtocol, "frame length has its top bit set"}
	errWSCloseCode    = &wsError{closeProtocol, "invalid close status"}
	errWSCloseReason  = &wsError{closeInvalidData, "close reason is not UTF-8"}
	errWSClosed       = &wsError{closeNormal, "closed by the client"}
)

// wsReader decodes the frames a client sends (RFC 6455 §5) as a stream:
// payload bytes go to the broker as they arrive, because the broker finds
// MQTT packet boundaries itself. So a message spanning frames, a frame
// holding several packets and a frame split over reads need no buffer
// here, and an idle connection keeps only this struct.
type wsReader struct {
	head    [14]byte // the current frame's header while it is incomplete
	nhead   uint8
	inFrame bool // the header is complete; remain payload bytes follow
	op      byte
	mask    [4]byte
	pos     uint8 // payload bytes read so far mod 4, the mask offset
	remain  uint64
	msgOpen bool   // a binary message is waiting for continuation frames
	ctrl    []byte // a control frame's payload split over reads
}

// decode reads frames from b. It unmasks data-frame payload and moves it
// to the front of b, returned as payload, and stops after a whole control
// frame, returning its opcode and payload (op 0 when there was none); rest
// is the part of b not yet decoded. The payload is valid until rest is
// decoded.
func (r *wsReader) decode(b []byte) (payload []byte, op byte, ctrl, rest []byte, err error) {
	w, i := 0, 0
	for i < len(b) {
		if !r.inFrame {
			n, err := r.header(b[i:])
			i += n
			if err != nil {
				return b[:w], 0, nil, nil, err
			}
			if !r.inFrame {
				break
			}
			if r.remain == 0 {
				r.inFrame = false
				if r.op >= opClose {
					return b[:w], r.op, nil, b[i:], nil
				}
				continue
			}
		}
		take := len(b) - i
		if uint64(take) > r.remain {
			take = int(r.remain)
		}
		chunk := b[i : i+take]
		unmask(chunk, r.mask, r.pos)
		r.pos = uint8((int(r.pos) + take) & 3)
		r.remain -= uint64(take)
		i += take
		if r.op < opClose {
			w += copy(b[w:], chunk)
			r.inFrame = r.remain > 0
			continue
		}
		if r.remain > 0 {
			r.ctrl = append(r.ctrl, chunk...)
			break
		}
		r.inFrame = false
		if r.ctrl != nil {
			chunk = append(r.ctrl, chunk...)
			r.ctrl = nil
		}
		return b[:w], r.op, chunk, b[i:], nil
	}
	return b[:w], 0, nil, nil, nil
}

// header consumes the bytes of a frame header from b, returning how many
// it took; r.inFrame tells whether the header is now complete.
func (r *wsReader) header(b []byte) (int, error) {
	n := 0
	for {
		need := 2
		if r.nhead >= 2 {
			need = headerLen(r.head[1])
		}
		if int(r.nhead) >= need {
			break
		}
		if n == len(b) {
			return n, nil
		}
		c := copy(r.head[r.nhead:need], b[n:])
		r.nhead += uint8(c)
		n += c
	}
	h := r.head[:r.nhead]
	r.nhead = 0
	fin, op := h[0]&0x80 != 0, h[0]&0x0f
	if h[0]&0x70 != 0 {
		return n, errWSReserved
	}
	if h[1]&0x80 == 0 {
		return n, errWSUnmasked
	}
	length, m := uint64(h[1]&0x7f), 2
	switch length {
	case 126:
		length, m = uint64(binary.BigEndian.Uint16(h[2:])), 4
	case 127:
		length, m = binary.BigEndian.Uint64(h[2:]), 10
		if length>>63 != 0 {
			return n, errWSLength
		}
	}
	switch op {
	case opBinary, opContinuation:
		if op == opBinary && r.msgOpen {
			return n, errWSInterleaved
		}
		if op == opContinuation && !r.msgOpen {
			return n, errWSContinuation
		}
		r.msgOpen = !fin
	case opText:
		return n, errWSText
	case opClose, opPing, opPong:
		if !fin || length > 125 {
			return n, errWSControl
		}
	default:
		return n, errWSOpcode
	}
	copy(r.mask[:], h[m:m+4])
	r.op, r.remain, r.pos, r.inFrame = op, length, 0, true
	return n, nil
}

// headerLen is the length of a frame header given its second byte.
func headerLen(b1 byte) int {
	n := 2
	if b1&0x80 != 0 {
		n += 4
	}
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	return n
}

// unmask XORs b with the masking key, starting pos bytes into it.
func unmask(b []byte, key [4]byte, pos uint8) {
	if len(b) >= 8 {
		// Rotate the key to start at pos, then go eight bytes at a time.
		var k [8]byte
		for i := range k {
			k[i] = key[(int(pos)+i)&3]
		}
		k64 := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[(int(pos)+i)&3]
	}
}

// closeStatus checks a Close frame's payload (RFC 6455 §5.5.1, §7.4) and
// returns the status to echo.
func closeStatus(p []byte) (uint16, error) {
	switch {
	case len(p) == 0:
		return closeNormal, nil
	case len(p) == 1:
		return 0, errWSCloseCode
	}
	code := binary.BigEndian.Uint16(p)
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
	default:
		return 0, errWSCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return 0, errWSCloseReason
	}
	return code, nil
}

// appendFrame appends a server frame (unmasked, final) holding p.
func appendFrame(dst []byte, op byte, p []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(p); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, p...)
}
