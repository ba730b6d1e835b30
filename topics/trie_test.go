package topics

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

type sess struct{ id int }

func newSessions(n int) []*sess {
	s := make([]*sess, n)
	for i := range s {
		s[i] = &sess{i}
	}
	return s
}

// matchCases covers MQTT 3.1.1 and 5.0 §4.7 and its examples.
var matchCases = []struct {
	filter, topic string
	want          bool
}{
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/#", "sport", true},
	{"sport/#", "sports", false},
	{"#", "sport/tennis", true},
	{"#", "/", true},
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"+", "finance", true},
	{"+/tennis/#", "sport/tennis/player1/ranking", true},
	{"+/#", "a", true},
	{"a/+/c", "a//c", true},
	{"a/+/c", "a/b/c/d", false},
	{"a/b", "a/b", true},
	{"a/b", "a/b/", false},
	{"a/b", "a", false},
	{"ACCOUNTS", "Accounts", false},
	{"/#", "/", true},
	{"/#", "a", false},
	{"a/+", "a/$b", true},
	{"#", "$SYS/broker/load", false},
	{"#", "$SYS", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+", "$SYS", false},
	{"+/#", "$SYS/a", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+/Clients", "$SYS/monitor/Clients", true},
}

func TestMatchCases(t *testing.T) {
	s := newSessions(1)[0]
	for _, tc := range matchCases {
		if ref := matchRef(tc.filter, tc.topic); ref != tc.want {
			t.Fatalf("matchRef(%q, %q) = %v, case says %v", tc.filter, tc.topic, ref, tc.want)
		}
		tr := NewTrie[*sess]()
		tr.Subscribe(tc.filter, s, Options{QoS: 1})
		var r Result[*sess]
		tr.Match(tc.topic, nil, &r)
		if got := len(r.Subs) == 1; got != tc.want {
			t.Errorf("%q matching %q = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
		// The same through a shared group.
		tr.Subscribe("$share/g/"+tc.filter, s, Options{})
		tr.Match(tc.topic, nil, &r)
		if got := len(r.Shared) == 1; got != tc.want {
			t.Errorf("$share/g/%q matching %q = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

// TestMatchRandom checks one trie holding many filters against matchRef.
func TestMatchRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "", "$a", "c"}
	level := func(wild bool) string {
		if wild {
			switch rng.IntN(6) {
			case 0:
				return "+"
			case 1:
				return "#"
			}
		}
		return words[rng.IntN(len(words))]
	}
	gen := func(wild bool) string {
		n := 1 + rng.IntN(4)
		s := ""
		for i := 0; i < n || s == ""; i++ {
			l := level(wild)
			if i > 0 {
				s += "/"
			}
			s += l
			if l == "#" {
				break
			}
		}
		return s
	}
	subs := newSessions(300)
	tr := NewTrie[*sess]()
	filters := make([]string, len(subs))
	for i, s := range subs {
		filters[i] = gen(true)
		tr.Subscribe(filters[i], s, Options{})
	}
	var r Result[*sess]
	for range 2000 {
		topic := gen(false)
		tr.Match(topic, nil, &r)
		var got, want []int
		for _, m := range r.Subs {
			got = append(got, m.Sub.id)
		}
		for i, f := range filters {
			if matchRef(f, topic) {
				want = append(want, i)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("topic %q: got %v, want %v", topic, got, want)
		}
	}
}

func TestSubscribeReplace(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(2)
	if !tr.Subscribe("a/b", s[0], Options{QoS: 0}) {
		t.Fatal("first subscribe not new")
	}
	if tr.Subscribe("a/b", s[0], Options{QoS: 2, ID: 7}) {
		t.Fatal("second subscribe to the same filter reported new")
	}
	if !tr.Subscribe("a/b", s[1], Options{QoS: 1}) {
		t.Fatal("another subscriber not new")
	}
	if tr.Count() != 2 {
		t.Fatalf("Count = %d, want 2", tr.Count())
	}
	var r Result[*sess]
	tr.Match("a/b", nil, &r)
	if len(r.Subs) != 2 || r.Subs[0].Sub != s[0] || r.Subs[0].QoS != 2 || !slices.Equal(r.Subs[0].IDs, []uint32{7}) {
		t.Fatalf("after replacing options: %+v", r.Subs)
	}
}

func TestOverlapMerge(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(2)
	tr.Subscribe("a/b", s[0], Options{QoS: 0, ID: 1})
	tr.Subscribe("a/+", s[0], Options{QoS: 2, ID: 2, RetainAsPublished: true})
	tr.Subscribe("#", s[0], Options{QoS: 1})
	tr.Subscribe("a/#", s[0], Options{QoS: 0, ID: 3})
	tr.Subscribe("a/b", s[1], Options{QoS: 1})
	var r Result[*sess]
	tr.Match("a/b", nil, &r)
	if len(r.Subs) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(r.Subs), r.Subs)
	}
	for _, m := range r.Subs {
		switch m.Sub {
		case s[0]:
			ids := slices.Sorted(slices.Values(m.IDs))
			if m.QoS != 2 || !m.RetainAsPublished || !slices.Equal(ids, []uint32{1, 2, 3}) {
				t.Errorf("merged entry %+v, want QoS 2, RetainAsPublished, IDs 1 2 3", m)
			}
		case s[1]:
			if m.QoS != 1 || m.RetainAsPublished || m.IDs != nil {
				t.Errorf("plain entry %+v", m)
			}
		}
	}
	// Appending to one subscriber's IDs must not overwrite another's.
	if cap(r.Subs[0].IDs) != len(r.Subs[0].IDs) {
		t.Errorf("IDs capacity %d exceeds length %d", cap(r.Subs[0].IDs), len(r.Subs[0].IDs))
	}
}

// TestOverlapMergeMany merges past linearMax, where Result indexes Subs.
func TestOverlapMergeMany(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(3 * linearMax)
	for i, x := range s {
		tr.Subscribe("x/y", x, Options{QoS: 0, ID: uint32(i + 1)})
		if i%2 == 0 {
			tr.Subscribe("x/+", x, Options{QoS: 1, ID: uint32(1000 + i)})
		}
		if i%3 == 0 {
			tr.Subscribe("#", x, Options{QoS: 2})
		}
	}
	var r Result[*sess]
	for range 2 { // the second round reuses the index
		tr.Match("x/y", nil, &r)
		if len(r.Subs) != len(s) {
			t.Fatalf("got %d entries, want %d", len(r.Subs), len(s))
		}
		for _, m := range r.Subs {
			i := m.Sub.id
			wantQoS, wantIDs := byte(0), []uint32{uint32(i + 1)}
			if i%2 == 0 {
				wantQoS, wantIDs = 1, append(wantIDs, uint32(1000+i))
			}
			if i%3 == 0 {
				wantQoS = 2
			}
			if m.QoS != wantQoS || !slices.Equal(slices.Sorted(slices.Values(m.IDs)), wantIDs) {
				t.Fatalf("subscriber %d: QoS %d IDs %v, want %d %v", i, m.QoS, m.IDs, wantQoS, wantIDs)
			}
		}
	}
}

func TestNoLocal(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(2)
	tr.Subscribe("t", s[0], Options{QoS: 2, NoLocal: true, ID: 5})
	tr.Subscribe("t", s[1], Options{QoS: 1, NoLocal: true})
	var r Result[*sess]
	tr.Match("t", s[0], &r)
	if len(r.Subs) != 1 || r.Subs[0].Sub != s[1] {
		t.Fatalf("publisher's NoLocal subscription matched: %+v", r.Subs)
	}
	// NoLocal drops that one subscription before merging, not the
	// subscriber: its other matching subscription still delivers.
	tr.Subscribe("#", s[0], Options{QoS: 0, ID: 6})
	tr.Match("t", s[0], &r)
	for _, m := range r.Subs {
		if m.Sub == s[0] && (m.QoS != 0 || !slices.Equal(m.IDs, []uint32{6})) {
			t.Fatalf("publisher's other subscription: %+v, want QoS 0 IDs [6]", m)
		}
	}
	if len(r.Subs) != 2 {
		t.Fatalf("got %d entries, want 2", len(r.Subs))
	}
	// NoLocal does not apply to shared subscriptions.
	tr.Subscribe("$share/g/t", s[0], Options{NoLocal: true})
	tr.Match("t", s[0], &r)
	if len(r.Shared) != 1 || len(r.Shared[0].Members) != 1 {
		t.Fatalf("shared: %+v", r.Shared)
	}
}

func TestShared(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(5)
	tr.Subscribe("$share/g/s/+", s[0], Options{QoS: 1})
	tr.Subscribe("$share/g/s/+", s[1], Options{QoS: 2, ID: 9})
	tr.Subscribe("$share/h/s/#", s[2], Options{})
	tr.Subscribe("$share/g/s/#", s[3], Options{})
	tr.Subscribe("s/1", s[4], Options{})
	if tr.Subscribe("$share/g/s/+", s[0], Options{QoS: 0}) {
		t.Fatal("re-subscribing a member reported new")
	}
	if tr.Count() != 5 {
		t.Fatalf("Count = %d, want 5", tr.Count())
	}
	var r Result[*sess]
	tr.Match("s/1", nil, &r)
	if len(r.Subs) != 1 || r.Subs[0].Sub != s[4] {
		t.Fatalf("non-shared: %+v", r.Subs)
	}
	got := map[string][]Member[*sess]{}
	for _, g := range r.Shared {
		got[g.Group+" "+g.Filter] = g.Members
	}
	want := map[string][]Member[*sess]{
		"g s/+": {{s[0], Options{QoS: 0}}, {s[1], Options{QoS: 2, ID: 9}}},
		"h s/#": {{s[2], Options{}}},
		"g s/#": {{s[3], Options{}}},
	}
	if len(got) != len(want) || len(r.Shared) != len(want) {
		t.Fatalf("shared = %+v", r.Shared)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("group %s: %+v, want %+v", k, got[k], w)
		}
	}
	// A snapshot taken by Match does not change under later writes.
	snap := r.Shared
	tr.Unsubscribe("$share/g/s/+", s[0])
	for _, g := range snap {
		if g.Group == "g" && g.Filter == "s/+" && len(g.Members) != 2 {
			t.Fatalf("snapshot changed: %+v", g)
		}
	}
	if tr.Unsubscribe("$share/g/s/+", s[0]) {
		t.Fatal("second unsubscribe reported existing")
	}
	if tr.Unsubscribe("$share/x/s/+", s[1]) {
		t.Fatal("unsubscribe from the wrong group reported existing")
	}
	tr.Unsubscribe("$share/g/s/+", s[1])
	tr.Match("s/1", nil, &r)
	if len(r.Shared) != 2 {
		t.Fatalf("after emptying group g on s/+: %+v", r.Shared)
	}
	tr.Match("$SYS/1", nil, &r)
	tr.Subscribe("$share/g/#", s[0], Options{})
	if tr.Match("$SYS/x", nil, &r); len(r.Shared) != 0 {
		t.Fatalf("$share/g/# matched a $ topic: %+v", r.Shared)
	}
}

// TestBigList crosses bigList both ways, where a filter's subscribers move
// between a slice and a memberSet.
func TestBigList(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(4 * bigList)
	check := func(want map[*sess]byte) {
		t.Helper()
		var r Result[*sess]
		tr.Match("hot/topic", nil, &r)
		if len(r.Subs) != len(want) {
			t.Fatalf("got %d subscribers, want %d", len(r.Subs), len(want))
		}
		for _, m := range r.Subs {
			if q, ok := want[m.Sub]; !ok || q != m.QoS {
				t.Fatalf("subscriber %d QoS %d, want present with %d", m.Sub.id, m.QoS, q)
			}
		}
	}
	want := map[*sess]byte{}
	for _, x := range s {
		tr.Subscribe("hot/topic", x, Options{QoS: 1})
		want[x] = 1
	}
	tr.Subscribe("$share/g/hot/topic", s[0], Options{})
	check(want)
	for _, x := range s[:10] {
		if tr.Subscribe("hot/topic", x, Options{QoS: 2}) {
			t.Fatal("replacing options in a memberSet reported new")
		}
		want[x] = 2
	}
	check(want)
	for i, x := range s {
		if i%20 == 3 {
			continue
		}
		if !tr.Unsubscribe("hot/topic", x) {
			t.Fatalf("unsubscribe %d reported missing", i)
		}
		delete(want, x)
		if i%97 == 0 {
			check(want)
		}
	}
	check(want)
	if tr.Unsubscribe("hot/topic", s[0]) {
		t.Fatal("unsubscribing twice reported existing")
	}
	if tr.Count() != len(want)+1 {
		t.Fatalf("Count = %d, want %d", tr.Count(), len(want)+1)
	}
}

func TestUnsubscribePrunes(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(100)
	var filters []string
	for i := range 2000 {
		filters = append(filters, fmt.Sprintf("wide/%d", i), fmt.Sprintf("deep/%d/+/%d/#", i%10, i))
	}
	filters = append(filters, "#", "+", "+/+", "/", "$SYS/#", "$share/g/wide/1", "$share/h/+/+")
	for i, f := range filters {
		tr.Subscribe(f, s[i%len(s)], Options{})
		tr.Subscribe(f, s[(i+1)%len(s)], Options{})
	}
	if tr.Unsubscribe("wide/1/2", s[0]) || tr.Unsubscribe("nothing", s[0]) || tr.Unsubscribe("wide/5", s[50]) {
		t.Fatal("unsubscribing a subscription that does not exist reported existing")
	}
	for i, f := range filters {
		if !tr.Unsubscribe(f, s[i%len(s)]) || !tr.Unsubscribe(f, s[(i+1)%len(s)]) {
			t.Fatalf("unsubscribe %q reported missing", f)
		}
	}
	if tr.Count() != 0 {
		t.Fatalf("Count = %d after unsubscribing everything", tr.Count())
	}
	if !tr.tree.root.empty() {
		t.Fatal("root still has children after unsubscribing everything")
	}
}

func TestMatchAllocs(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(200)
	for i, x := range s {
		tr.Subscribe("a/b/c", x, Options{QoS: 1, ID: uint32(i)})
		tr.Subscribe(fmt.Sprintf("a/+/%d", i), x, Options{})
		if i%2 == 0 {
			tr.Subscribe("a/#", x, Options{ID: 1})
		}
	}
	tr.Subscribe("$share/g/a/b/+", s[0], Options{})
	var r Result[*sess]
	tr.Match("a/b/c", nil, &r) // grow r
	if n := testing.AllocsPerRun(100, func() { tr.Match("a/b/c", s[3], &r) }); n != 0 {
		t.Fatalf("Match allocates %v times per run", n)
	}
	if len(r.Subs) != len(s) || len(r.Shared) != 1 {
		t.Fatalf("got %d subscribers and %d groups", len(r.Subs), len(r.Shared))
	}
}

// TestConcurrent checks, under -race, that Match always finds the
// subscriptions that exist for its whole run while other subscriptions
// are added and removed around them, tables grow and shrink, and lists
// move in and out of memberSets.
func TestConcurrent(t *testing.T) {
	tr := NewTrie[*sess]()
	stable := newSessions(4)
	churn := newSessions(2 * bigList)
	tr.Subscribe("dev/7/state", stable[0], Options{QoS: 1})
	tr.Subscribe("dev/+/state", stable[1], Options{})
	tr.Subscribe("dev/#", stable[2], Options{})
	tr.Subscribe("$share/g/dev/7/state", stable[3], Options{})

	var stop atomic.Bool
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for !stop.Load() {
				for i, x := range churn {
					if i%2 != w {
						continue
					}
					f := fmt.Sprintf("dev/%d/state", rng.IntN(300))
					if rng.IntN(3) == 0 {
						f = "dev/7/state"
					}
					tr.Subscribe(f, x, Options{QoS: 2})
					tr.Subscribe("$share/g/dev/7/state", x, Options{})
					if rng.IntN(2) == 0 {
						tr.Unsubscribe(f, x)
						tr.Unsubscribe("$share/g/dev/7/state", x)
					}
				}
				for _, x := range churn {
					for i := range 300 {
						tr.Unsubscribe(fmt.Sprintf("dev/%d/state", i), x)
					}
					tr.Unsubscribe("$share/g/dev/7/state", x)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var r Result[*sess]
			for range 3000 {
				tr.Match("dev/7/state", nil, &r)
				found := 0
				for _, m := range r.Subs {
					if m.Sub.id < len(stable) && m.Sub == stable[m.Sub.id] {
						found++
					}
				}
				shared := false
				for _, g := range r.Shared {
					shared = shared || slices.ContainsFunc(g.Members, func(m Member[*sess]) bool { return m.Sub == stable[3] })
				}
				if found != 3 || !shared {
					t.Errorf("Match missed a stable subscription: %d of 3 found, shared %v", found, shared)
					return
				}
			}
		}()
	}
	readers.Wait()
	stop.Store(true)
	writers.Wait()
}

// TestMemoryPerSubscription measures the heap a subscription costs, with
// filters and subscribers allocated beforehand, and that unsubscribing
// gives it back.
func TestMemoryPerSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 100k subscriptions")
	}
	const n = 100_000
	for _, shape := range []struct {
		format string
		limit  float64 // bytes per subscription
	}{
		{"bench/%d", 150},
		{"device/%d/+/state", 350},
	} {
		filters := make([]string, n)
		for i := range filters {
			filters[i] = fmt.Sprintf(shape.format, i)
		}
		subs := newSessions(n)
		tr := NewTrie[*sess]()
		before := heapAlloc()
		for i, f := range filters {
			tr.Subscribe(f, subs[i], Options{QoS: 1})
		}
		per := float64(heapAlloc()-before) / n
		t.Logf("%s: %.1f bytes per subscription", shape.format, per)
		if per > shape.limit && !raceEnabled {
			t.Errorf("%s: %.1f bytes per subscription, want at most %v", shape.format, per, shape.limit)
		}
		for i, f := range filters {
			tr.Unsubscribe(f, subs[i])
		}
		// Allow for noise, not for a byte per subscription.
		if left := int64(heapAlloc()) - int64(before); left > n && !raceEnabled {
			t.Errorf("%s: %d bytes still held after unsubscribing everything", shape.format, left)
		}
		runtime.KeepAlive(tr)
		runtime.KeepAlive(filters)
		runtime.KeepAlive(subs)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestResultReuse checks that a reused Result holds nothing from an
// earlier, larger match, neither entries nor references past its ends.
func TestResultReuse(t *testing.T) {
	tr := NewTrie[*sess]()
	s := newSessions(50)
	for i, x := range s {
		tr.Subscribe("big", x, Options{ID: uint32(i + 1)})
		tr.Subscribe("$share/g/big", x, Options{})
		tr.Subscribe(fmt.Sprintf("$share/g%d/big", i), x, Options{})
	}
	tr.Subscribe("small", s[0], Options{QoS: 1})
	var r Result[*sess]
	tr.Match("big", nil, &r)
	tr.Match("small", nil, &r)
	if len(r.Subs) != 1 || r.Subs[0].Sub != s[0] || r.Subs[0].QoS != 1 || r.Subs[0].IDs != nil || len(r.Shared) != 0 {
		t.Fatalf("reused Result: %+v %+v", r.Subs, r.Shared)
	}
	for _, m := range r.Subs[1:cap(r.Subs)] {
		if m.Sub != nil || m.IDs != nil {
			t.Fatal("stale subscriber left past the end of Subs")
		}
	}
	for _, g := range r.Shared[:cap(r.Shared)] {
		if g.Members != nil {
			t.Fatal("stale group left past the end of Shared")
		}
	}
	tr.Match("big", nil, &r)
	r.Reset()
	for _, m := range r.Subs[:cap(r.Subs)] {
		if m.Sub != nil {
			t.Fatal("Reset left a subscriber")
		}
	}
}
