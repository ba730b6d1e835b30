package broker

import (
	"strconv"
	"strings"
	"testing"

	"github.com/coolpy7/coolpy7/topics"
)

// FuzzParseDelayed holds parseDelayed, which reads PUBLISH topics from the
// network, to its contract: a delay that fits 32 bits and a topic a client
// may publish to, taken from the input as written.
func FuzzParseDelayed(f *testing.F) {
	for _, s := range []string{"$delayed/10/a/b", "$delayed/x/a", "$delayed/5", "$delayed/-1/a", "$delayed/1/$SYS/x", "$delayed/99999999999/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		secs, topic, ok := parseDelayed(s)
		if !ok {
			return
		}
		if !topics.ValidTopicName(topic) || strings.HasPrefix(topic, "$SYS/") || secs > 1<<32-1 {
			t.Fatalf("%q: %d %q", s, secs, topic)
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(s, delayedPrefix), "/"+topic), 10, 32); !strings.HasPrefix(s, delayedPrefix) || err != nil || n != secs {
			t.Fatalf("%q: topic %q not from the input", s, topic)
		}
	})
}
