// Package acl decides which topics a connection may publish to and
// subscribe to. Rules come from an ACL file (by username, by client ID, or
// for everyone), from a JWT's claims or from an external service's answer;
// the broker binds them to a connection once, at CONNECT, into an ACL
// value it keeps with the connection and asks on every PUBLISH and
// SUBSCRIBE.
//
// Semantics are deny-overrides: a topic is allowed when some allow rule
// matches it and no deny rule does; what no rule allows is denied. The
// order of rules and of the sections they come from does not matter,
// which is what lets rules from several sources be combined without
// surprises.
package acl

import (
	"fmt"
	"strings"

	"github.com/coolpy7/coolpy7/topics"
)

// Access is what a rule governs.
type Access uint8

const (
	// Pub is publishing to a topic (a will's topic included).
	Pub Access = 1 << iota
	// Sub is subscribing to a filter and receiving what matches it.
	Sub
)

// Rule allows or denies Access to the topics its Pattern matches. Pattern
// is a topic filter in which %u stands for the connection's username and
// %c for its client ID.
type Rule struct {
	Deny    bool
	Access  Access
	Pattern string
}

// Set is a compiled, immutable list of rules, safe to share between any
// number of connections.
type Set struct {
	// rules[kind][effect]: kind pubKind or subKind, effect allowRule or
	// denyRule, so a check only walks the rules that can decide it.
	rules [2][2][]rule
}

const (
	pubKind = iota
	subKind
)

const (
	allowRule = iota
	denyRule
)

type rule struct {
	pattern string
	uses    uses
}

// uses records which placeholders a pattern contains.
type uses uint8

const (
	usesUser uses = 1 << iota
	usesClient
)

// Compile checks and compiles rules. A pattern must be a valid topic
// filter and not a shared subscription: rules are about topics, and a
// "$share/group/" prefix is stripped from a subscription before it is
// checked.
func Compile(rules []Rule) (*Set, error) {
	s := &Set{}
	for _, r := range rules {
		if err := checkPattern(r.Pattern); err != nil {
			return nil, err
		}
		if r.Access == 0 || r.Access&^(Pub|Sub) != 0 {
			return nil, fmt.Errorf("acl: rule %q: invalid access %d", r.Pattern, r.Access)
		}
		var u uses
		if strings.Contains(r.Pattern, "%u") {
			u |= usesUser
		}
		if strings.Contains(r.Pattern, "%c") {
			u |= usesClient
		}
		effect := allowRule
		if r.Deny {
			effect = denyRule
		}
		for kind, a := range [...]Access{pubKind: Pub, subKind: Sub} {
			if r.Access&a != 0 {
				s.rules[kind][effect] = append(s.rules[kind][effect], rule{r.Pattern, u})
			}
		}
	}
	return s, nil
}

func checkPattern(p string) error {
	switch {
	case strings.HasPrefix(p, "$share/"):
		return fmt.Errorf("acl: pattern %q: rules name topics, not shared subscriptions", p)
	case !topics.ValidFilter(p):
		return fmt.Errorf("acl: pattern %q is not a valid topic filter", p)
	}
	return nil
}

// Grant is the ACL a JWT claim or an external service hands out, as JSON:
// {"pub": ["devices/%c/#"], "sub": ["cmd/%c"]}. It only allows; whatever
// it does not list is denied.
type Grant struct {
	Pub []string `json:"pub,omitempty"`
	Sub []string `json:"sub,omitempty"`
}

// Compile turns g into a Set. An empty Grant compiles to a Set that
// allows nothing.
func (g *Grant) Compile() (*Set, error) {
	rules := make([]Rule, 0, len(g.Pub)+len(g.Sub))
	for _, p := range g.Pub {
		rules = append(rules, Rule{Access: Pub, Pattern: p})
	}
	for _, p := range g.Sub {
		rules = append(rules, Rule{Access: Sub, Pattern: p})
	}
	return Compile(rules)
}

// ACL is the rules that apply to one connection, bound to its username
// and client ID. The broker keeps it by value with the connection; the
// zero ACL denies everything, so a connection that was never given one
// can do nothing. Checks take no locks and do not allocate.
type ACL struct {
	sets [3]*Set
	subj subject
	// bad holds the placeholders whose value cannot be used: see bind.
	bad  uses
	open bool
}

// AllowAll is the ACL of a broker configured without one.
func AllowAll() ACL { return ACL{open: true} }

// Bind gives the ACL of a connection with this username and client ID
// governed by s alone (a token's or an external service's rules).
func (s *Set) Bind(username, clientID string) ACL {
	return bind([3]*Set{s}, username, clientID)
}

// bind makes an ACL. A placeholder value that is empty, starts with '$'
// or contains '/', '+' or '#' is not used: substituted, it would make
// "devices/%c/#" mean "devices/#" for a client ID "#", or "$SYS/#" out of
// "%c/#" for a client ID "$SYS", or simply nothing the rule's author had in
// mind. A rule needing such a value is ignored when it allows and matches
// everything when it denies, so a strange identity can only lose access.
func bind(sets [3]*Set, user, client string) ACL {
	a := ACL{sets: sets, subj: subject{user, client}}
	if !usable(user) {
		a.bad |= usesUser
	}
	if !usable(client) {
		a.bad |= usesClient
	}
	return a
}

func usable(v string) bool {
	return v != "" && v[0] != '$' && !strings.ContainsAny(v, "/+#")
}

// subst is how r's pattern is to be read for this connection: literally
// (nil), with a's values put in for its placeholders, or not at all (bad)
// because a value it needs is unusable.
func (a *ACL) subst(r *rule) (s *subject, bad bool) {
	switch {
	case r.uses == 0:
		return nil, false
	case r.uses&a.bad != 0:
		return nil, true
	}
	return &a.subj, false
}

// CanPublish reports whether the connection may publish to topic, a
// valid topic name.
func (a *ACL) CanPublish(topic string) bool { return a.allowed(pubKind, topic) }

// CanRead reports whether the connection may receive a message published
// to topic. The broker only needs it for subscriptions Subscribe answered
// SubFiltered.
func (a *ACL) CanRead(topic string) bool { return a.allowed(subKind, topic) }

func (a *ACL) allowed(kind int, topic string) bool {
	if a.open {
		return true
	}
	ok := false
	for _, s := range a.sets {
		if s == nil {
			continue
		}
		deny := s.rules[kind][denyRule]
		for i := range deny {
			subj, bad := a.subst(&deny[i])
			if bad || match(deny[i].pattern, topic, subj) {
				return false
			}
		}
		if ok {
			continue
		}
		allow := s.rules[kind][allowRule]
		for i := range allow {
			if subj, bad := a.subst(&allow[i]); !bad && match(allow[i].pattern, topic, subj) {
				ok = true
				break
			}
		}
	}
	return ok
}

// SubResult is the answer to a SUBSCRIBE.
type SubResult uint8

const (
	// SubDenied: the filter matches no topic the connection may read.
	SubDenied SubResult = iota
	// SubGranted: every topic the filter matches may be read.
	SubGranted
	// SubFiltered: the filter reaches topics the connection may not read
	// (a subscription to "devices/#" when only "devices/%c/#" is allowed)
	// and perhaps some it may. The broker either refuses it like
	// SubDenied, or grants it and asks CanRead before delivering each
	// message, retained ones included.
	SubFiltered
)

// Subscribe decides a SUBSCRIBE to filter, which may be a shared
// subscription "$share/{group}/{filter}". A wildcard cannot widen access:
// it is granted only when a single allow rule covers the whole filter
// (Covers) and no deny rule reaches into it (Intersects). So "a" and
// "a/+/#" together do not grant "a/#"; an allow rule "a/#" does.
func (a *ACL) Subscribe(filter string) SubResult {
	if _, f, ok := topics.ParseShared(filter); ok {
		filter = f
	}
	if !topics.ValidFilter(filter) {
		return SubDenied
	}
	if a.open {
		return SubGranted
	}
	var covered, partly, denied bool
	for _, s := range a.sets {
		if s == nil {
			continue
		}
		deny := s.rules[subKind][denyRule]
		for i := range deny {
			subj, bad := a.subst(&deny[i])
			if bad || covers(deny[i].pattern, filter, subj) {
				return SubDenied
			}
			denied = denied || intersects(deny[i].pattern, filter, subj)
		}
		allow := s.rules[subKind][allowRule]
		for i := range allow {
			subj, bad := a.subst(&allow[i])
			switch {
			case bad || covered: // nothing more to learn from this rule
			case covers(allow[i].pattern, filter, subj):
				covered = true
			case !partly:
				partly = intersects(allow[i].pattern, filter, subj)
			}
		}
	}
	switch {
	case covered && !denied:
		return SubGranted
	case covered || partly:
		return SubFiltered
	}
	return SubDenied
}
