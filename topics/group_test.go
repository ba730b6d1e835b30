package topics

import "testing"

// A group's state outlives membership changes, follows its members, is
// listed while it has any and is gone with the last.
func TestGroupState(t *testing.T) {
	tr := NewTrie[int]()
	tr.Subscribe("$share/g/a/+", 1, Options{})
	tr.Subscribe("$share/g/a/+", 2, Options{QoS: 1})
	tr.Subscribe("$queue/q", 3, Options{})
	tr.Subscribe("$share/o", 4, Options{})
	g := tr.Group("g", "a/+")
	if g == nil || g.Queue || len(g.Members()) != 2 {
		t.Fatalf("group g: %+v", g)
	}
	if q := tr.Group("q", "$queue/q"); q == nil || !q.Queue {
		t.Fatalf("queue group: %+v", q)
	}
	if n := len(tr.Groups()); n != 3 {
		t.Fatalf("%d groups, want 3", n)
	}
	var r Result[int]
	tr.Match("a/b", 0, &r)
	if len(r.Shared) != 1 || r.Shared[0].State != g {
		t.Fatalf("match: %+v", r.Shared)
	}
	tr.Match("$share/o", 0, &r)
	if len(r.Shared) != 1 || r.Shared[0].Members[0].Sub != 4 {
		t.Fatalf("publish to $share/o: %+v", r.Shared)
	}
	tr.Unsubscribe("$share/g/a/+", 1)
	if ms := g.Members(); len(ms) != 1 || ms[0].Sub != 2 || tr.Group("g", "a/+") != g {
		t.Fatalf("after one left: %+v", ms)
	}
	tr.Unsubscribe("$share/g/a/+", 2)
	if g.Members() != nil || tr.Group("g", "a/+") != nil || len(tr.Groups()) != 2 {
		t.Fatalf("empty group still listed")
	}
}
