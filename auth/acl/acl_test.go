package acl

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func mustParse(t testing.TB, text string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const devices = `
# devices publish under their own client ID and read their commands
allow pub devices/%c/#
allow sub cmd/%c
allow sub devices/%c/#
deny  pubsub devices/%c/secret

user alice
allow pubsub alice/#
allow sub    devices/#

client sensor-1
allow pub  sensors/1/+
`

func TestPublish(t *testing.T) {
	f := mustParse(t, devices)
	for _, tc := range []struct {
		user, client, topic string
		want                bool
	}{
		{"", "c1", "devices/c1/temp", true},
		{"", "c1", "devices/c1", true},
		{"", "c1", "devices/c1/a/b", true},
		{"", "c1", "devices/c2/temp", false},
		{"", "c1", "devices/c1/secret", false},
		{"", "c1", "devices/c1/secret/x", true},
		{"", "c1", "cmd/c1", false}, // sub only
		{"", "c1", "other", false},  // nothing allows it
		{"alice", "c1", "alice/x", true},
		{"alice", "c1", "devices/c1/t", true},
		{"alice", "c1", "devices/c2/t", false}, // alice may read, not write
		{"bob", "c1", "alice/x", false},
		{"", "sensor-1", "sensors/1/t", true},
		{"", "sensor-1", "sensors/1/t/x", false},
		{"", "sensor-2", "sensors/1/t", false},
		{"", "c1", "$SYS/x", false},
	} {
		a := f.For(tc.user, tc.client)
		if got := a.CanPublish(tc.topic); got != tc.want {
			t.Errorf("user %q client %q: CanPublish(%q) = %v, want %v", tc.user, tc.client, tc.topic, got, tc.want)
		}
	}
}

func TestSubscribe(t *testing.T) {
	f := mustParse(t, devices)
	for _, tc := range []struct {
		user, client, filter string
		want                 SubResult
	}{
		{"", "c1", "cmd/c1", SubGranted},
		{"", "c1", "cmd/+", SubFiltered},
		{"", "c1", "cmd/#", SubFiltered},
		{"", "c1", "cmd/c2", SubDenied},
		{"", "c1", "devices/c1/temp", SubGranted},
		{"", "c1", "devices/c1/+/x", SubGranted},
		// The widening the ACL must not allow: c1 may only read
		// devices/c1/#, so devices/# and devices/+/… reach too far.
		{"", "c1", "devices/#", SubFiltered},
		{"", "c1", "devices/+/temp", SubFiltered},
		{"", "c1", "#", SubFiltered},
		{"", "c1", "+/c1/temp", SubFiltered},
		{"", "c1", "devices/c2/#", SubDenied},
		{"", "c1", "other/#", SubDenied},
		// devices/c1/# is allowed but devices/c1/secret is denied inside
		// it.
		{"", "c1", "devices/c1/#", SubFiltered},
		{"", "c1", "devices/c1/+", SubFiltered},
		{"", "c1", "devices/c1/secret", SubDenied},
		{"", "c1", "$share/g/devices/c1/temp", SubGranted},
		{"", "c1", "$share/g/devices/#", SubFiltered},
		{"", "c1", "$share/g/devices/c2/#", SubDenied},
		{"", "c1", "a/#/b", SubDenied},
		// alice may read devices/# but the deny for her own client ID
		// still reaches into it.
		{"alice", "c1", "devices/c2/#", SubGranted},
		{"alice", "c1", "devices/#", SubFiltered},
		{"alice", "c9", "devices/+/temp", SubGranted},
		{"alice", "c9", "devices/+/secret", SubFiltered},
		{"alice", "c9", "alice/#", SubGranted},
	} {
		a := f.For(tc.user, tc.client)
		if got := a.Subscribe(tc.filter); got != tc.want {
			t.Errorf("user %q client %q: Subscribe(%q) = %v, want %v", tc.user, tc.client, tc.filter, got, tc.want)
		}
	}
}

// TestDenyOverrides shows the rules' order does not matter.
func TestDenyOverrides(t *testing.T) {
	for _, text := range []string{
		"allow pub a/#\ndeny pub a/b\n",
		"deny pub a/b\nallow pub a/#\n",
		"deny pub a/b\nuser u\nallow pub a/#\n",
		"user u\nallow pub a/#\nall\ndeny pub a/b\n",
		"client c\ndeny pub a/b\nuser u\nallow pub a/#\n",
	} {
		a := mustParse(t, text).For("u", "c")
		if !a.CanPublish("a/c") || a.CanPublish("a/b") {
			t.Errorf("%q: a/c %v, a/b %v; want true, false", text, a.CanPublish("a/c"), a.CanPublish("a/b"))
		}
	}
}

// TestUnusableIdentity: a username or client ID that would change what a
// pattern means when put into it leaves allow rules that need it unused
// and makes deny rules that need it deny everything.
func TestUnusableIdentity(t *testing.T) {
	f := mustParse(t, "allow pubsub devices/%c/#\nallow pubsub users/%u/#\nallow pubsub public/#\n")
	g := mustParse(t, "allow pubsub #\ndeny pub x/%c\n")
	for _, id := range []string{"#", "+", "a/b", "$SYS", ""} {
		a := f.For(id, id)
		for _, topic := range []string{"devices/x/y", "devices/a/b/c", "users/x", "$SYS/x", "devices/+/x"} {
			if a.CanPublish(topic) {
				t.Errorf("identity %q may publish to %q", id, topic)
			}
		}
		if r := a.Subscribe("devices/#"); r == SubGranted {
			t.Errorf("identity %q granted devices/#", id)
		}
		if !a.CanPublish("public/x") || a.Subscribe("public/#") != SubGranted {
			t.Errorf("identity %q lost rules that do not need it", id)
		}
		b := g.For(id, id)
		if b.CanPublish("anything") || b.Subscribe("anything") != SubGranted {
			t.Errorf("identity %q: deny x/%%c should deny every publish and no subscription", id)
		}
	}
	a := f.For("u", "dev")
	if !a.CanPublish("devices/dev/x") || !a.CanPublish("users/u/x") {
		t.Error("usable identity lost its rules")
	}
}

func TestZeroAndAllowAll(t *testing.T) {
	var zero ACL
	if zero.CanPublish("a") || zero.CanRead("a") || zero.Subscribe("#") != SubDenied {
		t.Error("the zero ACL allowed something")
	}
	open := AllowAll()
	if !open.CanPublish("a") || !open.CanRead("$SYS/x") || open.Subscribe("#") != SubGranted {
		t.Error("AllowAll denied something")
	}
	if open.Subscribe("a/#/b") != SubDenied {
		t.Error("AllowAll granted an invalid filter")
	}
}

func TestGrant(t *testing.T) {
	var g Grant
	if err := json.Unmarshal([]byte(`{"pub":["devices/%c/#"],"sub":["cmd/%c"]}`), &g); err != nil {
		t.Fatal(err)
	}
	s, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	a := s.Bind("u", "c7")
	switch {
	case !a.CanPublish("devices/c7/x"), a.CanPublish("devices/c8/x"), a.CanPublish("cmd/c7"):
		t.Error("publish rules wrong")
	case a.Subscribe("cmd/c7") != SubGranted, a.Subscribe("cmd/+") != SubFiltered, a.Subscribe("devices/c7/x") != SubDenied:
		t.Error("subscribe rules wrong")
	}
	for _, bad := range []Grant{{Pub: []string{"a/#/b"}}, {Sub: []string{""}}, {Sub: []string{"$share/g/a"}}} {
		if _, err := bad.Compile(); err == nil {
			t.Errorf("%+v compiled", bad)
		}
	}
	empty, err := (&Grant{}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	if a := empty.Bind("u", "c"); a.CanPublish("a") || a.Subscribe("a") != SubDenied {
		t.Error("an empty grant allowed something")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, r := range []Rule{
		{Access: Pub, Pattern: ""},
		{Access: Pub, Pattern: "a+"},
		{Access: 0, Pattern: "a"},
		{Access: 4, Pattern: "a"},
		{Access: Sub, Pattern: "$share/g/#"},
	} {
		if _, err := Compile([]Rule{r}); err == nil {
			t.Errorf("%+v compiled", r)
		}
	}
}

// TestSubscribeSound checks Subscribe against CanRead for random rule sets
// and filters over a small topic universe: a granted filter reaches only
// readable topics, a denied one none.
func TestSubscribeSound(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	u := topicsOver([]string{"a", "b", "c1", ""}, []string{"$s"}, 4)
	levels := []string{"a", "b", "+", "%c", ""}
	n := 2000
	if testing.Short() || raceEnabled {
		n = 200
	}
	seen := map[SubResult]int{}
	for range n {
		var rules []Rule
		for range 1 + r.IntN(4) {
			rules = append(rules, Rule{Deny: r.IntN(3) == 0, Access: Sub, Pattern: randFilter(r, levels, 3)})
		}
		s, err := Compile(rules)
		if err != nil {
			t.Fatal(err)
		}
		a := s.Bind("u", "c1")
		g := randFilter(r, []string{"a", "b", "c1", "+", ""}, 3)
		res := a.Subscribe(g)
		seen[res]++
		var readable, unreadable int
		for _, topic := range u {
			if !refMatch(g, topic) {
				continue
			}
			if a.CanRead(topic) {
				readable++
			} else {
				unreadable++
			}
		}
		switch {
		case res == SubGranted && unreadable > 0:
			t.Fatalf("rules %+v granted %q, which reaches %d unreadable topics", rules, g, unreadable)
		case res == SubDenied && readable > 0:
			t.Fatalf("rules %+v denied %q, which reaches %d readable topics", rules, g, readable)
		}
	}
	if seen[SubGranted] == 0 || seen[SubDenied] == 0 || seen[SubFiltered] == 0 {
		t.Errorf("answers seen %v: the test does not reach every outcome", seen)
	}
}

func (r SubResult) String() string {
	return [...]string{"SubDenied", "SubGranted", "SubFiltered"}[r]
}
