// Package hooks is how extensions take part in what the broker does: the
// Hooks interface the broker calls on connect, authentication, subscribe,
// unsubscribe, publish, delivery, disconnect and session expiry, each able
// to allow, deny or rewrite where that makes sense. The external hooks
// (webhook, an HTTP service speaking JSON; extend, the original Coolpy7's
// CoAP+msgpack extend service) implement it.
//
// It is a package of its own, not part of broker, so that the external
// hooks can implement it without importing the broker, and the broker can
// build them from its configuration.
package hooks

import (
	"context"
	"net/netip"

	"github.com/coolpy7/coolpy7/auth"
)

// Event names one of the calls; a Hooks says which it wants, so the broker
// does no work (and no allocation) for the others.
type Event uint16

const (
	Connect Event = 1 << iota
	Auth
	Subscribe
	Unsubscribe
	Publish
	Deliver
	Disconnect
	SessionExpired
	// Blocking says the hooks may block (network calls): the broker then
	// runs Connect, Subscribe, Unsubscribe and Publish on its bounded hook
	// pool, holding the connection's later packets until the answer
	// arrives, and Disconnect and SessionExpired there too, without
	// waiting. Auth always runs in the authentication chain, whose slow
	// part is on its own workers. Deliver is never run off the delivering
	// goroutine: a hook that wants it must answer at once.
	Blocking
)

// Client is the connection a call is about.
type Client struct {
	ClientID string
	// Username is the identity authentication vouched for (a password
	// user, a token's subject, a certificate's CN), "" for anonymous.
	Username string
	Addr     netip.Addr
	// Protocol is 3 (MQTT 3.1), 4 (3.1.1) or 5.
	Protocol byte
}

// Subscription is one filter of a SUBSCRIBE or UNSUBSCRIBE. A hook may
// rewrite Filter (and QoS, for a subscribe) and add filters to Extra, which
// are subscribed with the same options (or unsubscribed) too, whatever the
// verdict on Filter, as the original's extend service could.
type Subscription struct {
	Filter string
	QoS    byte
	Extra  []string
}

// Message is a PUBLISH. A hook may rewrite Topic and Payload in OnPublish;
// the broker copies them as it needs, so a hook may keep none of them.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Hooks is what an extension implements. Embed Base to implement only some
// of it. Methods run concurrently for different connections.
type Hooks interface {
	// Events lists the calls wanted (and Blocking when they may block).
	Events() Event
	// OnConnect runs after authentication allowed a client and before
	// its session is set up; an error refuses it (CONNACK not authorized).
	OnConnect(ctx context.Context, c *Client) error
	// OnAuth is an authenticator, asked after the configured ones (password
	// file, JWT, certificate) had no opinion: Allow (with an ACL in Rules,
	// which replaces the ACL file's for this client), Deny, or NoOpinion.
	OnAuth(ctx context.Context, info *auth.ConnectInfo) auth.Result
	// OnSubscribe may rewrite s or refuse it (false: SUBACK not authorized).
	// It runs after the ACL allowed the filter; a rewritten filter is
	// checked against the ACL again.
	OnSubscribe(ctx context.Context, c *Client, s *Subscription) bool
	// OnUnsubscribe may rewrite s or refuse it (false: the subscription
	// stays).
	OnUnsubscribe(ctx context.Context, c *Client, s *Subscription) bool
	// OnPublish may rewrite m or drop it (false: v5 clients get reason
	// 0x87 in PUBACK/PUBREC). It runs after the ACL allowed the topic; a
	// rewritten topic is checked against the ACL again.
	OnPublish(ctx context.Context, c *Client, m *Message) bool
	// OnDeliver is asked before m goes to subscriber c; false skips that
	// subscriber. It runs on the publishing goroutine and must not block.
	OnDeliver(c *Client, m *Message) bool
	// OnDisconnect tells that a connected client is gone; err is nil after
	// a normal DISCONNECT.
	OnDisconnect(ctx context.Context, c *Client, err error)
	// OnSessionExpired tells that a session ended.
	OnSessionExpired(ctx context.Context, clientID string)
}

// Base implements every Hooks method as "allow, change nothing", and wants
// no event. Embed it and override what an extension needs.
type Base struct{}

func (Base) Events() Event                                              { return 0 }
func (Base) OnConnect(context.Context, *Client) error                   { return nil }
func (Base) OnAuth(context.Context, *auth.ConnectInfo) auth.Result      { return auth.Result{} }
func (Base) OnSubscribe(context.Context, *Client, *Subscription) bool   { return true }
func (Base) OnUnsubscribe(context.Context, *Client, *Subscription) bool { return true }
func (Base) OnPublish(context.Context, *Client, *Message) bool          { return true }
func (Base) OnDeliver(*Client, *Message) bool                           { return true }
func (Base) OnDisconnect(context.Context, *Client, error)               {}
func (Base) OnSessionExpired(context.Context, string)                   {}

// Authenticator adapts h.OnAuth to an auth.Authenticator, for the end of
// the broker's authentication chain.
type Authenticator struct{ H Hooks }

// Authenticate implements auth.Authenticator.
func (a Authenticator) Authenticate(ctx context.Context, info *auth.ConnectInfo) auth.Result {
	return a.H.OnAuth(ctx, info)
}

// Down is what an external hook answers when its service cannot be reached
// in time: allow (fail open) or deny (fail closed).
type Down uint8

const (
	// DownDeny refuses: connections get "server unavailable", subscribes
	// and publishes are refused. The default: an outage must not open the
	// broker.
	DownDeny Down = iota
	// DownAllow lets everything through as if the service had said yes
	// without rewriting anything, logins included (with the username the
	// client sent, and no ACL of the service's, so the ACL file's rules).
	DownAllow
)

// DownResult is an external authenticator's answer when its service
// failed with err.
func DownResult(d Down, info *auth.ConnectInfo, err error) auth.Result {
	if d == DownAllow {
		return auth.Result{Decision: auth.Allow, Username: info.Username, Err: err}
	}
	return auth.Result{Decision: auth.Deny, Reason: auth.ServerUnavailable, Err: err}
}

// ParseDown reads "deny" or "allow".
func ParseDown(s string) (Down, bool) {
	switch s {
	case "", "deny":
		return DownDeny, true
	case "allow":
		return DownAllow, true
	}
	return 0, false
}
