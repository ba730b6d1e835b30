package topics

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[int]()
	r.Set("a/b", 1)
	r.Set("a", 2)
	r.Set("a/b", 3)
	r.Set("/", 4)
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	for topic, want := range map[string]int{"a/b": 3, "a": 2, "/": 4} {
		if got, ok := r.Get(topic); !ok || got != want {
			t.Errorf("Get(%q) = %d, %v, want %d", topic, got, ok, want)
		}
	}
	for _, topic := range []string{"a/b/c", "b", "", "a/", "/a"} {
		if _, ok := r.Get(topic); ok {
			t.Errorf("Get(%q) found a message", topic)
		}
	}
	if r.Delete("a/b/c") || r.Delete("x") {
		t.Fatal("Delete of a missing topic reported existing")
	}
	if !r.Delete("a") {
		t.Fatal("Delete(a) reported missing")
	}
	if _, ok := r.Get("a"); ok {
		t.Fatal("deleted message still there")
	}
	if got, ok := r.Get("a/b"); !ok || got != 3 {
		t.Fatal("deleting a lost its child a/b")
	}
	r.Delete("a/b")
	r.Delete("/")
	if r.Len() != 0 || !r.tree.root.empty() {
		t.Fatalf("Len = %d, root empty %v after deleting everything", r.Len(), r.tree.root.empty())
	}
}

// TestRetainedMatch checks Retained.Match against matchRef for every pair
// of the topics and filters in matchCases, all stored at once.
func TestRetainedMatch(t *testing.T) {
	r := NewRetained[string]()
	topics := map[string]bool{}
	for _, tc := range matchCases {
		topics[tc.topic] = true
	}
	for topic := range topics {
		r.Set(topic, "m:"+topic)
	}
	for _, tc := range matchCases {
		var got []string
		r.Match(tc.filter, func(topic, m string) bool {
			if m != "m:"+topic {
				t.Errorf("topic %q came with message %q", topic, m)
			}
			got = append(got, topic)
			return true
		})
		var want []string
		for topic := range topics {
			if matchRef(tc.filter, topic) {
				want = append(want, topic)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", tc.filter, got, want)
		}
	}
}

func TestRetainedMatchStops(t *testing.T) {
	r := NewRetained[int]()
	for i := range 100 {
		r.Set(fmt.Sprintf("s/%d", i), i)
	}
	for _, filter := range []string{"#", "s/#", "s/+", "+/+"} {
		n := 0
		r.Match(filter, func(string, int) bool {
			n++
			return n < 3
		})
		if n != 3 {
			t.Errorf("Match(%q) called fn %d times after it returned false on the third", filter, n)
		}
	}
}

// TestRetainedConcurrent runs Set, Delete and Match together under -race,
// including writes from inside a Match callback.
func TestRetainedConcurrent(t *testing.T) {
	r := NewRetained[int]()
	r.Set("stable/x", -1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			topic := fmt.Sprintf("churn/%d/%d", i%50, i%7)
			r.Set(topic, i)
			if i%3 == 0 {
				r.Delete(topic)
			}
		}
	}()
	for range 2000 {
		found := false
		r.Match("+/#", func(topic string, m int) bool {
			found = found || topic == "stable/x" && m == -1
			return true
		})
		if !found {
			t.Fatal("Match missed a message stored throughout")
		}
		r.Match("churn/+/3", func(topic string, m int) bool {
			r.Set("from/callback", m)
			return true
		})
	}
	stop.Store(true)
	wg.Wait()
}
