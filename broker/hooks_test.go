package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
)

// goHooks is an in-process extension that answers at once.
type goHooks struct {
	hooks.Base
	mu     sync.Mutex
	events []string
}

func (h *goHooks) log(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *goHooks) seen(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.events, s)
}

func (h *goHooks) Events() hooks.Event {
	return hooks.Connect | hooks.Subscribe | hooks.Publish | hooks.Deliver | hooks.Disconnect | hooks.SessionExpired
}

func (h *goHooks) OnConnect(_ context.Context, c *hooks.Client) error {
	if c.ClientID == "nope" {
		return errors.New("not today")
	}
	return nil
}

func (h *goHooks) OnSubscribe(_ context.Context, c *hooks.Client, s *hooks.Subscription) bool {
	if s.Filter == "old/+" {
		s.Filter = "new/+"
		s.Extra = []string{"extra/t"}
	}
	return s.Filter != "forbidden"
}

func (h *goHooks) OnPublish(_ context.Context, c *hooks.Client, m *hooks.Message) bool {
	if m.Topic == "new/upper" {
		m.Payload = []byte("LOUD")
	}
	return m.Topic != "new/drop"
}

func (h *goHooks) OnDeliver(c *hooks.Client, m *hooks.Message) bool { return c.ClientID != "blind" }

func (h *goHooks) OnDisconnect(_ context.Context, c *hooks.Client, err error) {
	h.log("disconnect " + c.ClientID + " " + errText(err))
}

func (h *goHooks) OnSessionExpired(_ context.Context, id string) { h.log("expired " + id) }

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func publishes(t *testing.T, c *fakeConn) []string {
	var out []string
	for _, p := range c.packetsOut(t, packets.V311) {
		if p.Type == packets.Publish {
			out = append(out, string(p.Topic)+"="+string(p.Payload))
		}
	}
	return out
}

// TestGoHooks: an in-process Hooks refuses a CONNECT, rewrites and adds a
// subscription, rewrites and drops publishes, hides messages from one
// subscriber and hears of disconnects and ended sessions.
func TestGoHooks(t *testing.T) {
	s := newTestServer(t)
	h := &goHooks{}
	s.SetHooks(h)

	refused := &fakeConn{}
	s.Data(open(s, refused), encode(packets.V311, connectPkt("nope")))
	if p := refused.packetsOut(t, packets.V311); len(p) != 1 || p[0].Type != packets.Connack || p[0].ReasonCode != packets.V3NotAuthorized {
		t.Fatalf("refused CONNECT answered %+v", p)
	}

	sub, blind := &fakeConn{}, &fakeConn{}
	subSt := open(s, sub)
	s.Data(subSt, encode(packets.V311, connectPkt("sub"), subscribePkt(1, "old/+", 0), subscribePkt(2, "forbidden", 0)))
	s.Data(open(s, blind), encode(packets.V311, connectPkt("blind"), subscribePkt(1, "new/+", 0)))
	var codes []byte
	for _, p := range sub.packetsOut(t, packets.V311) {
		if p.Type == packets.Suback {
			codes = append(codes, p.ReasonCodes...)
		}
	}
	if !slices.Equal(codes, []byte{0, packets.V3SubackFailure}) {
		t.Errorf("SUBACK codes %v", codes)
	}

	pub := &fakeConn{}
	pubSt := open(s, pub)
	pk := func(topic string) *packets.Packet {
		return &packets.Packet{Type: packets.Publish, Topic: []byte(topic), Payload: []byte("x")}
	}
	s.Data(pubSt, encode(packets.V311, connectPkt("pub"), pk("new/upper"), pk("new/drop"), pk("extra/t"), pk("old/x")))
	if got, want := publishes(t, sub), []string{"new/upper=LOUD", "extra/t=x"}; !slices.Equal(got, want) {
		t.Errorf("subscriber got %v, want %v", got, want)
	}
	if got := publishes(t, blind); len(got) != 0 {
		t.Errorf("OnDeliver said no, yet blind got %v", got)
	}

	s.Data(subSt, encode(packets.V311, &packets.Packet{Type: packets.Disconnect}))
	if !h.seen("disconnect sub ok") || !h.seen("expired sub") {
		t.Errorf("events %v", h.events)
	}
}

// authHook allows the password "open" and hands out an ACL.
type authHook struct{ hooks.Base }

func (authHook) Events() hooks.Event { return hooks.Auth }

func (authHook) OnAuth(_ context.Context, info *auth.ConnectInfo) auth.Result {
	if string(info.Password) != "open" {
		return auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials}
	}
	set, _ := (&acl.Grant{Pub: []string{"mine/%c"}}).Compile()
	return auth.Result{Decision: auth.Allow, Username: info.Username, Rules: set}
}

// TestGoHookAuth: an in-process OnAuth installed after New joins the chain
// (on its workers: it has no quick path) and its ACL applies.
func TestGoHookAuth(t *testing.T) {
	s := newTestServer(t)
	s.SetHooks(authHook{})
	t.Cleanup(s.closeSecurity)
	login := func(id, pass string) *fakeConn {
		c := &fakeConn{}
		cp := connectPkt(id)
		cp.Connect.UsernameFlag, cp.Connect.Username = true, []byte("u")
		cp.Connect.PasswordFlag, cp.Connect.Password = true, []byte(pass)
		s.Data(open(s, c), encode(packets.V311, cp))
		return c
	}
	connack := func(c *fakeConn) (byte, bool) {
		for _, p := range c.packetsOut(t, packets.V311) {
			if p.Type == packets.Connack {
				return p.ReasonCode, true
			}
		}
		return 0, false
	}
	waitConnack := func(c *fakeConn) byte {
		for range 500 {
			if rc, ok := connack(c); ok {
				return rc
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no CONNACK")
		return 0
	}
	if rc := waitConnack(login("a", "open")); rc != 0 {
		t.Errorf("good login: %d", rc)
	}
	if rc := waitConnack(login("b", "shut")); rc != packets.V3BadUsernameOrPassword {
		t.Errorf("bad login: %d", rc)
	}
	r, a := s.Authorize(context.Background(), &auth.ConnectInfo{ClientID: "c", Username: "u", Password: []byte("open")})
	if r.Decision != auth.Allow || !a.CanPublish("mine/c") || a.CanPublish("mine/d") {
		t.Errorf("Authorize: %+v", r)
	}
	if r, _ := s.Authorize(context.Background(), &auth.ConnectInfo{ClientID: "c", Username: "u", Password: []byte("x")}); r.Decision != auth.Deny {
		t.Errorf("Authorize with a bad password: %+v", r)
	}
}

// slowHooks blocks on every third PUBLISH, as a slow service would.
type slowHooks struct {
	hooks.Base
	calls atomic.Int64
}

func (h *slowHooks) Events() hooks.Event { return hooks.Publish | hooks.Blocking }

func (h *slowHooks) OnPublish(_ context.Context, _ *hooks.Client, m *hooks.Message) bool {
	if h.calls.Add(1)%3 == 0 {
		time.Sleep(2 * time.Millisecond)
	}
	m.Payload = append([]byte("h"), m.Payload...)
	return true
}

// TestBlockingHookOrder: PUBLISHes behind a blocking hook are handed to
// the hook pool one by one, while the reads keep coming (some split
// mid-packet); every one is delivered, rewritten, in the order sent.
func TestBlockingHookOrder(t *testing.T) {
	s := newTestServer(t)
	s.SetHooks(&slowHooks{})
	t.Cleanup(s.closeSecurity)
	sub := &fakeConn{}
	s.Data(open(s, sub), encode(packets.V311, connectPkt("sub"), subscribePkt(1, "o/+", 0)))
	pub := open(s, &fakeConn{discard: true})
	s.Data(pub, encode(packets.V311, connectPkt("pub")))
	const n = 300
	var wire []byte
	for i := range n {
		wire = append(wire, encode(packets.V311, &packets.Packet{Type: packets.Publish, Topic: []byte("o/t"), Payload: []byte(fmt.Sprint(i))})...)
	}
	for len(wire) > 0 {
		k := min(len(wire), 7+len(wire)%13) // odd sizes: packets split across reads
		s.Data(pub, wire[:k])
		wire = wire[k:]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := publishes(t, sub)
		if len(got) == n {
			for i, g := range got {
				if want := fmt.Sprintf("o/t=h%d", i); g != want {
					t.Fatalf("message %d is %q, want %q", i, g, want)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
