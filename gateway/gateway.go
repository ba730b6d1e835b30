// Package gateway turns publish requests that arrive over HTTP or CoAP into
// broker publishes: it reads their credentials and parameters, decodes
// JSON and batch bodies, authenticates the publisher through the same chain
// as MQTT CONNECT and checks the topic against its ACL. httpapi and coapgw
// share it, so both forms answer alike.
package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/broker"
)

// Authorizer authenticates a publisher and gives its topic ACL: the same
// chain and ACL as MQTT CONNECT (broker.Server.Authorize).
type Authorizer func(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL)

// Kind classifies an error, which decides the HTTP status or CoAP code.
type Kind int

const (
	BadRequest   Kind = iota + 1 // 400, 4.00
	Unauthorized                 // 401, 4.01: missing or wrong credentials
	Forbidden                    // 403, 4.03: the ACL does not allow the topic
	TooLarge                     // 413, 4.13
	Unavailable                  // 503, 5.03
)

// Error is a refused request.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func bad(format string, a ...any) *Error {
	return &Error{Kind: BadRequest, Msg: fmt.Sprintf(format, a...)}
}

// Credentials are what a request authenticates with.
type Credentials struct {
	Username string
	Password []byte
}

// ParseBasic reads "Basic base64(user:pass)" or, as the original accepted
// for token authentication, "Basic <jwt>". A JWT is never valid standard
// base64 (its segments are joined by dots), so the two cannot be confused.
// An empty header is anonymous.
func ParseBasic(h string) (Credentials, error) {
	if h == "" {
		return Credentials{}, nil
	}
	scheme, v, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return Credentials{}, &Error{Kind: Unauthorized, Msg: "authorization must be Basic"}
	}
	v = strings.TrimSpace(v)
	if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credentials{}, &Error{Kind: Unauthorized, Msg: "basic credentials need user:password"}
		}
		return Credentials{Username: user, Password: []byte(pass)}, nil
	}
	if strings.Count(v, ".") == 2 {
		return Credentials{Password: []byte(v)}, nil
	}
	return Credentials{}, &Error{Kind: Unauthorized, Msg: "basic credentials are neither base64 nor a JWT"}
}

// Message is one message to publish, in any of the request forms.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// ParseRawQuery parses "k=v&k=v" with percent-escapes but, unlike
// url.ParseQuery, keeps '+' as itself: a '+' in a topic is a wildcard, and
// reading it as a space would publish "a/ " for "a/+" instead of refusing
// it. (The original turned spaces back into '+' for the same reason, which
// broke topics with spaces.)
func ParseRawQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.PathUnescape(k)
		if err != nil {
			return nil, bad("query error: %v", err)
		}
		if v, err = url.PathUnescape(v); err != nil {
			return nil, bad("query error: %v", err)
		}
		q[k] = append(q[k], v)
	}
	return q, nil
}

// ParseQuery reads clientid, topic, qos and retain, refusing any other key.
// topic is optional when the body carries it (JSON forms): requireTopic
// says whether it must be here.
func ParseQuery(q url.Values, requireTopic bool) (clientID string, m Message, err error) {
	for k := range q {
		switch k {
		case "clientid", "topic", "qos", "retain":
		default:
			return "", m, bad("unknown query key %q", k)
		}
	}
	clientID = q.Get("clientid")
	m.Topic = q.Get("topic")
	if requireTopic && m.Topic == "" {
		return "", m, bad("topic missing")
	}
	if s := q.Get("qos"); s != "" {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil || n > 2 {
			return "", m, bad("qos must be 0, 1 or 2")
		}
		m.QoS = byte(n)
	}
	if s := q.Get("retain"); s != "" {
		if m.Retain, err = strconv.ParseBool(s); err != nil {
			return "", m, bad("retain must be true or false")
		}
	}
	return clientID, m, nil
}

// jsonMessage is the JSON form of a message.
type jsonMessage struct {
	Topic    string `json:"topic"`
	Payload  string `json:"payload"`
	QoS      *int   `json:"qos"`
	Retain   bool   `json:"retain"`
	Encoding string `json:"encoding"` // "" or "utf8" for text, "base64"
}

func (j *jsonMessage) message() (Message, error) {
	m := Message{Topic: j.Topic, Retain: j.Retain, Payload: []byte(j.Payload)}
	if j.Topic == "" {
		return m, bad("topic missing")
	}
	if j.QoS != nil {
		if *j.QoS < 0 || *j.QoS > 2 {
			return m, bad("qos must be 0, 1 or 2")
		}
		m.QoS = byte(*j.QoS)
	}
	switch j.Encoding {
	case "", "utf8":
	case "base64":
		p, err := base64.StdEncoding.DecodeString(j.Payload)
		if err != nil {
			return m, bad("payload is not valid base64: %v", err)
		}
		m.Payload = p
	default:
		return m, bad("encoding must be utf8 or base64")
	}
	return m, nil
}

func decoder(body []byte) *json.Decoder {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	return d
}

// trailing makes sure nothing but white space follows the JSON value.
func trailing(d *json.Decoder) error {
	if _, err := d.Token(); err != io.EOF {
		return bad("bad JSON: data after the value")
	}
	return nil
}

// DecodeJSON reads {"topic","payload","qos","retain","encoding"}.
func DecodeJSON(body []byte) (Message, error) {
	var j jsonMessage
	d := decoder(body)
	if err := d.Decode(&j); err != nil {
		return Message{}, bad("bad JSON: %v", err)
	}
	if err := trailing(d); err != nil {
		return Message{}, err
	}
	return j.message()
}

// DecodeBatch reads a JSON array of messages in the JSON form, at most max
// of them. One bad message refuses the whole batch, before any is
// published, and the error names its index.
func DecodeBatch(body []byte, max int) ([]Message, error) {
	var js []jsonMessage
	d := decoder(body)
	if err := d.Decode(&js); err != nil {
		return nil, bad("bad JSON: %v", err)
	}
	if err := trailing(d); err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, bad("empty batch")
	}
	if len(js) > max {
		return nil, bad("batch of %d messages; at most %d", len(js), max)
	}
	out := make([]Message, len(js))
	for i := range js {
		m, err := js[i].message()
		if err != nil {
			return nil, bad("message %d: %v", i, err)
		}
		out[i] = m
	}
	return out, nil
}

// Publisher authenticates and publishes.
type Publisher struct {
	b            *broker.Server
	authz        Authorizer
	authFailures atomic.Int64
	aclDenied    atomic.Int64
	published    [3]atomic.Int64
}

// NewPublisher makes a Publisher.
func NewPublisher(b *broker.Server, authz Authorizer) *Publisher {
	return &Publisher{b: b, authz: authz}
}

// Counts are a Publisher's counters.
type Counts struct {
	AuthFailures, ACLDenied int64
	Published               [3]int64 // by QoS
}

// Counts returns the counters now.
func (p *Publisher) Counts() Counts {
	c := Counts{AuthFailures: p.authFailures.Load(), ACLDenied: p.aclDenied.Load()}
	for i := range c.Published {
		c.Published[i] = p.published[i].Load()
	}
	return c
}

// Identity is an authenticated publisher.
type Identity struct {
	ClientID string
	Username string // as authentication vouched for it
	addr     netip.Addr
	acl      acl.ACL
}

// ACL is the identity's topic ACL, for subscriptions through a gateway.
func (id *Identity) ACL() acl.ACL { return id.acl }

// Authenticate checks the credentials through the authorizer.
func (p *Publisher) Authenticate(ctx context.Context, cr Credentials, clientID string, addr netip.Addr) (Identity, error) {
	info := auth.ConnectInfo{ClientID: clientID, Username: cr.Username, Password: cr.Password, Addr: addr}
	res, a := p.authz(ctx, &info)
	if res.Decision != auth.Allow {
		p.authFailures.Add(1)
		return Identity{}, &Error{Kind: Unauthorized, Msg: "unauthorized"}
	}
	return Identity{ClientID: clientID, Username: res.Username, addr: addr, acl: a}, nil
}

// Check validates m and the identity's right to publish it, without
// publishing, so that a batch is refused whole.
func (p *Publisher) Check(id *Identity, m *Message) error {
	if err := broker.CheckTopic(m.Topic); err != nil {
		return bad("%v", err)
	}
	if !id.acl.CanPublish(m.Topic) {
		p.aclDenied.Add(1)
		return &Error{Kind: Forbidden, Msg: "not authorized to publish to " + m.Topic}
	}
	return nil
}

// Publish checks and publishes m. It returns once the broker has routed
// the message, which for QoS 1 and 2 is when it is stored and in every
// matching session's window or queue.
func (p *Publisher) Publish(ctx context.Context, id *Identity, m Message) error {
	if err := p.Check(id, &m); err != nil {
		return err
	}
	_, err := p.b.Publish(ctx, broker.PublishRequest{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain,
		ClientID: id.ClientID, Username: id.Username, Addr: id.addr, CanPublish: id.acl.CanPublish})
	switch {
	case err == nil:
		p.published[m.QoS].Add(1)
		return nil
	case errors.Is(err, broker.ErrTooLarge):
		return &Error{Kind: TooLarge, Msg: err.Error()}
	case errors.Is(err, broker.ErrHookDenied):
		return &Error{Kind: Forbidden, Msg: err.Error()}
	case errors.Is(err, broker.ErrClosing), errors.Is(err, broker.ErrStore),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Unavailable, Msg: err.Error()}
	}
	return bad("%v", err)
}
