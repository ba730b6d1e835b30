package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/llib/std/crypto/tls"
)

// stream is a connection whose MQTT bytes pass through TLS, WebSocket
// framing or both on their way between a TCP connection of the TCP
// listener's event loops and the Handler. The layers only change the bytes;
// the Handler sees the same events as for plain TCP.
type stream struct {
	conn  Conn // the TCP connection
	l     *layer
	state any     // the Handler's, from Open
	ws    *wsConn // nil for MQTT over TLS

	// mu serialises the TLS record layer: the loop decrypts while other
	// goroutines encrypt PUBLISHes, and llib removed crypto/tls's own
	// locks (a read can answer a KeyUpdate, which writes).
	mu  sync.Mutex
	tls *tls.Conn // nil without TLS

	flow   flow
	closed atomic.Bool
	// shaken is set, under mu, once the handshake is done and released.
	// (It sits here because it fits beside closed: an idle connection's
	// struct stays in the 96-byte size class.)
	shaken bool
	cause  atomic.Pointer[error] // why a layer closed the connection
}

// CertConn is the optional interface of a connection that may have
// arrived over TLS (the TLS and WSS listeners' connections implement it).
// PeerCertificates is the client's certificate chain, leaf first, once the
// handshake is done (always so by the time CONNECT arrives, which is
// encrypted); it is nil when the client sent none or the connection has no
// TLS. A chain that is present was verified against tls_client_ca, so the
// leaf's Subject.CommonName can identify the client; see CommonName.
type CertConn interface {
	Conn
	PeerCertificates() []*x509.Certificate
}

// CommonName is the Subject Common Name of c's client certificate, or ""
// when c carries none.
func CommonName(c Conn) string {
	cc, ok := c.(CertConn)
	if !ok {
		return ""
	}
	if certs := cc.PeerCertificates(); len(certs) > 0 {
		return certs[0].Subject.CommonName
	}
	return ""
}

// layer is the Handler a TLS, WS or WSS listener gives its TCP listener:
// it wraps each connection in a stream and passes the events on to h, the
// broker.
type layer struct {
	h   Handler
	tls *tls.Config // nil for WebSocket
	ws  *wsPolicy   // nil for MQTT over TLS
}

// listen makes the TCP listener that carries a TLS, WS or WSS listener, on
// the same event loops, accept path (close-on-exec included) and
// per-connection footprint as plain MQTT.
func listen(addr string, h Handler, tlsConf *tls.Config, ws *wsPolicy) *TCP {
	return NewTCP(addr, &layer{h: h, tls: tlsConf, ws: ws})
}

// Open wraps c. The broker sees the connection from accept, so its CONNECT
// timeout also bounds a TLS handshake or WebSocket upgrade that stalls,
// with no timer of our own.
func (l *layer) Open(c Conn) any {
	s := &stream{conn: c, l: l}
	if l.tls != nil {
		// No allocator argument: llib then keeps its buffers on the GC
		// heap. With a pooling allocator (nbhttp passes nbio's) a record's
		// buffer goes back to the pool before its plaintext has been
		// copied out, and another goroutine may reuse it.
		s.tls = tls.NewConn(wire{c, &s.flow}, l.tls, false, true)
	}
	if l.ws != nil {
		s.ws = &wsConn{}
	}
	s.state = l.h.Open(s)
	return s
}

func (l *layer) Data(state any, data []byte) { state.(*stream).read(data) }

func (l *layer) Written(state any, n int) {
	s := state.(*stream)
	if m := s.flow.written(n); m > 0 {
		l.h.Written(s.state, m)
	}
}

func (l *layer) Close(state any, err error) {
	s := state.(*stream)
	if cause := s.cause.Load(); cause != nil {
		err = *cause
	}
	l.h.Close(s.state, err)
}

// minPlain is the least room decrypt is given: a whole TLS record.
const minPlain = 16 << 10

// read takes what the socket delivered, on the connection's event loop.
func (s *stream) read(data []byte) {
	if s.tls == nil {
		s.plain(data)
		return
	}
	// Decrypt into the loop's read buffer itself, which the TCP loop hands
	// over whole (64 KB): llib copies the ciphertext into its record
	// buffer before it writes any plaintext.
	out := data[:cap(data)]
	if len(out) < minPlain {
		out = make([]byte, minPlain)
	}
	in := data
	for {
		n, err := s.decrypt(in, out)
		in = nil
		if err != nil {
			s.closeWithError(err)
			return
		}
		if n == 0 {
			return
		}
		s.plain(out[:n])
		if s.closed.Load() {
			return
		}
	}
}

// decrypt feeds ciphertext to TLS (driving the handshake while it runs)
// and reads plaintext into out; 0 bytes means it needs more input.
func (s *stream) decrypt(in, out []byte) (n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		// llib is a fork of Go 1.16's crypto/tls, and panics on malformed
		// handshakes have been fixed upstream since (CVE-2022-41724). On
		// the event loop a panic would take the broker down; it only
		// takes this connection.
		if p := recover(); p != nil {
			err = fmt.Errorf("tls: panic: %v", p)
		}
	}()
	_, n, err = s.tls.AppendAndRead(in, out)
	if err != nil {
		return 0, err
	}
	if !s.shaken && s.tls.ConnectionState().HandshakeComplete {
		s.shaken = true
		releaseHandshake(s.tls)
	}
	if n == 0 {
		// Everything is read: let go of the record buffer, so that an
		// idle connection holds none (it keeps a partial record).
		s.tls.ResetOrFreeBuffer()
	}
	return n, nil
}

// plain handles bytes with TLS removed: WebSocket frames, or MQTT.
func (s *stream) plain(b []byte) {
	if s.ws != nil {
		s.ws.read(s, b)
		return
	}
	s.l.h.Data(s.state, b)
}

// Write sends one whole MQTT packet (a WebSocket message of its own on the
// WebSocket listeners). It does not block.
func (s *stream) Write(b []byte) (int, error) {
	if s.ws != nil {
		return s.ws.write(s, opBinary, b)
	}
	if _, err := s.send(b, len(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// send writes wire-ready bytes (a frame, or MQTT over TLS), of which
// payload bytes are the broker's.
func (s *stream) send(b []byte, payload int) (n int, err error) {
	s.flow.owe(payload)
	if s.tls == nil {
		s.flow.sent(len(b))
		n, err = s.conn.Write(b)
	} else {
		s.mu.Lock()
		n, err = s.tls.Write(b)
		s.mu.Unlock()
	}
	if err != nil {
		// The broker takes a failed write back from its own count.
		s.flow.owe(-payload)
	}
	return n, err
}

// Close says goodbye in each layer (a WebSocket Close frame, a TLS
// close_notify) and closes the socket.
func (s *stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ws != nil {
		s.ws.goodbye(s)
	}
	if s.tls != nil {
		s.mu.Lock()
		// Only completed handshakes get a close_notify; the error for
		// the others says just that.
		_ = s.tls.CloseWrite()
		s.mu.Unlock()
	}
	return s.conn.Close()
}

// closeWithError closes after a protocol error of a layer, which the
// Handler's Close then reports.
func (s *stream) closeWithError(err error) {
	if s.closed.Swap(true) {
		return
	}
	s.cause.Store(&err)
	_ = s.conn.Close()
}

// RemoteAddr is the client's address.
func (s *stream) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// PeerCertificates implements CertConn.
func (s *stream) PeerCertificates() []*x509.Certificate {
	if s.tls == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tls.ConnectionState().PeerCertificates
}

// wire is the net.Conn llib's TLS connection writes to: the TCP
// connection, with the bytes counted for flow. Its input comes from the
// event loop instead (AppendAndRead), and writes never block, so the
// deadlines llib sets around its close_notify have nothing to bound.
type wire struct {
	conn Conn
	flow *flow
}

var errWireRead = errors.New("transport: TLS reads its input from the event loop")

func (w wire) Read([]byte) (int, error) { return 0, errWireRead }
func (w wire) Write(b []byte) (int, error) {
	w.flow.sent(len(b))
	return w.conn.Write(b)
}
func (w wire) Close() error                     { return w.conn.Close() }
func (w wire) LocalAddr() net.Addr              { return nil }
func (w wire) RemoteAddr() net.Addr             { return w.conn.RemoteAddr() }
func (w wire) SetDeadline(time.Time) error      { return nil }
func (w wire) SetReadDeadline(time.Time) error  { return nil }
func (w wire) SetWriteDeadline(time.Time) error { return nil }

// flow converts the socket bytes the TCP loop reports written into the broker's
// bytes, which is what Handler.Written counts: TLS records and WebSocket
// frames add bytes the broker never wrote, and the TLS handshake writes
// bytes of its own. Each report gives the broker its share of what the
// socket took, and everything still owed once nothing waits, so the
// broker's count of bytes waiting cannot drift.
type flow struct {
	wire atomic.Int64 // bytes handed to the TCP connection, not yet reported written
	owed atomic.Int64 // broker bytes not yet reported written
}

func (f *flow) owe(n int)  { f.owed.Add(int64(n)) }
func (f *flow) sent(n int) { f.wire.Add(int64(n)) }

// written converts n socket bytes written into broker bytes.
func (f *flow) written(n int) int {
	left := f.wire.Add(-int64(n))
	if left <= 0 {
		return int(f.owed.Swap(0))
	}
	for {
		owed := f.owed.Load()
		share := owed * int64(n) / (left + int64(n))
		if f.owed.CompareAndSwap(owed, owed-share) {
			return int(share)
		}
	}
}
