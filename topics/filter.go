package topics

import (
	"strings"
	"unicode/utf8"
)

// maxStringLen is the longest UTF-8 string MQTT can carry: its length
// prefix is two bytes (MQTT 3.1.1 and 5.0 §1.5).
const maxStringLen = 65535

const (
	sharePrefix = "$share/"
	queuePrefix = "$queue/"
)

// ValidTopicName reports whether t may be published to: a non-empty MQTT
// string without wildcards (MQTT 3.1.1 §4.7.3, 5.0 §4.7.3).
func ValidTopicName(t string) bool {
	return validString(t) && !strings.ContainsAny(t, "+#")
}

// ValidFilter reports whether f may be subscribed to: '#' only as the whole
// last level, '+' only as a whole level, and for a shared subscription
// "$share/{group}/{filter}" a group without '/', '+' or '#' and a valid,
// non-empty filter (MQTT 5.0 §4.7.1, §4.8.2).
func ValidFilter(f string) bool {
	if !validString(f) {
		return false
	}
	if strings.HasPrefix(f, sharePrefix) {
		var ok bool
		if _, f, _, ok = ParseGroup(f); !ok {
			return false
		}
	}
	for {
		lvl, rest, last := nextLevel(f)
		switch lvl {
		case "#":
			return last
		case "+":
		default:
			if strings.ContainsAny(lvl, "+#") {
				return false
			}
		}
		if last {
			return true
		}
		f = rest
	}
}

// ParseShared splits a shared subscription "$share/{group}/{filter}" into
// its group and filter. ok is false for anything else, including a
// "$share/" filter with an empty or wildcard group or an empty filter. It
// does not validate the filter part; ValidFilter does.
func ParseShared(f string) (group, filter string, ok bool) {
	rest, found := strings.CutPrefix(f, sharePrefix)
	if !found {
		return "", "", false
	}
	group, filter, found = strings.Cut(rest, "/")
	if !found || group == "" || filter == "" || strings.ContainsAny(group, "+#") {
		return "", "", false
	}
	return group, filter, true
}

// ParseGroup is ParseShared extended with the original Coolpy7's two
// group forms, where publishers and subscribers use the same topic:
// "$share/{group}" (no further level) is group on the filter
// "$share/{group}", and "$queue/{group}" is the persistent queue group on
// the filter "$queue/{group}" (queue set). Those filters are literal
// topics, so a publish to the same topic matches them.
func ParseGroup(f string) (group, filter string, queue, ok bool) {
	if group, filter, ok = ParseShared(f); ok {
		return group, filter, false, true
	}
	rest, found := strings.CutPrefix(f, sharePrefix)
	if !found {
		if rest, found = strings.CutPrefix(f, queuePrefix); !found {
			return "", "", false, false
		}
		queue = true
	}
	if rest == "" || strings.ContainsAny(rest, "/+#") {
		return "", "", false, false
	}
	return rest, f, queue, true
}

// validString applies the rules every MQTT topic string shares: non-empty,
// short enough to encode, well-formed UTF-8 and no U+0000 (§1.5.3).
func validString(s string) bool {
	return s != "" && len(s) <= maxStringLen && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// nextLevel splits the first level off a topic or filter; last reports
// that it was the final one. "a/" has two levels, the second empty.
func nextLevel(s string) (lvl, rest string, last bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], false
	}
	return s, "", true
}

// isDollar reports whether a topic or level starts with '$', which keeps
// it from matching a filter starting with a wildcard (§4.7.2).
func isDollar(s string) bool { return s != "" && s[0] == '$' }
