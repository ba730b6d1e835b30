package acl

import "strings"

// Match reports whether topic name t matches filter f under MQTT's rules
// (MQTT 5.0 §4.7): '+' is one level, '#' the parent level and everything
// below it, and a filter starting with a wildcard does not match a topic
// starting with '$'. Both must be valid (topics.ValidFilter,
// topics.ValidTopicName); shared-subscription prefixes are not understood.
func Match(f, t string) bool { return match(f, t, nil) }

// Covers reports whether every topic name that filter g matches is also
// matched by filter f: a client allowed to read f may subscribe to g
// without reading anything f does not allow. Both must be valid filters.
func Covers(f, g string) bool { return covers(f, g, nil) }

// Intersects reports whether some topic name is matched by both filters.
// Both must be valid filters.
func Intersects(f, g string) bool { return intersects(f, g, nil) }

// subject is who a rule's placeholders stand for: %u the username, %c the
// client ID. A nil *subject means the pattern is taken literally.
type subject struct {
	user, client string
}

// match, covers and intersects walk the pattern f level by level against a
// topic or filter, substituting placeholders in f's levels as they go
// instead of building the substituted pattern, so a check neither
// allocates nor needs per-connection copies of the rules. A level of f is
// compared whole, and the '$' rule looks at f's first character, which is
// the same as substituting first only because the values put in for
// placeholders never contain '/', '+' or '#' and never start with '$'
// (bind sees to that).

func match(f, t string, s *subject) bool {
	if isDollar(t) && isWild(f) {
		return false
	}
	for {
		fl, frest, flast := nextLevel(f)
		if fl == "#" {
			return true
		}
		tl, trest, tlast := nextLevel(t)
		if fl != "+" && !levelEq(fl, tl, s) {
			return false
		}
		if flast || tlast {
			if flast && tlast {
				return true
			}
			// "a/#" matches "a" too: the topic ran out, the filter has only
			// '#' left.
			return tlast && frest == "#"
		}
		f, t = frest, trest
	}
}

func covers(f, g string, s *subject) bool {
	// g's topics all start with '$' when its first level is a literal
	// "$…"; a filter starting with a wildcard matches none of them.
	if isDollar(g) && isWild(f) {
		return false
	}
	// parentless: g's levels so far name no valid topic, because there
	// are none or there is a single empty one ("" is not a topic name).
	parentless, first := true, true
	for {
		fl, frest, flast := nextLevel(f)
		if fl == "#" {
			return true
		}
		gl, grest, glast := nextLevel(g)
		switch {
		case gl == "#":
			// g matches this level's parent and anything below it. f's
			// "+/#" matches all of it but the parent, which is fine only
			// where there is no parent: "+/#" covers "#", "/+/#" covers
			// "/#".
			return parentless && fl == "+" && frest == "#"
		case gl == "+":
			if fl != "+" {
				return false
			}
		case fl != "+" && !levelEq(fl, gl, s):
			return false
		}
		if flast || glast {
			if flast && glast {
				return true
			}
			// g ended where f still has levels: only a final '#' matches
			// the parent g names. f ending first leaves g deeper topics.
			return glast && frest == "#"
		}
		parentless, first = first && gl == "", false
		f, g = frest, grest
	}
}

func intersects(f, g string, s *subject) bool {
	if isDollar(g) && isWild(f) || isDollar(f) && isWild(g) {
		return false
	}
	for first := true; ; first = false {
		fl, frest, flast := nextLevel(f)
		gl, grest, glast := nextLevel(g)
		if fl == "#" || gl == "#" {
			return true
		}
		if fl != "+" && gl != "+" && !levelEq(fl, gl, s) {
			return false
		}
		if flast || glast {
			if flast && glast {
				return true
			}
			// One ran out; the other reaches the levels so far only
			// through a final '#', and only if they name a topic: a
			// single empty level is "", which is not one.
			rest := grest
			if glast {
				rest = frest
			}
			return rest == "#" && !(first && (fl == "" || gl == ""))
		}
		f, g = frest, grest
	}
}

// levelEq reports whether pattern level p, its placeholders replaced for s,
// equals level l. Placeholders are substituted in a single left-to-right
// pass, so a value containing "%c" is not substituted again; any other '%'
// is an ordinary character.
func levelEq(p, l string, s *subject) bool {
	if s == nil {
		return p == l
	}
	for {
		i := strings.IndexByte(p, '%')
		if i < 0 || i == len(p)-1 {
			return p == l
		}
		var v string
		switch p[i+1] {
		case 'u':
			v = s.user
		case 'c':
			v = s.client
		default:
			if !strings.HasPrefix(l, p[:i+1]) {
				return false
			}
			p, l = p[i+1:], l[i+1:]
			continue
		}
		if len(l) < i+len(v) || l[:i] != p[:i] || l[i:i+len(v)] != v {
			return false
		}
		p, l = p[i+2:], l[i+len(v):]
	}
}

// nextLevel splits the first level off a topic or filter; last reports
// that it was the final one. "a/" has two levels, the second empty.
func nextLevel(s string) (lvl, rest string, last bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], false
	}
	return s, "", true
}

func isDollar(s string) bool { return s != "" && s[0] == '$' }

// isWild reports whether a filter's first level is a wildcard: valid
// filters only have '+' and '#' as whole levels.
func isWild(f string) bool { return f != "" && (f[0] == '+' || f[0] == '#') }
