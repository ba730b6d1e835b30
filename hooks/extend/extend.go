// Package extend is the client of the original Coolpy7's "extend service"
// (reference §3.10), wire-compatible with it: CoAP over UDP, POSTs to
// /auth, /sub, /unsub, /pub and /term whose body is a msgpack map, whose
// CoAP token is the shared secret (-ht), and whose answer is a JSON object
// (ok, rep, topic, payload).
package extend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/hooks"
)

// Config configures a Hook.
type Config struct {
	// Addr is the service's host:port (UDP).
	Addr string
	// Token is the shared secret the service checks as the CoAP token
	// (the original's -ht, default "coolpy7"). CoAP tokens are 8 bytes at
	// most.
	Token string
	// Timeout bounds one call; default 2 s.
	Timeout time.Duration
	// Down is the answer when the service does not answer.
	Down hooks.Down
	// CacheTTL keeps a login's allow that long (0: no cache).
	CacheTTL time.Duration
	// Conns is how many calls may be in flight at once, each on its own
	// UDP socket: every request carries the same token, and a CoAP client
	// tells answers apart by token. Default 16.
	Conns int
}

// Hook is the extend service client; it implements hooks.Hooks and, with
// its cache, auth.QuickAuthenticator.
type Hook struct {
	hooks.Base
	down    hooks.Down
	timeout time.Duration
	cache   *hooks.AuthCache
	conns   chan *udpclient.Conn
}

// New dials the service (UDP: nothing is sent until the first call).
func New(c Config) (*Hook, error) {
	if c.Token == "" {
		c.Token = "coolpy7"
	}
	if len(c.Token) > message.MaxTokenSize {
		return nil, fmt.Errorf("extend service token %q: CoAP tokens are at most %d bytes", c.Token, message.MaxTokenSize)
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Conns <= 0 {
		c.Conns = 16
	}
	token := message.Token(c.Token)
	h := &Hook{down: c.Down, timeout: c.Timeout, cache: hooks.NewAuthCache(c.CacheTTL, nil),
		conns: make(chan *udpclient.Conn, c.Conns)}
	for range c.Conns {
		conn, err := udp.Dial(c.Addr, options.WithGetToken(func() (message.Token, error) { return token, nil }))
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("extend service %s: %w", c.Addr, err)
		}
		h.conns <- conn
	}
	return h, nil
}

// Close closes the sockets.
func (h *Hook) Close() error {
	for {
		select {
		case c := <-h.conns:
			c.Close()
		default:
			return nil
		}
	}
}

// Events implements hooks.Hooks: the original's five calls.
func (h *Hook) Events() hooks.Event {
	return hooks.Auth | hooks.Subscribe | hooks.Unsubscribe | hooks.Publish | hooks.Disconnect | hooks.Blocking
}

// Request is the msgpack body: the original's field names.
type Request struct {
	Cid      string `msgpack:"cid"`
	Username string `msgpack:"username,omitempty"`
	Password string `msgpack:"password,omitempty"`
	Remote   string `msgpack:"remote,omitempty"`
	Topic    string `msgpack:"topic,omitempty"`
	Qos      byte   `msgpack:"qos"`
	Payload  []byte `msgpack:"payload,omitempty"`
	Err      string `msgpack:"err,omitempty"`
	Ok       bool   `msgpack:"ok"`
}

// Response is the JSON answer. Topic is a string for /pub and a list for
// /sub and /unsub.
type Response struct {
	Ok      bool            `json:"ok"`
	Rep     bool            `json:"rep"`
	Topic   json.RawMessage `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	Err     string          `json:"err"`
}

var errToken = errors.New("extend service refused the token")

func (h *Hook) call(ctx context.Context, path string, req *Request) (*Response, error) {
	body, err := msgpack.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var conn *udpclient.Conn
	select {
	case conn = <-h.conns:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { h.conns <- conn }()
	resp, err := conn.Post(ctx, path, message.AppOctets, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer conn.ReleaseMessage(resp)
	if resp.Code() != codes.Content && resp.Code() != codes.Changed {
		return nil, fmt.Errorf("extend service %s: %v", path, resp.Code())
	}
	data, err := resp.ReadBody()
	if err != nil {
		return nil, err
	}
	r, err := ParseResponse(data)
	if err != nil {
		return nil, fmt.Errorf("extend service %s: %w", path, err)
	}
	return r, nil
}

// ParseResponse decodes the service's answer: a JSON object, as the
// original's service sends. Its "token error" refusal is an error.
func ParseResponse(data []byte) (*Response, error) {
	var r Response
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if !r.Ok && r.Err == "token error" {
		return nil, errToken
	}
	return &r, nil
}

// notify sends a Non-confirmable message, which the service does not
// answer (the original's /term).
func (h *Hook) notify(ctx context.Context, path string, req *Request) {
	body, err := msgpack.Marshal(req)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var conn *udpclient.Conn
	select {
	case conn = <-h.conns:
	case <-ctx.Done():
		return
	}
	defer func() { h.conns <- conn }()
	m, err := conn.NewPostRequest(ctx, path, message.AppOctets, bytes.NewReader(body))
	if err != nil {
		return
	}
	defer conn.ReleaseMessage(m)
	m.SetType(message.NonConfirmable)
	conn.WriteMessage(m)
}

// AuthenticateQuick implements auth.QuickAuthenticator from the cache.
func (h *Hook) AuthenticateQuick(info *auth.ConnectInfo) (auth.Result, bool) {
	return h.cache.Get(info)
}

// Authenticate implements auth.Authenticator.
func (h *Hook) Authenticate(ctx context.Context, info *auth.ConnectInfo) auth.Result {
	return h.OnAuth(ctx, info)
}

// OnAuth implements hooks.Hooks: ok true allows, false refuses.
func (h *Hook) OnAuth(ctx context.Context, info *auth.ConnectInfo) auth.Result {
	req := &Request{Cid: info.ClientID, Username: info.Username, Password: string(info.Password), Ok: true}
	if info.Addr.IsValid() {
		req.Remote = info.Addr.String()
	}
	r, err := h.call(ctx, "/auth", req)
	if err != nil {
		return hooks.DownResult(h.down, info, err)
	}
	if !r.Ok {
		return auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials}
	}
	res := auth.Result{Decision: auth.Allow, Username: info.Username}
	h.cache.Put(info, res)
	return res
}

// Topics reads a topic answer: a list, or a single string.
func Topics(raw json.RawMessage) []string {
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return []string{s}
	}
	return nil
}

// filter is /sub and /unsub: ok allows the client's filter; with rep, the
// topics listed are subscribed (unsubscribed) too, whatever ok says.
func (h *Hook) filter(ctx context.Context, path string, c *hooks.Client, s *hooks.Subscription) bool {
	r, err := h.call(ctx, path, &Request{Cid: c.ClientID, Topic: s.Filter, Qos: s.QoS, Ok: true})
	if err != nil {
		return h.down == hooks.DownAllow
	}
	if r.Rep {
		s.Extra = Topics(r.Topic)
	}
	return r.Ok
}

// OnSubscribe implements hooks.Hooks.
func (h *Hook) OnSubscribe(ctx context.Context, c *hooks.Client, s *hooks.Subscription) bool {
	return h.filter(ctx, "/sub", c, s)
}

// OnUnsubscribe implements hooks.Hooks.
func (h *Hook) OnUnsubscribe(ctx context.Context, c *hooks.Client, s *hooks.Subscription) bool {
	return h.filter(ctx, "/unsub", c, s)
}

// OnPublish implements hooks.Hooks: ok false drops the message; rep true
// replaces its topic and payload by the answer's.
func (h *Hook) OnPublish(ctx context.Context, c *hooks.Client, m *hooks.Message) bool {
	r, err := h.call(ctx, "/pub", &Request{Cid: c.ClientID, Topic: m.Topic, Qos: m.QoS, Payload: m.Payload, Ok: true})
	if err != nil {
		return h.down == hooks.DownAllow
	}
	if r.Ok && r.Rep {
		if t := Topics(r.Topic); len(t) == 1 {
			m.Topic = t[0]
		}
		if len(r.Payload) > 0 {
			// The original's sample answers a string; anything else is
			// passed on as the JSON it is.
			var s string
			if json.Unmarshal(r.Payload, &s) == nil {
				m.Payload = []byte(s)
			} else {
				m.Payload = []byte(r.Payload)
			}
		}
	}
	return r.Ok
}

// OnDisconnect implements hooks.Hooks: /term, not answered.
func (h *Hook) OnDisconnect(ctx context.Context, c *hooks.Client, err error) {
	req := &Request{Cid: c.ClientID, Ok: true}
	if err != nil {
		req.Err = err.Error()
	}
	h.notify(ctx, "/term", req)
}
