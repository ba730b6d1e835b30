package acl

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/coolpy7/coolpy7/topics"
)

// refMatch is MQTT matching written as plainly as possible, independently
// of match, to judge it and to build the brute-force truth for covers and
// intersects.
func refMatch(filter, topic string) bool {
	if topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
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

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		f, t string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a/b", "a/b", true},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/b", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"+/+", "/", true},
		{"/+", "/a", true},
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/+/#", "a", false},
		{"a/+/#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/+", "$SYS/x", true},
		{"a/$x", "a/$x", true},
		{"+/$x", "a/$x", true},
	} {
		if got := Match(tc.f, tc.t); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.f, tc.t, got, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		f, g string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"+", "a", true},
		{"+", "+", true},
		{"a", "+", false},
		{"#", "#", true},
		{"#", "a/#", true},
		{"#", "+/+/x", true},
		{"a/#", "a", true},
		{"a/#", "a/#", true},
		{"a/#", "a/+", true},
		{"a/#", "a/b/c", true},
		{"a/#", "#", false},
		{"a/#", "+/#", false},
		{"a/+", "a/#", false},
		{"a/+", "a", false},
		{"a/+/#", "a/#", false},
		{"a/+/#", "a/+", true},
		{"a/+/#", "a/+/#", true},
		{"a/+/#", "a/b/#", true},
		{"+/#", "#", true},
		{"+/#", "+/#", true},
		{"+/+/#", "#", false},
		{"/+/#", "/#", true},
		{"+/+/#", "+/#", false},
		{"a/+/#", "a/+/#", true},
		{"+/+", "+/#", false},
		{"a/b", "a/b/#", false},
		{"a/b/#", "a/+", false},
		{"devices/c1/#", "devices/#", false},
		{"devices/c1/#", "devices/+/temp", false},
		{"devices/c1/#", "devices/c1/temp", true},
		{"devices/+/temp", "devices/c1/temp", true},
		{"#", "$SYS/#", false},
		{"+/#", "$SYS/x", false},
		{"$SYS/#", "$SYS/+", true},
		{"$SYS/#", "+/x", false},
		{"#", "+/x", true},
		{"/#", "/", true},
		{"+/+", "/", true},
		{"+", "/", false},
	} {
		if got := Covers(tc.f, tc.g); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.f, tc.g, got, tc.want)
		}
	}
}

func TestIntersects(t *testing.T) {
	for _, tc := range []struct {
		f, g string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a/+", "+/b", true},
		{"a/#", "a", true},
		{"a", "a/#", true},
		{"a/+/#", "a", false},
		{"a/b", "a/b/c", false},
		{"a/b/#", "a/+/c", true},
		{"devices/c1/#", "devices/#", true},
		{"devices/c1/#", "devices/c2/#", false},
		{"#", "$SYS/x", false},
		{"$SYS/x", "+/x", false},
		{"$SYS/#", "$SYS/+", true},
		{"+", "/", false},
		{"+/+", "/", true},
		{"/#", "+", false},
		{"+/#", "+", true},
		{"+/#", "/", true},
	} {
		for _, p := range [][2]string{{tc.f, tc.g}, {tc.g, tc.f}} {
			if got := Intersects(p[0], p[1]); got != tc.want {
				t.Errorf("Intersects(%q, %q) = %v, want %v", p[0], p[1], got, tc.want)
			}
		}
	}
}

// universe is a set of topic names and, per filter, the bit set of those
// it matches by refMatch, so covers and intersects can be judged by set
// algebra: G ⊆ F and F ∩ G ≠ ∅.
type universe struct {
	topics []string
}

// topicsOver lists every topic name of 1 to depth levels drawn from
// levels, with first as extra choices for the first level.
func topicsOver(levels, first []string, depth int) []string {
	var out []string
	cur := append(append([]string(nil), levels...), first...)
	for d := 1; d <= depth; d++ {
		for _, t := range cur {
			if t != "" { // "" is the only invalid name built this way
				out = append(out, t)
			}
		}
		var next []string
		for _, t := range cur {
			for _, l := range levels {
				next = append(next, t+"/"+l)
			}
		}
		cur = next
	}
	return out
}

func (u universe) set(f string) []uint64 {
	s := make([]uint64, (len(u.topics)+63)/64)
	for i, t := range u.topics {
		if refMatch(f, t) {
			s[i/64] |= 1 << (i % 64)
		}
	}
	return s
}

func subset(g, f []uint64) bool {
	for i := range g {
		if g[i]&^f[i] != 0 {
			return false
		}
	}
	return true
}

func overlap(f, g []uint64) bool {
	for i := range f {
		if f[i]&g[i] != 0 {
			return true
		}
	}
	return false
}

// filtersOver lists every valid filter of 1 to depth levels drawn from
// levels, '#' allowed only last.
func filtersOver(levels []string, depth int) []string {
	var out []string
	var walk func(prefix string, d int)
	walk = func(prefix string, d int) {
		for _, l := range append(levels, "#") {
			f := l
			if d > 1 {
				f = prefix + "/" + l
			}
			if topics.ValidFilter(f) {
				out = append(out, f)
			}
			if l != "#" && d < depth {
				walk(f, d+1)
			}
		}
	}
	walk("", 1)
	return out
}

// TestCoversExhaustive checks Match, Covers and Intersects for every pair
// of filters of up to four levels over an alphabet with a '$' level, an
// empty level and both wildcards, against brute force over every topic of
// up to five levels. The topics use one more literal ("z") than the
// filters, so a '+' or '#' always has a value no literal matches, and one
// more level than the deepest filter, so '#' always has something below
// it: any topic telling two such filters apart has a counterpart here.
func TestCoversExhaustive(t *testing.T) {
	depth := 4
	if testing.Short() || raceEnabled {
		depth = 3
	}
	fs := filtersOver([]string{"a", "b", "$s", "", "+"}, depth)
	u := universe{topicsOver([]string{"a", "b", "$s", "", "z"}, []string{"$z"}, depth+1)}
	sets := make([][]uint64, len(fs))
	for i, f := range fs {
		sets[i] = u.set(f)
		for _, tp := range u.topics {
			if got, want := Match(f, tp), refMatch(f, tp); got != want {
				t.Fatalf("Match(%q, %q) = %v, want %v", f, tp, got, want)
			}
		}
	}
	covered := 0
	for i, f := range fs {
		for j, g := range fs {
			want := subset(sets[j], sets[i])
			if got := Covers(f, g); got != want {
				t.Fatalf("Covers(%q, %q) = %v, brute force says %v", f, g, got, want)
			}
			if want {
				covered++
			}
			if got, want := Intersects(f, g), overlap(sets[i], sets[j]); got != want {
				t.Fatalf("Intersects(%q, %q) = %v, brute force says %v", f, g, got, want)
			}
		}
	}
	t.Logf("%d filters, %d topics, %d of %d pairs covered", len(fs), len(u.topics), covered, len(fs)*len(fs))
}

// randFilter makes a valid filter of 1 to depth levels.
func randFilter(r *rand.Rand, levels []string, depth int) string {
	n := 1 + r.IntN(depth)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = levels[r.IntN(len(levels))]
	}
	if r.IntN(3) == 0 {
		parts[n-1] = "#"
	}
	if r.IntN(6) == 0 {
		parts[0] = "$a"
	}
	f := strings.Join(parts, "/")
	if !topics.ValidFilter(f) {
		return "a/" + f
	}
	return f
}

// TestCoversRandom reaches deeper than the exhaustive test: random pairs
// of filters of up to five levels against every topic of up to six.
func TestCoversRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	u := universe{topicsOver([]string{"a", "", "z"}, []string{"$a"}, 6)}
	levels := []string{"a", "", "+", "+"}
	n := 3000
	if testing.Short() || raceEnabled {
		n = 300
	}
	hits := 0
	for range n {
		f, g := randFilter(r, levels, 5), randFilter(r, levels, 5)
		if r.IntN(4) == 0 {
			g = narrow(r, f) // likely covered: exercise the true side too
		}
		sf, sg := u.set(f), u.set(g)
		if got, want := Covers(f, g), subset(sg, sf); got != want {
			t.Fatalf("Covers(%q, %q) = %v, brute force says %v", f, g, got, want)
		} else if want {
			hits++
		}
		if got, want := Intersects(f, g), overlap(sf, sg); got != want {
			t.Fatalf("Intersects(%q, %q) = %v, brute force says %v", f, g, got, want)
		}
	}
	if hits < n/10 {
		t.Errorf("only %d of %d random pairs covered: the test is not reaching the true side", hits, n)
	}
}

// narrow makes a filter inside f by replacing some of its wildcards with
// narrower ones.
func narrow(r *rand.Rand, f string) string {
	parts := strings.Split(f, "/")
	for i, p := range parts {
		switch {
		case p == "+" && r.IntN(2) == 0:
			parts[i] = "a"
		case p == "#" && r.IntN(2) == 0:
			parts[i] = "+"
			if r.IntN(2) == 0 {
				parts = append(parts[:i+1], "#")
			}
		}
	}
	g := strings.Join(parts, "/")
	if isWild(f) && g[0] == 'a' || !topics.ValidFilter(g) {
		return f
	}
	return g
}

// TestPlaceholders checks that substituting while walking gives what
// substituting first would: covers, intersects and match on a pattern
// with placeholders against the same on the pattern with its values put
// in, for values that ACL.bind lets through.
func TestPlaceholders(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := []string{"a", "z", "x%c", "%u", "", "ab"}
	levels := []string{"a", "z", "+", "%u", "%c", "x%c", "%c%u", "%%u", "%"}
	u := universe{topicsOver([]string{"a", "z", "x", "xa", "az", "%a", "x%c", "ab", "%u", ""}, nil, 3)}
	n := 3000
	if testing.Short() || raceEnabled {
		n = 300
	}
	for range n {
		s := &subject{values[r.IntN(len(values))], values[r.IntN(len(values))]}
		p := randFilter(r, levels, 3)
		lit := strings.NewReplacer("%u", s.user, "%c", s.client).Replace(p)
		if !topics.ValidFilter(lit) {
			continue
		}
		g := randFilter(r, []string{"a", "z", "xa", "x%c", "%u", "+"}, 3)
		if got, want := covers(p, g, s), Covers(lit, g); got != want {
			t.Fatalf("covers(%q, %q, %+v) = %v; Covers(%q) says %v", p, g, *s, got, lit, want)
		}
		if got, want := intersects(p, g, s), Intersects(lit, g); got != want {
			t.Fatalf("intersects(%q, %q, %+v) = %v; Intersects(%q) says %v", p, g, *s, got, lit, want)
		}
		for _, tp := range u.topics {
			if got, want := match(p, tp, s), refMatch(lit, tp); got != want {
				t.Fatalf("match(%q, %q, %+v) = %v; refMatch(%q) says %v", p, tp, *s, got, lit, want)
			}
		}
	}
}
