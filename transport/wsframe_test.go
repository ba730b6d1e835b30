package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op byte, p []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(p); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i, c := range p {
		f = append(f, c^key[i&3])
	}
	return f
}

// decodeAll feeds chunks to a reader as successive reads and collects the
// data payload and the control frames.
func decodeAll(r *wsReader, chunks [][]byte) (data []byte, ctrls []string, err error) {
	for _, c := range chunks {
		b := append([]byte(nil), c...) // decode works in place
		for len(b) > 0 {
			payload, op, ctrl, rest, err := r.decode(b)
			data = append(data, payload...)
			if err != nil {
				return data, ctrls, err
			}
			if op != 0 {
				ctrls = append(ctrls, fmt.Sprintf("%x:%s", op, ctrl))
			}
			b = rest
		}
	}
	return data, ctrls, nil
}

func TestWSDecodeStreams(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes: a 64-bit length
	mid := big[:300]                                      // a 16-bit length
	var stream []byte
	stream = append(stream, clientFrame(true, opBinary, []byte("one packet"), key)...)
	// A message spanning frames, with a ping between its fragments.
	stream = append(stream, clientFrame(false, opBinary, []byte("frag-a "), key)...)
	stream = append(stream, clientFrame(true, opPing, []byte("hi"), key)...)
	stream = append(stream, clientFrame(false, opContinuation, nil, key)...)
	stream = append(stream, clientFrame(true, opContinuation, []byte("frag-b"), key)...)
	stream = append(stream, clientFrame(true, opBinary, mid, key)...)
	stream = append(stream, clientFrame(true, opBinary, big, key)...)
	stream = append(stream, clientFrame(true, opPong, nil, key)...)
	want := append(append([]byte("one packetfrag-a frag-b"), mid...), big...)

	// Every split point of the first 200 bytes, then random splits: the
	// result must not depend on how reads cut the stream.
	splits := [][]int{nil}
	for i := 1; i < 200; i++ {
		splits = append(splits, []int{i})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var s []int
		for p := rng.IntN(50); p < len(stream); p += 1 + rng.IntN(3000) {
			s = append(s, p)
		}
		splits = append(splits, s)
	}
	for _, s := range splits {
		var chunks [][]byte
		prev := 0
		for _, p := range s {
			chunks = append(chunks, stream[prev:p])
			prev = p
		}
		chunks = append(chunks, stream[prev:])
		var r wsReader
		data, ctrls, err := decodeAll(&r, chunks)
		if err != nil {
			t.Fatalf("split %v: %v", s, err)
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("split %v: payload differs (%d bytes, want %d)", s, len(data), len(want))
		}
		if len(ctrls) != 2 || ctrls[0] != "9:hi" || ctrls[1] != "a:" {
			t.Fatalf("split %v: control frames %q", s, ctrls)
		}
	}
}

func TestWSDecodeErrors(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	unmasked := clientFrame(true, opBinary, []byte("x"), key)
	unmasked[1] &^= 0x80
	unmasked = append(unmasked[:2], []byte("x")...)
	hugeLen := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}
	for name, tc := range map[string]struct {
		in   []byte
		want *wsError
	}{
		"text":            {clientFrame(true, opText, []byte("{}"), key), errWSText},
		"unmasked":        {unmasked, errWSUnmasked},
		"rsv":             {append([]byte{0xC2}, clientFrame(true, opBinary, nil, key)[1:]...), errWSReserved},
		"reserved opcode": {clientFrame(true, 0x3, nil, key), errWSOpcode},
		"lone continue":   {clientFrame(true, opContinuation, []byte("x"), key), errWSContinuation},
		"interleaved": {append(clientFrame(false, opBinary, []byte("a"), key),
			clientFrame(true, opBinary, []byte("b"), key)...), errWSInterleaved},
		"fragmented ping": {clientFrame(false, opPing, nil, key), errWSControl},
		"long ping":       {clientFrame(true, opPing, make([]byte, 126), key), errWSControl},
		"top length bit":  {hugeLen, errWSLength},
	} {
		t.Run(name, func(t *testing.T) {
			var r wsReader
			_, _, err := decodeAll(&r, [][]byte{tc.in})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWSCloseStatus(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		code uint16
		err  error
	}{
		{nil, closeNormal, nil},
		{[]byte{3}, 0, errWSCloseCode},
		{[]byte{0x03, 0xe9}, 1001, nil},
		{[]byte{0x03, 0xed}, 0, errWSCloseCode}, // 1005 must not be sent
		{[]byte{0x0f, 0xa0, 'o', 'k'}, 4000, nil},
		{[]byte{0x03, 0xe8, 0xff}, 0, errWSCloseReason},
	} {
		code, err := closeStatus(tc.p)
		if code != tc.code || !errors.Is(err, tc.err) {
			t.Errorf("closeStatus(%x) = %d, %v; want %d, %v", tc.p, code, err, tc.code, tc.err)
		}
	}
}

func TestWSAppendFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := bytes.Repeat([]byte{7}, n)
		f := appendFrame(nil, opBinary, p)
		if f[0] != 0x82 {
			t.Fatalf("%d: first byte %x", n, f[0])
		}
		hl := headerLen(f[1])
		if !bytes.Equal(f[hl:], p) || f[1]&0x80 != 0 {
			t.Fatalf("%d: header %x, %d payload bytes", n, f[:hl], len(f)-hl)
		}
	}
}

func TestUnmaskMatchesBytewise(t *testing.T) {
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	for pos := range uint8(4) {
		for n := range 40 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := append([]byte(nil), b...)
			for i := range want {
				want[i] ^= key[(int(pos)+i)&3]
			}
			unmask(b, key, pos)
			if !bytes.Equal(b, want) {
				t.Fatalf("pos %d len %d: %x, want %x", pos, n, b, want)
			}
		}
	}
}

// FuzzWSDecode checks that any input, split anywhere, decodes without
// panicking and to the same payload as when read whole.
func FuzzWSDecode(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	f.Add(clientFrame(true, opBinary, []byte("hello"), key), 3)
	f.Add(append(clientFrame(false, opBinary, []byte("a"), key), clientFrame(true, opContinuation, []byte("b"), key)...), 7)
	f.Add(clientFrame(true, opClose, []byte{3, 232}, key), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var whole, parts wsReader
		d1, c1, e1 := decodeAll(&whole, [][]byte{in})
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		d2, c2, e2 := decodeAll(&parts, [][]byte{in[:split], in[split:]})
		if (e1 == nil) != (e2 == nil) || !bytes.Equal(d1, d2) || len(c1) != len(c2) {
			t.Fatalf("whole: %q %q %v; split at %d: %q %q %v", d1, c1, e1, split, d2, c2, e2)
		}
	})
}

func TestFlowNeverDrifts(t *testing.T) {
	var f flow
	rng := rand.New(rand.NewPCG(3, 4))
	reported, owed := 0, 0
	var queue []int // wire bytes waiting, in order
	for range 10000 {
		if rng.IntN(2) == 0 || len(queue) == 0 {
			p := 1 + rng.IntN(500)
			w := p + 2 + rng.IntN(30) // framing or record overhead
			f.owe(p)
			f.sent(w)
			owed += p
			queue = append(queue, w)
			continue
		}
		// The socket takes part of what waits.
		n := 1 + rng.IntN(queue[0])
		if queue[0] -= n; queue[0] == 0 {
			queue = queue[1:]
		}
		r := f.written(n)
		if r < 0 || reported+r > owed {
			t.Fatalf("reported %d then %d, more than the %d written", reported, r, owed)
		}
		reported += r
		if len(queue) == 0 && reported != owed {
			t.Fatalf("drained, but reported %d of %d", reported, owed)
		}
	}
}
