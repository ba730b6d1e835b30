package transport

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// WebSocket listens for MQTT over WebSocket (port 8083 by convention), or
// over secure WebSocket (8084) when given a ServerTLS, on the TCP
// listener's event loops. Any request path is accepted; clients
// conventionally use /mqtt. The upgrade request and the frames are handled
// here, without nbhttp: docs/transport.md says why.
type WebSocket struct {
	*TCP
}

// WSOptions configures a WebSocket listener.
type WSOptions struct {
	// Origins lists the Origin header values (scheme://host[:port]) a
	// browser may connect from; "*" or an empty list allows any. A request
	// without an Origin header does not come from a browser and is
	// allowed: Origin protects browser users, and other clients can send
	// any Origin they like.
	Origins []string
}

// NewWebSocket makes a WebSocket listener on addr that reports to h; t is
// nil for plain WebSocket.
func NewWebSocket(addr string, o WSOptions, t *ServerTLS, h Handler) *WebSocket {
	p := &wsPolicy{}
	for _, origin := range o.Origins {
		if origin == "*" {
			p.origins = nil
			break
		}
		if p.origins == nil {
			p.origins = make(map[string]bool)
		}
		p.origins[normalOrigin(origin)] = true
	}
	if t == nil {
		return &WebSocket{listen(addr, h, nil, p)}
	}
	return &WebSocket{listen(addr, h, t.conf, p)}
}

// wsPolicy is what a WebSocket listener accepts.
type wsPolicy struct {
	origins map[string]bool // nil allows any origin
}

// subprotocols are the WebSocket subprotocols MQTT clients offer: "mqtt"
// is the standard one (MQTT 3.1.1 §6, 5.0 §6), "mqttv3.1" is what MQTT 3.1
// clients sent, and "mqttv5" what some MQTT 5 clients send.
var subprotocols = []string{"mqtt", "mqttv3.1", "mqttv5"}

// maxUpgradeRequest bounds the upgrade request's header; browsers send
// well under 2 KB.
const maxUpgradeRequest = 8 << 10

// wsConn is a stream's WebSocket layer.
type wsConn struct {
	req  []byte      // the upgrade request while its header is incomplete
	open atomic.Bool // upgraded: frames flow
	done bool        // a Close frame or an error ended the input
	r    wsReader
}

var errWSNotOpen = errors.New("websocket: not upgraded yet")

// read handles bytes from the client, on the event loop.
func (w *wsConn) read(s *stream, b []byte) {
	if w.done {
		return
	}
	if !w.open.Load() {
		if b = w.upgrade(s, b); !w.open.Load() {
			return
		}
	}
	for len(b) > 0 && !w.done && !s.closed.Load() {
		payload, op, ctrl, rest, err := w.r.decode(b)
		if len(payload) > 0 {
			s.l.h.Data(s.state, payload)
		}
		if err != nil {
			w.fail(s, err)
			return
		}
		if op != 0 && !s.closed.Load() {
			w.control(s, op, ctrl)
		}
		b = rest
	}
}

// control answers a control frame.
func (w *wsConn) control(s *stream, op byte, p []byte) {
	switch op {
	case opPing:
		_, _ = w.write(s, opPong, p)
	case opClose:
		code, err := closeStatus(p)
		if err != nil {
			w.fail(s, err)
			return
		}
		// Echo the status, as RFC 6455 §5.5.1 suggests, then close: the
		// Handler sees a network close, so a will is published unless
		// MQTT's own DISCONNECT came first.
		w.done = true
		_, _ = w.write(s, opClose, closePayload(code))
		s.closeWithError(errWSClosed)
	}
}

// fail closes the connection after a framing error, telling the client
// why in a Close frame.
func (w *wsConn) fail(s *stream, err error) {
	w.done = true
	var we *wsError
	if errors.As(err, &we) {
		_, _ = w.write(s, opClose, closePayload(we.code))
	}
	s.closeWithError(err)
}

// goodbye sends the Close frame of a close the broker decided on.
func (w *wsConn) goodbye(s *stream) {
	if w.open.Load() {
		_, _ = w.write(s, opClose, closePayload(closeNormal))
	}
}

func closePayload(code uint16) []byte { return []byte{byte(code >> 8), byte(code)} }

// framePool holds frame buffers: the broker writes from many goroutines,
// and a frame is only needed until the write returns (nbio copies what the
// socket does not take at once).
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// write sends p as one frame; only binary frames carry the broker's bytes.
func (w *wsConn) write(s *stream, op byte, p []byte) (int, error) {
	if !w.open.Load() {
		return 0, errWSNotOpen
	}
	bp := framePool.Get().(*[]byte)
	f := appendFrame((*bp)[:0], op, p)
	payload := 0
	if op == opBinary {
		payload = len(p)
	}
	_, err := s.send(f, payload)
	if cap(f) <= 64<<10 {
		*bp = f[:0]
		framePool.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// upgrade collects the HTTP upgrade request and answers it, returning
// what followed the request in b (frames a client sent without waiting).
func (w *wsConn) upgrade(s *stream, b []byte) []byte {
	buf, from := b, 0
	if w.req != nil {
		from = max(len(w.req)-3, 0)
		w.req = append(w.req, b...)
		buf = w.req
	}
	end := bytes.Index(buf[from:], []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxUpgradeRequest {
			w.refuse(s, &upgradeError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request header too large"})
		} else if w.req == nil {
			// The request goes on in the next read; b is the loop's.
			w.req = append([]byte(nil), b...)
		}
		return nil
	}
	end += from + 4
	w.req = nil
	if end > maxUpgradeRequest {
		w.refuse(s, &upgradeError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request header too large"})
		return nil
	}
	accept, proto, uerr := parseUpgrade(buf[:end], s.l.ws)
	if uerr != nil {
		w.refuse(s, uerr)
		return nil
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n"
	if proto != "" {
		resp += "Sec-WebSocket-Protocol: " + proto + "\r\n"
	}
	if _, err := s.send([]byte(resp+"\r\n"), 0); err != nil {
		w.done = true
		s.closeWithError(err)
		return nil
	}
	w.open.Store(true)
	return buf[end:]
}

// refuse answers a request that cannot be upgraded and closes.
func (w *wsConn) refuse(s *stream, e *upgradeError) {
	w.done = true
	body := e.msg + "\n"
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n%s",
		e.status, http.StatusText(e.status), len(body), e.header, body)
	_, _ = s.send([]byte(resp), 0)
	s.closeWithError(e)
}

// upgradeError is a refused upgrade: the HTTP status, why, and any header
// lines the answer needs.
type upgradeError struct {
	status int
	msg    string
	header string
}

func (e *upgradeError) Error() string {
	return fmt.Sprintf("websocket: upgrade refused (%d): %s", e.status, e.msg)
}

// parseUpgrade checks an opening handshake (RFC 6455 §4.2.1) and returns
// the Sec-WebSocket-Accept value and the chosen subprotocol.
func parseUpgrade(head []byte, p *wsPolicy) (accept, proto string, err *upgradeError) {
	lines := strings.Split(string(head[:len(head)-4]), "\r\n")
	method, rest, ok1 := strings.Cut(lines[0], " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || target == "" || version != "HTTP/1.1" {
		return "", "", &upgradeError{status: http.StatusBadRequest, msg: "malformed request line"}
	}
	if method != http.MethodGet {
		return "", "", &upgradeError{status: http.StatusMethodNotAllowed, msg: "WebSocket upgrades use GET", header: "Allow: GET\r\n"}
	}
	var upgrade, connection, key, wsVersion, origin []string
	var offered []string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return "", "", &upgradeError{status: http.StatusBadRequest, msg: "malformed header line"}
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "upgrade":
			upgrade = append(upgrade, value)
		case "connection":
			connection = append(connection, value)
		case "sec-websocket-key":
			key = append(key, value)
		case "sec-websocket-version":
			wsVersion = append(wsVersion, value)
		case "origin":
			origin = append(origin, value)
		case "sec-websocket-protocol":
			offered = append(offered, tokens(value)...)
		}
	}
	if !hasToken(upgrade, "websocket") {
		return "", "", &upgradeError{status: http.StatusUpgradeRequired, msg: "this is an MQTT over WebSocket endpoint",
			header: "Upgrade: websocket\r\nConnection: Upgrade\r\n"}
	}
	if !hasToken(connection, "upgrade") {
		return "", "", &upgradeError{status: http.StatusBadRequest, msg: "Connection header lacks upgrade"}
	}
	if len(wsVersion) != 1 || wsVersion[0] != "13" {
		return "", "", &upgradeError{status: http.StatusUpgradeRequired, msg: "WebSocket version 13 only",
			header: "Sec-WebSocket-Version: 13\r\n"}
	}
	if len(key) != 1 {
		return "", "", &upgradeError{status: http.StatusBadRequest, msg: "one Sec-WebSocket-Key needed"}
	}
	if k, err := base64.StdEncoding.DecodeString(key[0]); err != nil || len(k) != 16 {
		return "", "", &upgradeError{status: http.StatusBadRequest, msg: "Sec-WebSocket-Key is not 16 bytes in base64"}
	}
	if len(origin) > 1 || len(origin) == 1 && p.origins != nil && !p.origins[normalOrigin(origin[0])] {
		return "", "", &upgradeError{status: http.StatusForbidden, msg: "origin not allowed"}
	}
	if len(offered) > 0 {
		proto = pickSubprotocol(offered)
		if proto == "" {
			return "", "", &upgradeError{status: http.StatusBadRequest,
				msg: "no supported subprotocol offered; want one of " + strings.Join(subprotocols, ", ")}
		}
	}
	sum := sha1.Sum([]byte(key[0] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:]), proto, nil
}

// pickSubprotocol is the client's first offer that MQTT uses, or "". A
// client that offers none is taken to speak MQTT: MQTT requires clients
// to offer "mqtt", but some embedded and mini-program clients do not.
func pickSubprotocol(offered []string) string {
	for _, o := range offered {
		for _, s := range subprotocols {
			if o == s {
				return s
			}
		}
	}
	return ""
}

// tokens splits a comma-separated header value.
func tokens(v string) []string {
	var out []string
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.Trim(t, " \t"); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// hasToken reports whether any of the header values lists token,
// case-insensitively.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range tokens(v) {
			if strings.EqualFold(t, token) {
				return true
			}
		}
	}
	return false
}

// normalOrigin lower-cases an origin and drops a trailing slash, so that
// configured origins match what browsers send.
func normalOrigin(o string) string { return strings.TrimSuffix(strings.ToLower(o), "/") }
