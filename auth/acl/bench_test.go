package acl

import (
	"fmt"
	"testing"
)

// benchRules is a plausible ACL: rules for everyone with placeholders, a
// few per-user rules, and many users the connection is not.
func benchFile(tb testing.TB) *File {
	text := `
allow pub devices/%c/#
allow sub cmd/%c
allow sub devices/%c/#
deny  pubsub $SYS/#
deny  pub devices/%c/secret
allow pub public/+/status
user alice
allow pubsub alice/#
allow sub   devices/+/status
`
	for i := range 1000 {
		text += fmt.Sprintf("user u%d\nallow pubsub u%d/#\n", i, i)
	}
	return mustParse(tb, text)
}

func TestCanPublishAllocs(t *testing.T) {
	a := benchFile(t).For("alice", "sensor-42")
	allocs := testing.AllocsPerRun(1000, func() {
		if !a.CanPublish("devices/sensor-42/temp/room1") || a.CanPublish("devices/sensor-43/temp") {
			t.Fatal("wrong answer")
		}
		if a.Subscribe("devices/+/status") != SubGranted {
			t.Fatal("wrong answer")
		}
	})
	if allocs != 0 {
		t.Errorf("CanPublish and Subscribe allocate %v times", allocs)
	}
}

func BenchmarkCanPublish(b *testing.B) {
	a := benchFile(b).For("alice", "sensor-42")
	for _, bc := range []struct {
		name, topic string
		want        bool
	}{
		{"placeholder", "devices/sensor-42/temp/room1", true},
		{"user", "alice/inbox", true},
		{"denied", "devices/sensor-43/temp", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a.CanPublish(bc.topic) != bc.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkSubscribe(b *testing.B) {
	a := benchFile(b).For("alice", "sensor-42")
	b.ReportAllocs()
	for b.Loop() {
		if a.Subscribe("devices/+/status") != SubGranted {
			b.Fatal("wrong answer")
		}
	}
}

func BenchmarkFor(b *testing.B) {
	f := benchFile(b)
	b.ReportAllocs()
	for b.Loop() {
		a := f.For("u500", "sensor-42")
		if !a.CanPublish("u500/x") {
			b.Fatal("wrong answer")
		}
	}
}
