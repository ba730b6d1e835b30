package topics

import (
	"strings"
	"testing"
)

func TestValidFilter(t *testing.T) {
	for _, tc := range []struct {
		f    string
		want bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},
		{"//", true},
		{"#", true},
		{"+", true},
		{"a/#", true},
		{"+/+", true},
		{"/+", true},
		{"sport/+/player1", true},
		{"$SYS/#", true},
		{"$share", true},
		{"$share/g/a/b", true},
		{"$share/g/#", true},
		{"$share/g/+/x", true},
		{"$share/g//", true},
		{"$share/g/$share/h/x", true},
		{"$share/g", true}, // the original Coolpy7's group topic
		{"$queue/g", true},
		{"", false},
		{"a#", false},
		{"#/a", false},
		{"a/#/b", false},
		{"a/b#", false},
		{"a+", false},
		{"a/+b", false},
		{"++", false},
		{"a\x00b", false},
		{"\xff", false},
		{"$share/", false},
		{"$share/g/", false},
		{"$share//a", false},
		{"$share/g+/a", false},
		{"$share/g#/a", false},
		{"$share/g/a#", false},
		{"$share/g/#/a", false},
		{strings.Repeat("a", maxStringLen), true},
		{strings.Repeat("a", maxStringLen+1), false},
	} {
		if got := ValidFilter(tc.f); got != tc.want {
			t.Errorf("ValidFilter(%q) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	for _, tc := range []struct {
		t    string
		want bool
	}{
		{"a", true},
		{"/", true},
		{"a/b/", true},
		{"$SYS/broker", true},
		{"$share/g/a", true},
		{"", false},
		{"a/+", false},
		{"a/#", false},
		{"a+b", false},
		{"a\x00", false},
		{"\xc3\x28", false},
	} {
		if got := ValidTopicName(tc.t); got != tc.want {
			t.Errorf("ValidTopicName(%q) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestParseShared(t *testing.T) {
	for _, tc := range []struct {
		f, group, filter string
		ok               bool
	}{
		{"$share/g/a/b", "g", "a/b", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g//", "g", "/", true},
		{"$share/g", "", "", false},
		{"$share//a", "", "", false},
		{"$share/g/", "", "", false},
		{"$share/+/a", "", "", false},
		{"$queue/g/a", "", "", false},
		{"a/b", "", "", false},
		{"$SHARE/g/a", "", "", false},
	} {
		group, filter, ok := ParseShared(tc.f)
		if group != tc.group || filter != tc.filter || ok != tc.ok {
			t.Errorf("ParseShared(%q) = %q, %q, %v, want %q, %q, %v", tc.f, group, filter, ok, tc.group, tc.filter, tc.ok)
		}
	}
}

func TestParseGroup(t *testing.T) {
	for _, tc := range []struct {
		f, group, filter string
		queue, ok        bool
	}{
		{"$share/g/a/b", "g", "a/b", false, true},
		{"$share/g", "g", "$share/g", false, true},
		{"$queue/g", "g", "$queue/g", true, true},
		{"$queue/g/a", "", "", false, false},
		{"$queue/", "", "", false, false},
		{"$queue/+", "", "", false, false},
		{"$share/", "", "", false, false},
		{"$share/g#", "", "", false, false},
		{"$share/g/", "", "", false, false},
		{"a/b", "", "", false, false},
	} {
		group, filter, queue, ok := ParseGroup(tc.f)
		if group != tc.group || filter != tc.filter || queue != tc.queue || ok != tc.ok {
			t.Errorf("ParseGroup(%q) = %q, %q, %v, %v, want %q, %q, %v, %v", tc.f, group, filter, queue, ok, tc.group, tc.filter, tc.queue, tc.ok)
		}
	}
}

// matchRef is the spec's matching rule written as plainly as possible, to
// check the trie and the retained index against.
func matchRef(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i == len(tl) || f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

// FuzzParseGroup holds ParseGroup, which reads SUBSCRIBE filters and
// PUBLISH topics from the network, to its own contract on any input.
func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{"$share/g/a/#", "$share/g", "$queue/g", "$queue/", "$share//", "a/b", "$queue/g/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		group, filter, queue, ok := ParseGroup(s)
		if !ok {
			if group != "" || filter != "" || queue {
				t.Fatalf("not a group but %q %q %v", group, filter, queue)
			}
			return
		}
		if group == "" || strings.ContainsAny(group, "/+#") || filter == "" {
			t.Fatalf("%q: group %q filter %q", s, group, filter)
		}
		if g, f, sh := ParseShared(s); sh != (filter != s) || sh && (g != group || f != filter) {
			t.Fatalf("%q: ParseGroup %q %q, ParseShared %q %q %v", s, group, filter, g, f, sh)
		}
		if queue != strings.HasPrefix(s, "$queue/") {
			t.Fatalf("%q: queue %v", s, queue)
		}
	})
}
